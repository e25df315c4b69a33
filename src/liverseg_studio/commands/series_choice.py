"""``liverseg segment --all-series``: segment every series of a study folder that the rule would consider
(issue 28; the rule itself is :mod:`liverseg_studio.loaders.study`).  Without it, a study folder is one
input and the loader picks one series, printing which and why in one line."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--all-series",
        action="store_true",
        help="segment every axial CT series of a study folder (scouts, secondary captures, derived and "
        "non-axial series skipped), one output set each, instead of the one the rule picks",
    )


def expand(args: argparse.Namespace, inputs: list[Path], names: list[str], options: Any) -> tuple[list[Path], list[str], list[Any]]:
    """Inputs, output names and load options per input; with ``--all-series`` each study folder becomes one
    input per candidate series (named ``<name>_s<SeriesNumber>``)."""
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.loaders.dicom_series import scan_study

    if not getattr(args, "all_series", False):
        return inputs, names, [options] * len(inputs)
    if getattr(options, "series_uid", None):
        raise LiversegError("--all-series and --series exclude each other")
    out_inputs, out_names, out_options = [], [], []
    for path, name in zip(inputs, names):
        try:
            summaries = scan_study(path).summaries if Path(path).is_dir() else ()
        except LiversegError:
            summaries = ()  # the loader reports it, in the run's own words
        candidates = [s for s in summaries if not s.skipped]
        if len(candidates) < 2:
            out_inputs.append(path), out_names.append(name), out_options.append(options)
            continue
        for k, s in enumerate(candidates, start=1):
            tag = str(s.series_number) if s.series_number is not None else str(k)
            out_inputs.append(path)
            out_names.append(f"{name}_s{re.sub(r'[^0-9A-Za-z]+', '', tag) or k}")
            out_options.append(dataclasses.replace(options, series_uid=s.uid))
    return out_inputs, out_names, out_options
