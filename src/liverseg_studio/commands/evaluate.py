"""``liverseg evaluate --model MODEL_DIR DATA... --out REPORT_DIR``: metrics against ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from liverseg_studio.commands.common import add_trust_pickle_option, load_backend


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="segment cases with ground truth and report Dice, HD95, ... (metrics.json/csv/png)",
        description=(
            "DATA is a prepared set (liverseg prepare) evaluated on --split, or volumes/slices whose label "
            "files follow --labels in the same order (e.g. img_117.mrc --labels lab_117.mrc). Liver = label >= 1, "
            "tumour = label 2; distances in mm when the spacing is known, else pixels."
        ),
    )
    p.add_argument("data", nargs="+", type=Path, help="prepared DATA_DIR, or volumes/slices (with --labels)")
    p.add_argument("--model", type=Path, default=None, metavar="MODEL_DIR",
                   help="model folder (default: the backend's default model)")
    p.add_argument("--backend", default="onnx", metavar="NAME", help="backend: onnx (default), fastai or a plugin's")
    p.add_argument("--labels", nargs="+", type=Path, default=None, metavar="LABEL",
                   help="ground-truth label files, one per DATA input, same order (0/1/2; 3 = liver-or-tumour)")
    p.add_argument("--split", default="test", help="split of a prepared set (default test)")
    p.add_argument("--out", required=True, type=Path, metavar="REPORT_DIR")
    p.add_argument("--no-postprocess", action="store_true", help="score the backend's raw labels")
    p.add_argument("--per-slice", action="store_true",
                   help="score each slice of a volume as its own 2D case (as a single slice is segmented: "
                   "no 3D post-processing)")
    p.add_argument("--threads", type=int, default=None, help="inference threads")
    add_trust_pickle_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liverseg_studio.plugins.manager import get_plugin_manager
    from liverseg_studio.plugins.registry import LoadOptions
    from liverseg_studio.segment.pipeline import model_info
    from liverseg_studio.training.evaluate import EvaluateError, cases_from_files, cases_from_prepared, evaluate_cases
    from liverseg_studio.training.evaluate import split_slices

    pm = get_plugin_manager()
    if args.labels is None:
        if len(args.data) != 1 or not (args.data[0] / "manifest.json").is_file():
            raise EvaluateError("give a prepared DATA_DIR (with manifest.json), or inputs followed by --labels")
        cases = cases_from_prepared(args.data[0], args.split)
    else:
        cases = cases_from_files(args.data, args.labels, lambda p: pm.loaders.load(p, LoadOptions()))
    if args.per_slice:
        cases = split_slices(cases)
    backend = load_backend(pm, args.backend, args.model, threads=args.threads, trust_pickle=args.trust_pickle)
    try:
        info = model_info(backend).to_json()
    except Exception:  # noqa: BLE001 - the report can live without it
        info = {"model_dir": str(args.model or "")}
    report = evaluate_cases(cases, backend, args.out, postprocess=not args.no_postprocess,
                            overwrite=args.overwrite, model_info=info)
    s = report["summary"]

    def fmt(key: str) -> str:
        v = s[key]
        return "n/a" if v["mean"] is None else f"mean {v['mean']:.4f} median {v['median']:.4f} (n={v['n']})"

    unit = ", ".join(sorted({r["unit"] for r in report["cases"]}))
    print(f"evaluated {len(report['cases'])} cases with backend {report['backend']} -> {args.out}")
    print(f"  liver  Dice {fmt('liver_dice')}")
    print(f"  liver  HD95 {fmt('liver_hd95')} [{unit}]")
    print(f"  tumour Dice {fmt('tumour_dice')}")
    print(f"  tumour precision {fmt('tumour_precision')}")
    print(f"  tumour recall {fmt('tumour_recall')}")
    print(f"  tumour share of the predicted liver {fmt('tumour_share')}")
    print(f"  seconds per slice {fmt('seconds_per_slice')}")
    fp = s["liver_free_fp"]
    if fp["n"]:
        print(f"  liver-free slices {fp['n']}: {fp['with_fp']} with false-positive liver; area per slice "
              f"mean {fp['px_mean']:.1f} px, median {fp['px_median']:.0f}, p95 {fp['px_p95']:.0f}, max {fp['px_max']:.0f}")
    else:
        print("  liver-free slices: none in the truth")
    if fp["fp_px_per_slice_all_slices"] is not None:
        print(f"  false-positive liver per slice (all slices) {fp['fp_px_per_slice_all_slices']:.1f} px")
    return 0
