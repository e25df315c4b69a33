"""Measure false-positive liver on single 2D slices and tune the 2D confidence floor (issue 14, item 5).

    nice -n 15 .venv/bin/python scripts/measure_liver_free_fp.py --prepared runs/prep12 \\
        --volumes ../shared/data/volumes --model resources/models/default

Tuning uses only the VALIDATION people of the prepared set (``--split valid``);
the volumes (3D-IRCADb 1.01 and 1.07, test people) and LiTS case 117 are only
measured, never tuned on.  Each slice is segmented alone (as the studio and
``liverseg segment`` see a single slice: no 3D post-processing).  Prints, per
floor setting, the mean per-slice liver Dice on the validation slices with
liver, and the false-positive liver area on slices whose truth has no liver;
then the chosen setting on the test volumes.  A measurement, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from liverseg_studio.core.slice_floor import confidence_floor_2d

PROBS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9)
AREAS = (0.0, 0.001, 0.003, 0.01)


def dice(p: np.ndarray, t: np.ndarray) -> float | None:
    s = int(p.sum()) + int(t.sum())
    return None if s == 0 else 2.0 * int((p & t).sum()) / s


def predictions(backend, volume, chunk: int = 16):
    """(labels (z, y, x), liver-or-tumour probability (z, y, x)) slice chunk by chunk."""
    for z0 in range(0, volume.n_slices, chunk):
        sub = volume.sub_volume(z0, min(z0 + chunk, volume.n_slices))
        pred = backend.predict(sub, want_probabilities=True)
        probs = pred.probabilities
        yield np.asarray(pred.labels), probs[:, 1] + probs[:, 2]


def score(slices, min_p: float, min_a: float) -> dict[str, float]:
    dices, fp = [], []
    for lab, prob, truth in slices:
        out, _ = confidence_floor_2d(lab, prob, min_mean_prob=min_p, min_area_fraction=min_a)
        p, t = out >= 1, truth >= 1
        if t.any():
            dices.append(dice(p, t))
        else:
            fp.append(int(p.sum()))
    fpa = np.asarray(fp, dtype=float)
    return {
        "dice_mean": float(np.mean(dices)) if dices else float("nan"),
        "dice_median": float(np.median(dices)) if dices else float("nan"),
        "n_liver": len(dices),
        "n_free": len(fp),
        "free_with_fp": int(np.count_nonzero(fpa)),
        "fp_mean": float(fpa.mean()) if fpa.size else float("nan"),
        "fp_max": float(fpa.max()) if fpa.size else float("nan"),
    }


def line(name: str, r: dict[str, float]) -> str:
    return (f"{name:<22} liver slices {r['n_liver']:4d}: Dice mean {r['dice_mean']:.4f} median {r['dice_median']:.4f} | "
            f"liver-free {r['n_free']:4d}: {r['free_with_fp']:3d} with FP, mean {r['fp_mean']:7.1f} px, max {r['fp_max']:6.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prepared", type=Path, required=True, help="prepared set (liverseg prepare) with a valid split")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--volumes", type=Path, default=Path("../shared/data/volumes"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-volumes", action="store_true", help="tune and report on the validation slices only")
    args = ap.parse_args(argv)

    from liverseg_studio.commands.common import load_backend
    from liverseg_studio.plugins.manager import get_plugin_manager
    from liverseg_studio.plugins.registry import LoadOptions
    from liverseg_studio.training.evaluate import cases_from_prepared, labels_from_volume

    pm = get_plugin_manager()
    backend = load_backend(pm, args.backend, args.model, threads=args.threads)
    t0 = time.monotonic()
    val = []
    for case in cases_from_prepared(args.prepared, args.split):
        (lab, prob), = list(predictions(backend, case.volume))
        val.append((lab[0], prob[0], case.truth[0]))
    print(f"validation: {len(val)} slices of split {args.split!r} of {args.prepared} ({time.monotonic() - t0:.0f} s)")
    table = []
    for min_p, min_a in itertools.product(PROBS, AREAS):
        r = score(val, min_p, min_a)
        table.append(((min_p, min_a), r))
        print(line(f"p>={min_p:.2f} area>={min_a:.3f}", r))
    base = table[0][1]
    # the best mean Dice on validation liver slices; ties -> the smaller floor
    (best_p, best_a), best = max(table, key=lambda e: (round(e[1]["dice_mean"], 4), -e[0][0], -e[0][1]))
    print(f"chosen on validation: min_mean_prob {best_p} min_area_fraction {best_a} "
          f"(Dice mean {base['dice_mean']:.4f} -> {best['dice_mean']:.4f}, "
          f"liver-free FP mean {base['fp_mean']:.1f} -> {best['fp_mean']:.1f} px)")

    load = lambda p: pm.loaders.load(p, LoadOptions())  # noqa: E731
    for name, ct in () if args.skip_volumes else (("ircad-1.01", "ct"), ("ircad-1.07", "ct.nii.gz")):
        folder = args.volumes / name
        if not (folder / ct).exists():
            print(f"{name}: not here, skipped")
            continue
        vol = load(folder / ct)
        truth = labels_from_volume(load(folder / "labels.nii.gz"), name)
        slices, z = [], 0
        for lab, prob in predictions(backend, vol):
            for k in range(lab.shape[0]):
                slices.append((lab[k], prob[k], truth[z]))
                z += 1
        print(line(f"{name} (test) none", score(slices, 0.0, 0.0)))
        print(line(f"{name} (test) chosen", score(slices, best_p, best_a)))
    print(f"total {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
