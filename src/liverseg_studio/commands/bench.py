"""``liverseg bench``: CPU inference speed, measured (see ``liverseg_studio.bench``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,512, got {text!r}") from None
    if not sizes or any(s < 32 or s % 32 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive multiples of 32")
    return sizes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure per-slice and end-to-end CPU inference speed")
    p.add_argument("--model", type=Path, help="model folder (default: the bundled default model)")
    p.add_argument("--sizes", type=_sizes, default=[256, 512], help="input sizes to time (default 256,512)")
    p.add_argument("--threads", type=int, help="threads (default: physical cores)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per engine after warm-up (default 10)")
    p.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="also write the figures as JSON")
    p.add_argument("--no-end-to-end", action="store_true", help="skip the volume and studio measurements")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from liverseg_studio.backends.common import default_model_dir, physical_cores
    from liverseg_studio.bench import run_bench

    model_dir = args.model if args.model is not None else default_model_dir()
    threads = args.threads or physical_cores()
    run_bench(
        model_dir,
        args.sizes,
        threads,
        repeats=max(3, args.repeats),
        json_out=args.json_out,
        end_to_end=not args.no_end_to_end,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    return 0
