"""Benchmark (issue 25): time to build the 3D view's surfaces for a 512 x 512 x 200 mask.

Prints wall and CPU seconds of ``core.mesh.label_surfaces`` as the 3D panel runs it (liver +
one surface per lesion; marching cubes, Taubin smoothing, quadric decimation, volume check), on
a synthetic liver (an ellipsoid of ~1.6 L, 0.7 x 0.7 x 1.5 mm voxels) with six lesions, or on
``--labels FILE.nii.gz`` (e.g. ircad-1.01's labels, padded/cropped to 200 slices).  The target
is <= 2 s on 2 cores; under load wall-clock time is mostly the scheduler's, so CPU time is shown
beside it.  :func:`bench_mesh_build` returns the row ``liverseg bench`` can print (``--json``: one line).

    python -m liverseg_studio.segment.bench_mesh [--labels FILE] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def synthetic_mask(shape=(200, 512, 512)) -> tuple[np.ndarray, np.ndarray]:
    nz, ny, nx = shape
    affine = np.diag([0.7, 0.7, 1.5, 1.0])
    z, y, x = np.ogrid[:nz, :ny, :nx]
    lab = np.zeros(shape, np.uint8)
    liver = ((z - 100) / 70.0) ** 2 + ((y - 250) / 150.0) ** 2 + ((x - 230) / 170.0) ** 2 <= 1
    lab[liver] = 1
    rng = np.random.default_rng(25)
    for _ in range(6):
        cz, cy, cx = rng.integers([70, 200, 160], [130, 300, 300])
        r = float(rng.uniform(4, 20))
        lab[((z - cz) * 1.5 / 0.7) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r] = 2
    return lab, affine


def load_labels(path: str, n_slices: int = 200) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    img = nib.load(path)
    lab = np.asarray(img.dataobj, dtype=np.uint8).T
    out = np.zeros((n_slices, *lab.shape[1:]), np.uint8)
    k = min(n_slices, lab.shape[0])
    out[:k] = lab[:k]
    return out, img.affine


def bench_mesh_build(
    labels: np.ndarray | None = None, affine: np.ndarray | None = None, repeat: int = 3
) -> dict:
    """Best-of-``repeat`` wall and CPU seconds of the 3D view's surfaces (synthetic 512x512x200 by default)."""
    from liverseg_studio.core.mesh import label_surfaces

    if labels is None:
        labels, affine = synthetic_mask()
    walls, cpus, surfaces = [], [], []
    for _ in range(max(1, repeat)):
        t0, c0 = time.perf_counter(), time.process_time()
        surfaces = label_surfaces(labels, affine, tumour=False)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"row": "mesh_build_512x512x200", "shape_zyx": list(labels.shape), "wall_s": round(min(walls), 3),
            "cpu_s": round(min(cpus), 3), "repeats": len(walls), "surfaces": len(surfaces),
            "faces": sum(len(s.faces) for s in surfaces),
            "max_volume_error": round(max(s.volume_error for s in surfaces), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m liverseg_studio.segment.bench_mesh",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", help="a label NIfTI (uint8 0/1/2) instead of the synthetic mask")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON line at the end")
    args = ap.parse_args(argv)
    lab, affine = load_labels(args.labels) if args.labels else synthetic_mask()
    row = bench_mesh_build(lab, affine, args.repeat)
    z, y, x = row["shape_zyx"]
    print(f"mesh build {x}x{y}x{z} mask: {row['surfaces']} surfaces, {row['faces']:,} faces, "
          f"best {row['wall_s']:.2f} s wall / {row['cpu_s']:.2f} s CPU (of {row['repeats']}), "
          f"volumes within {100 * row['max_volume_error']:.2f} %")
    if args.json:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
