"""``liverseg info FILE``: which loader reads it, shape, spacing, intensity, HU range."""

from __future__ import annotations

import argparse

import numpy as np


def parse_window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in HU, got {text!r}") from None
    if not hi > lo:
        raise argparse.ArgumentTypeError(f"HIGH must exceed LOW, got {text!r}")
    return lo, hi


def add_load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input-window",
        type=parse_window,
        metavar="LOW,HIGH",
        help="HU of grey 0 and grey 255 for 8-bit images (default 0,255)",
    )
    p.add_argument(
        "--intensity",
        choices=("auto", "hu", "hu+1024"),
        default="auto",
        help="auto (default): refuse volumes whose values do not look like CT in HU (and correct unsigned "
        "DICOM without RescaleIntercept); hu: take the values as HU unchecked; hu+1024: subtract 1024",
    )
    p.add_argument("--series", metavar="UID", help="SeriesInstanceUID when a DICOM folder holds several series")
    p.add_argument(
        "--max-input-gb",
        type=parse_gigabytes,
        metavar="GB",
        help="refuse inputs whose decoded voxels would need more memory than this (default 4)",
    )


def parse_gigabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GB, got {text!r}") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"expected a positive number of GB, got {text!r}")
    return value


def load_options(args: argparse.Namespace):
    from liverseg_studio.plugins.registry import LoadOptions

    extra = {}
    gb = getattr(args, "max_input_gb", None)
    if gb is not None:
        extra["max_bytes"] = int(gb * 1024**3)
    return LoadOptions(
        input_window=getattr(args, "input_window", None),
        series_uid=getattr(args, "series", None),
        intensity=getattr(args, "intensity", None) or "auto",
        **extra,
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe an image or volume")
    p.add_argument("path", help="file or folder")
    add_load_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liverseg_studio.core.volume import Intensity
    from liverseg_studio.plugins.manager import get_plugin_manager

    pm = get_plugin_manager()
    volume = pm.loaders.load(args.path, load_options(args))
    z, y, x = volume.shape
    print(f"path:       {args.path}")
    print(f"loader:     {volume.loader}")
    print(f"shape:      {z} slices x {y} rows x {x} columns (z, y, x)")
    if volume.spacing_known:
        dz, dy, dx = volume.spacing
        print(f"spacing:    {dz:.3f} x {dy:.3f} x {dx:.3f} mm (z, y, x)")
    else:
        print("spacing:    unknown (not recorded in the file; areas and volumes in pixels/voxels)")
    print(f"intensity:  {volume.intensity.value}")
    if volume.intensity is Intensity.WINDOWED_RGB:
        print("HU range:   n/a (already windowed 3-channel image)")
    else:
        lo = min(float(np.min(volume.hu_slice(i))) for i in range(z))
        hi = max(float(np.max(volume.hu_slice(i))) for i in range(z))
        note = f" (8-bit, grey 0..255 -> {volume.hu_range[0]:g}..{volume.hu_range[1]:g} HU)" if volume.hu_range else ""
        print(f"HU range:   {lo:.1f} .. {hi:.1f}{note}")
    for key, value in volume.meta.items():
        if isinstance(value, (str, int, float)):
            print(f"{key + ':':11s} {value}")
    return 0
