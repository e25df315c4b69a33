"""A real ``liverseg prepare`` folder built from synthetic phantom volumes (for training-side tests)."""

from __future__ import annotations

from pathlib import Path


def prepared_phantoms(root: Path, *, volumes: int = 2, shape: tuple[int, int, int] = (10, 64, 64)) -> Path:
    """``root/prepared`` (64 px, half train / half valid) from ``volumes`` phantom NIfTI volumes with tumours."""
    from helpers.phantom import make_phantom, write_nifti
    from liverseg_studio.training.prepare import prepare

    src = root / "lits"
    src.mkdir(parents=True)
    for n in range(volumes):
        ph = make_phantom(shape, noise=8.0, seed=n)
        write_nifti(src / f"volume-{n}.nii", ph.hu, ph.affine, dtype="int16")
        write_nifti(src / f"segmentation-{n}.nii", ph.labels, ph.affine, dtype="uint8")
    prepare([src], root / "prepared", size=64, split=(0.5, 0.5, 0.0), seed=0)
    return root / "prepared"
