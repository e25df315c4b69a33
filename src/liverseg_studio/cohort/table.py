"""``cohort.csv``: one row per study, written as tasks finish.

* At the start of a run the table is rewritten once, atomically (temp file +
  rename), with the rows that the run keeps (:func:`plan_resume`); the studies
  to do get new rows.
* Each finished study is one ``os.write`` of a whole line to the file opened
  with ``O_APPEND``, then ``fsync``: a crash at any moment leaves a valid table
  of what is done (at worst a torn last line without its newline after a power
  cut, which :func:`read_table` ignores and the next run drops).
* Every field is a single line (errors are flattened), so "one line = one row".
* ``cohort.parquet`` (typed columns) is written from the rows at the end of a
  run when pyarrow is installed.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from liverseg_studio.cohort.inputs import Study
from liverseg_studio.core.io import atomic_output

TABLE_NAME = "cohort.csv"
PARQUET_NAME = "cohort.parquet"

OK = "ok"
FAILED = "failed"

#: The columns, in order (extra id columns of an input CSV come right after ``id``).
COLUMNS: tuple[str, ...] = (
    "id",
    "path",
    "status",
    "error",
    "warnings",
    "liver_ml",
    "tumour_ml",
    "tumour_burden_percent",
    "n_lesions",
    "liver_voxels",
    "tumour_voxels",
    "n_slices",
    "model_name",
    "model_version",
    "model_sha256",
    "engine",
    "seconds",
    "mask",
    "outputs",
    "worker",
    "finished_utc",
)
FLOAT_COLUMNS = ("liver_ml", "tumour_ml", "tumour_burden_percent", "seconds")
INT_COLUMNS = ("n_lesions", "liver_voxels", "tumour_voxels", "n_slices")


def one_line(value: Any) -> str:
    """A table field: ``None`` -> empty, floats rounded, text on one line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else repr(value)
    return " ".join(str(value).split())


def columns_for(extra: Iterable[str] = ()) -> list[str]:
    extra = [c for c in dict.fromkeys(extra) if c not in COLUMNS]
    return [COLUMNS[0], *extra, *COLUMNS[1:]]


def format_row(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([one_line(row.get(c)) for c in columns])
    return buf.getvalue()


def read_table(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a cohort table; ([], []) when it does not exist.

    A last line without its newline (a torn write) is ignored.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    rows = [{k: (v or "") for k, v in r.items() if k is not None} for r in reader]
    return header, rows


class CohortTable:
    """Append-only writer of ``cohort.csv`` (see the module docstring)."""

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self._fd: int | None = None

    def rewrite(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Replace the table, atomically, by the header and ``rows``."""
        self.close()
        header = format_row({c: c for c in self.columns}, self.columns)
        body = "".join(format_row(r, self.columns) for r in rows)
        with atomic_output(self.path, overwrite=True) as tmp:
            with open(tmp, "x", encoding="utf-8", newline="") as fh:
                fh.write(header + body)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row: a single ``write`` of the whole line, then ``fsync``."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        data = format_row(row, self.columns).encode("utf-8")
        written = os.write(self._fd, data)
        if written != len(data):  # pragma: no cover - regular files write whole small buffers
            raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "CohortTable":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- resume ---------------------------------------------------------------------
@dataclass
class ResumePlan:
    """What a run does: ``todo`` studies; ``kept`` rows (skipped studies and rows of other studies)."""

    todo: list[Study]
    kept: list[dict[str, str]]
    skipped_ok: int = 0
    skipped_failed: int = 0
    #: study id -> why it is redone (a changed model, missing outputs, --redo-failed...)
    reasons: dict[str, str] | None = None


def outputs_of(row: Mapping[str, str]) -> list[str]:
    return [n for n in (row.get("outputs") or "").split(";") if n]


def plan_resume(
    studies: Sequence[Study],
    rows: Sequence[Mapping[str, str]],
    out_dir: str | Path,
    *,
    engine: str,
    model_sha256: str,
    redo_failed: bool = False,
) -> ResumePlan:
    """Which studies to run.  A study is skipped when its row has the same path, engine and
    model sha256, and either is ``ok`` with every listed output present, or is ``failed``
    (unless ``redo_failed``).  Every other study is (re)done and its old row dropped."""
    out = Path(out_dir)
    by_id: dict[str, Mapping[str, str]] = {}
    for r in rows:
        by_id[r.get("id", "")] = r  # the last row of an id wins
    current = {s.id for s in studies}
    todo: list[Study] = []
    keep_ids: set[str] = set()
    reasons: dict[str, str] = {}
    plan = ResumePlan(todo=todo, kept=[], reasons=reasons)
    for s in studies:
        r = by_id.get(s.id)
        if r is None:
            todo.append(s)
            continue
        if r.get("path", "") != s.path:
            reasons[s.id] = "its path changed"
        elif r.get("engine", "") != engine or r.get("model_sha256", "") != model_sha256:
            reasons[s.id] = "the model changed"
        elif r.get("status") == OK:
            names = outputs_of(r)
            missing = [n for n in names if not (out / n).exists()]  # a file, or a folder (<name>_mesh)
            if names and not missing:
                keep_ids.add(s.id)
                plan.skipped_ok += 1
                continue
            reasons[s.id] = f"output missing: {missing[0] if missing else 'none listed'}"
        elif r.get("status") == FAILED and not redo_failed:
            keep_ids.add(s.id)
            plan.skipped_failed += 1
            continue
        else:
            reasons[s.id] = "it failed before" if r.get("status") == FAILED else f"status {r.get('status')!r}"
        todo.append(s)
    seen: set[str] = set()
    for r in reversed(rows):  # one row per id: the last one
        rid = r.get("id", "")
        if rid in seen:
            continue
        seen.add(rid)
        if rid in keep_ids or rid not in current:
            plan.kept.append(dict(r))
    plan.kept.reverse()
    return plan


# -- Parquet ----------------------------------------------------------------------
def write_parquet(rows: Sequence[Mapping[str, str]], columns: Sequence[str], path: str | Path) -> Path | None:
    """``cohort.parquet`` with typed columns (floats, ints, strings; empty -> null), atomically.

    Returns None when pyarrow is not installed.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None

    def conv(col: str, text: str) -> Any:
        if text == "":
            return None
        try:
            if col in FLOAT_COLUMNS:
                return float(text)
            if col in INT_COLUMNS:
                return int(float(text))
        except ValueError:
            return None
        return text

    arrays = {}
    for col in columns:
        kind = pa.float64() if col in FLOAT_COLUMNS else pa.int64() if col in INT_COLUMNS else pa.string()
        arrays[col] = pa.array([conv(col, r.get(col, "") or "") for r in rows], type=kind)
    table = pa.table(arrays)
    with atomic_output(path, overwrite=True) as tmp:
        pq.write_table(table, str(tmp))
    return Path(path)
