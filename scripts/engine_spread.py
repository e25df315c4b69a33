"""How much a model's figures move between inference engines: the tolerance of the card tests.

int8 kernels differ between CPUs (AVX2 vs AVX-512 VNNI / AMX) and between engines; a test that
re-measures the card on another CPU must allow for that, and only for that.  This script segments
LiTS case 117 and 3D-IRCADb 1.07 with every engine available here (ONNX Runtime int8 and fp32,
OpenVINO int8; PyTorch fp32 with --torch) and prints JSON: per engine the Dice/share figures, their spread, and
the tolerance = max(0.01, 1.5 x spread) that scripts write into the card.

    python scripts/engine_spread.py MODEL_DIR [--ircad ../shared/data/volumes/ircad-1.07]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum() + b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def main() -> int:
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.plugins.manager import PluginManager
    from liverseg_studio.sample import sample_case
    from liverseg_studio.segment.pipeline import segment_volume

    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--ircad", type=Path, default=Path("../shared/data/volumes/ircad-1.07"))
    ap.add_argument("--torch", action="store_true", help="also PyTorch fp32 (the fastai backend; slow on a CPU)")
    a = ap.parse_args()
    pm = PluginManager().load_entrypoints()
    case = sample_case()
    cases = [("lits_case_117", case.image, case.labels)]
    if (a.ircad / "ct.nii.gz").is_file():
        cases.append(("ircad_1_07", a.ircad / "ct.nii.gz", a.ircad / "labels.nii.gz"))
    data = {n: (pm.loaders.load(i), np.asarray(pm.loaders.load(l).array).astype(np.uint8)) for n, i, l in cases}
    tmp = Path(tempfile.mkdtemp(prefix="liverseg-spread-"))
    fp32 = tmp / "fp32"
    fp32.mkdir()
    for name in ("model.json", "model.onnx"):
        if (a.model_dir / name).is_file():
            shutil.copy2(a.model_dir / name, fp32 / name)
    engines = [("onnxruntime-int8", "onnx", a.model_dir), ("openvino-int8", "openvino", a.model_dir),
               ("onnxruntime-fp32", "onnx", fp32)] + ([("torch-fp32", "fastai", a.model_dir)] if a.torch else [])
    out: dict = {"engines": {}}
    for label, backend_name, folder in engines:
        try:
            backend = pm.backends.create(backend_name)
            backend.load(folder, threads=2)
        except (LiversegError, KeyError, Exception) as exc:  # noqa: BLE001 - an engine missing here is reported
            print(f"{label}: skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        row = {}
        for name, (vol, truth) in data.items():
            pred = np.asarray(segment_volume(vol, backend).labels)
            row[name] = {"liver_dice": round(_dice(pred >= 1, truth >= 1), 4),
                         "tumour_dice": round(_dice(pred == 2, truth == 2), 4) if (truth == 2).any() else None,
                         "tumour_share": round(float((pred == 2).sum() / max((pred >= 1).sum(), 1)), 4)}
        out["engines"][label] = row
        print(f"{label}: {json.dumps(row)}", file=sys.stderr)
    for name in data:
        vals = {k: [r[name][k] for r in out["engines"].values() if r[name][k] is not None]
                for k in ("liver_dice", "tumour_dice", "tumour_share")}
        spread = max((max(v) - min(v) for v in vals.values() if len(v) >= 2), default=0.0)
        out[name] = {"spread": round(spread, 4), "tolerance": round(max(0.01, 1.5 * spread), 4)}
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
