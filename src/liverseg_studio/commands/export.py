"""``liverseg export MODEL_DIR [--int8 --calib DATA_DIR] [--opset N]``: ONNX files for a model folder.

Reads ``model.safetensors`` + ``model.json``; writes ``model.onnx`` (fp32) and,
with ``--int8``, ``model.int8.onnx`` (static QDQ quantization calibrated on
training slices, refused when it agrees with fp32 below ``--min-agreement``
mean Dice on validation slices); records sha256 and size in ``model.json``.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained model folder to ONNX (fp32, and int8 with --int8)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="folder with model.safetensors and model.json")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx (needs --calib)")
    p.add_argument(
        "--calib",
        metavar="DATA_DIR",
        help="prepared data folder (manifest.json; train split calibrates, valid split verifies) or a folder of JPG/PNG",
    )
    p.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset (default 17)")
    p.add_argument("--no-fp32", action="store_true", help="do not keep model.onnx (int8 only)")
    p.add_argument("--calib-slices", type=int, default=64, metavar="N", help="calibration slices (default 64)")
    p.add_argument("--valid-slices", type=int, default=32, metavar="N", help="verification slices (default 32)")
    p.add_argument(
        "--min-agreement",
        type=float,
        default=0.98,
        metavar="DICE",
        help="minimum mean Dice between int8 and fp32 label maps (default 0.98)",
    )
    p.add_argument(
        "--no-reduce-range",
        dest="reduce_range",
        action="store_false",
        help="8-bit instead of 7-bit weights (7-bit avoids u8*s8 saturation on CPUs without VNNI)",
    )
    p.add_argument("--threads", type=int, default=None, metavar="N", help="ONNX Runtime threads (default: physical cores)")
    p.add_argument("--seed", type=int, default=0, help="seed for choosing slices (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing model.onnx / model.int8.onnx")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.training.export import export_model

    if args.calib and not args.int8:
        print("liverseg export: note: --calib is only used with --int8", file=sys.stderr)
    if args.no_fp32 and not args.int8:
        raise LiversegError("--no-fp32 leaves nothing to export without --int8")
    if args.opset < 13 or args.opset > 21:
        raise LiversegError(f"--opset {args.opset} is not supported (13..21; QDQ per-channel needs >= 13)")

    def log(msg: str) -> None:
        print(msg, flush=True)

    report = export_model(
        args.model_dir,
        int8=args.int8,
        calib=args.calib,
        opset=args.opset,
        overwrite=args.overwrite,
        fp32=not args.no_fp32,
        n_calib=args.calib_slices,
        n_valid=args.valid_slices,
        seed=args.seed,
        min_agreement=args.min_agreement,
        reduce_range=args.reduce_range,
        threads=args.threads,
        log=log,
    )
    if report.max_abs_logit_diff is not None:
        print(f"max abs logit difference torch vs ONNX fp32: {report.max_abs_logit_diff:.3g}")
    if report.agreement:
        print(f"int8 vs fp32 mean Dice: {report.agreement['mean']:.4f}")
    return 0
