"""How far the default engine's outputs are from the other engines' on one real volume (README figures).

Writes slices Z0:Z1 of a CT (default: 3D-IRCADb 1.01, the 48 slices around the middle of its liver) as a
NIfTI, runs ``liverseg segment --export mask,report`` once per engine (``auto`` = the default engine, and
each other engine named), and prints JSON: per engine pair the mask's voxel agreement, liver and tumour
Dice, the report's liver/tumour mL and lesion counts, and the lesions found by one engine only
(no overlap with any lesion of the other).

    python scripts/engine_agreement.py [--ct ../shared/data/volumes/ircad-1.01/ct] [--engines onnx,openvino]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum() + b.sum())
    return 1.0 if s == 0 else round(2.0 * int((a & b).sum()) / s, 4)


def _unmatched_lesions(a: np.ndarray, b: np.ndarray) -> int:
    """Tumour components of ``a`` (labels == 2) that touch no tumour voxel of ``b``."""
    from scipy import ndimage

    comp, n = ndimage.label(a == 2, structure=np.ones((3, 3, 3)))  # 26-connected, as the report counts
    return sum(1 for k in range(1, n + 1) if not (b[comp == k] == 2).any())


def main() -> int:
    import nibabel as nib

    from liverseg_studio.plugins.manager import get_plugin_manager

    ap = argparse.ArgumentParser()
    ap.add_argument("--ct", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data/volumes/ircad-1.01/ct")
    ap.add_argument("--labels", type=Path, default=None, help="label map to pick slices around the liver")
    ap.add_argument("--slices", type=int, default=48)
    ap.add_argument("--engines", default="onnx,openvino")
    a = ap.parse_args()
    pm = get_plugin_manager()
    vol = pm.loaders.load(a.ct)
    labels_path = a.labels or a.ct.parent / "labels.nii.gz"
    z_mid = vol.n_slices // 2
    if labels_path.exists():
        lab = np.asarray(pm.loaders.load(labels_path).array)
        zs = np.flatnonzero((lab >= 1).any(axis=(1, 2)))
        z_mid = int((zs[0] + zs[-1]) // 2) if zs.size else z_mid
    z0 = max(0, z_mid - a.slices // 2)
    z1 = min(vol.n_slices, z0 + a.slices)
    sub = vol.sub_volume(z0, z1)
    engines = ["auto"] + [e for e in a.engines.split(",") if e]
    default = pm.backends.default_name()
    results: dict = {"input": f"{a.ct} slices {z0}:{z1} ({z1 - z0} x {vol.shape[1]} x {vol.shape[2]})",
                     "default_engine": default}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sub.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(sub.array, dtype=np.int16).T, sub.affine), src)
        masks, reports = {}, {}
        for eng in engines:
            out = Path(tmp) / eng
            cmd = [sys.executable, "-m", "liverseg_studio.cli", "segment", str(src), "--out", str(out),
                   "--backend", eng, "--export", "mask,report"]
            subprocess.run(cmd, check=True, capture_output=True)
            masks[eng] = np.asarray(nib.load(str(out / "sub_mask.nii.gz")).dataobj).T
            reports[eng] = json.loads((out / "sub_report.json").read_text())
    for eng in engines:
        r = reports[eng]
        results[eng] = {"engine_in_report": r["model"]["backend"], "liver_ml": r["liver_ml"],
                        "tumour_ml": r["tumour_ml"], "n_lesions": len(r["lesions"])}
    others = [e for e in engines if e != "auto"]
    pairs = [(x, y) for i, x in enumerate(others) for y in others[i + 1:]]
    for x, y in pairs:
        mx, my = masks[x], masks[y]
        results[f"{x}_vs_{y}"] = {
            "voxels_equal": round(float((mx == my).mean()), 6),
            "liver_dice": _dice(mx >= 1, my >= 1),
            "tumour_dice": _dice(mx == 2, my == 2),
            f"lesions_only_{x}": _unmatched_lesions(mx, my),
            f"lesions_only_{y}": _unmatched_lesions(my, mx),
        }
    results["auto_equals_default"] = bool(default in masks and np.array_equal(masks["auto"], masks[default]))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
