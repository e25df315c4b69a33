"""The studies of a cohort run.

Inputs are what ``liverseg segment`` takes (files, DICOM series folders, batch
folders, expanded by :func:`liverseg_studio.commands.segment.expand_inputs`) or
CSV files (``*.csv``) with a ``path`` column (relative paths are relative to the
CSV's folder), an optional ``id`` column and optional further id columns (any
column whose name ends with ``id``, e.g. ``patient_id``), which are copied
into the results table.

Every study gets a unique ``id`` (the CSV's, else its output name) and an
output ``name`` (:func:`liverseg_studio.segment.exporters.unique_names` of the
ids or paths, in input order: a rerun with the same inputs gets the same names).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liverseg_studio.core.errors import LiversegError


@dataclass(frozen=True)
class Study:
    """One unit of work: load -> segment -> export."""

    id: str
    path: str
    #: Output files are ``<name>_mask.nii.gz`` etc. in the cohort's folder.
    name: str
    #: Extra id columns from the input CSV: (column, value) pairs.
    extra: tuple[tuple[str, str], ...] = field(default=())


def is_csv_list(path: str | Path) -> bool:
    p = Path(path)
    return p.suffix.lower() == ".csv" and p.is_file()


def read_csv_list(path: str | Path) -> list[tuple[str, str | None, tuple[tuple[str, str], ...]]]:
    """(path, id or None, extra id columns) of each row of a cohort CSV."""
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [str(f or "").strip() for f in (reader.fieldnames or [])]
            lower = {f.lower(): f for f in fields}
            if "path" not in lower:
                raise LiversegError(f"{p}: a cohort CSV needs a 'path' column (found: {', '.join(fields) or 'none'})")
            path_col = lower["path"]
            id_col = lower.get("id")
            extra_cols = [f for f in fields if f.lower().endswith("id") and f not in (id_col, path_col) and f]
            rows = []
            for line_no, raw in enumerate(reader, start=2):
                row = {str(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
                if not any(row.values()):
                    continue  # blank line
                text = row.get(path_col, "")
                if not text:
                    raise LiversegError(f"{p}: line {line_no}: empty path")
                sp = Path(text).expanduser()
                if not sp.is_absolute():
                    sp = p.parent / sp
                ident = row.get(id_col, "") if id_col else ""
                rows.append((str(sp), ident or None, tuple((c, row.get(c, "")) for c in extra_cols)))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LiversegError(f"{p}: cannot read the cohort CSV: {exc}") from exc
    return rows


def collect_studies(inputs: list[str], loaders: Any, out_dir: Path, skipped: list[Path] | None = None) -> list[Study]:
    """The studies of ``inputs`` in order (see the module docstring)."""
    from liverseg_studio.commands.segment import expand_inputs
    from liverseg_studio.segment.exporters import unique_names

    entries: list[tuple[str, str | None, tuple[tuple[str, str], ...]]] = []
    for text in inputs:
        if is_csv_list(text):
            entries.extend(read_csv_list(text))
        else:
            entries.extend((str(p), None, ()) for p in expand_inputs([text], loaders, out_dir, skipped))
    seen_paths: dict[str, str] = {}
    for path, _ident, _extra in entries:
        key = str(Path(path).resolve())
        if key in seen_paths:
            raise LiversegError(f"{path}: listed twice in the cohort")
        seen_paths[key] = path
    # an id is a name, not a path: its slashes stay in the output name (as "_")
    names = unique_names([ident.replace("/", "_").replace("\\", "_") if ident else path for path, ident, _ in entries])
    studies = []
    ids: set[str] = set()
    for (path, ident, extra), name in zip(entries, names):
        sid = ident or name
        if sid in ids:
            raise LiversegError(f"id {sid!r} is used by two studies of the cohort")
        ids.add(sid)
        studies.append(Study(id=sid, path=os.path.abspath(path), name=name, extra=extra))
    return studies
