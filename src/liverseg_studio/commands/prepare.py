"""``liverseg prepare SRC... --out DATA_DIR``: CT sources -> patient-split 2D training set."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="turn CT volumes / slice sets into a patient-split training set",
        description=(
            "Reads LiTS-layout folders (volume-N.nii[.gz] + segmentation-N.nii[.gz]), slice-set folders with "
            "manifest.csv (the shared data), and volume + label pairs (--pair); writes per slice the 3-channel "
            "windowed JPG, a PNG label mask (0/1/2 and 3 = liver-or-tumour), a 16-bit HU PNG and manifest.json, split by person (the shared data's person column, else the patient)."
        ),
    )
    p.add_argument("src", nargs="*", type=Path, help="LiTS-layout folder or slice-set folder with manifest.csv")
    p.add_argument("--out", required=True, type=Path, help="output folder (DATA_DIR)")
    p.add_argument("--pair", nargs=2, action="append", type=Path, default=[], metavar=("IMAGE", "LABELS"),
                   help="a volume and its label volume (0/1/2) readable by the loaders; repeatable")
    p.add_argument("--licence", default="unknown (user data)", help="licence recorded for --pair sources")
    p.add_argument("--size", type=int, default=256, help="output slice size in pixels (default 256)")
    p.add_argument("--split", default="80,10,10", help="train,valid,test percentages by patient (default 80,10,10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the patient split (default 0)")
    p.add_argument("--assign", action="append", default=[], metavar="PERSON=SPLIT",
                   help="put one person (the shared data's person id, else the patient id) in train, valid or test, "
                        "e.g. people held out as a test set; repeatable")
    p.add_argument("--max-empty-ratio", type=float, default=0.25,
                   help="keep at most R x (slices with liver) slices without liver per volume (default 0.25; "
                        "negative keeps all)")
    p.add_argument("--orientation", choices=("as-stored", "canonical"), default="as-stored",
                   help="canonical: turn every slice to the radiological display (liver left, spine down): per set "
                        "where the data README documents it, per slice where it varies; ambiguous slices are refused")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liverseg_studio.training.prepare import PrepareError, _Progress, parse_assign, parse_split, prepare

    if not args.src and not args.pair:
        raise PrepareError("give at least one SRC folder or --pair IMAGE LABELS")
    bar = None if args.quiet else _Progress(1, "prepare")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar(done)

    res = prepare(
        args.src,
        args.out,
        size=args.size,
        split=parse_split(args.split),
        seed=args.seed,
        max_empty_ratio=args.max_empty_ratio,
        pairs=[tuple(p) for p in args.pair],
        licence=args.licence,
        assign=parse_assign(args.assign),
        progress=progress,
        orientation=args.orientation,
    )
    print(f"prepared {res.n_slices} slices into {res.out} ({res.written} written, {res.skipped} unchanged)")
    if res.refused:
        print(f"refused {sum(res.refused.values())} slices whose orientation is ambiguous: "
              + ", ".join(f"{k}: {v}" for k, v in sorted(res.refused.items())))
    for split in ("train", "valid", "test"):
        sets = res.counts.get(split, {})
        detail = ", ".join(f"{k}: {v} slices / {res.patients[split].get(k, 0)} patients" for k, v in sorted(sets.items()))
        print(f"  {split:5s} {sum(sets.values()):6d} slices  ({detail})")
    return 0
