"""Helpers of the cohort tests (import as ``from cohort_helpers import ...``): small synthetic NIfTI
studies (one corrupt) and LocalClusters.

The threshold example backend (``plugins/liverseg-threshold-backend``, installed by
``make setup``) segments them in a fraction of a second, so the Dask tests stay
fast on 2 shared cores.  Clusters bind to 127.0.0.1 only and have no dashboard.
"""

from __future__ import annotations

from pathlib import Path

from helpers.phantom import make_phantom, write_nifti

BACKEND = "threshold"
CORRUPT = "corrupt"


def write_studies(folder: Path, n_ok: int, *, shape=(12, 64, 64), corrupt: bool = True) -> list[Path]:
    """``n_ok`` phantoms (different noise, so different masks) and, with ``corrupt``, a broken .nii.gz."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_ok):
        ph = make_phantom(shape, noise=6.0, seed=i)
        paths.append(write_nifti(folder / f"case{i}.nii.gz", ph.hu, ph.affine, dtype="int16"))
    if corrupt:
        bad = folder / f"{CORRUPT}.nii.gz"
        bad.write_bytes(b"\x1f\x8b\x08\x00 this is not a NIfTI file" * 8)
        paths.append(bad)
    return paths


def local_cluster(n_workers: int = 2):
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=50,
    )
