"""cohort.csv: rows appended one write each, torn lines ignored, the resume rules, Parquet."""

from __future__ import annotations

from pathlib import Path

import pytest

from liverseg_studio.cohort.inputs import Study
from liverseg_studio.cohort.table import COLUMNS, CohortTable, columns_for, plan_resume, read_table, write_parquet


def _row(sid: str, status: str = "ok", sha: str = "aa", engine: str = "onnx", outputs: str = "", **kw) -> dict:
    return {"id": sid, "path": f"/data/{sid}.nii.gz", "status": status, "model_sha256": sha, "engine": engine,
            "outputs": outputs, **kw}  # fmt: skip


def test_append_and_read_back_one_line_per_row(tmp_path):
    t = CohortTable(tmp_path / "cohort.csv", columns_for(["patient_id"]))
    t.rewrite([])
    with t:
        t.append(_row("a", error="line one\nline two, with comma", liver_ml=1234.56789, patient_id="P1"))
        t.append(_row("b", status="failed", liver_ml=None))
    text = (tmp_path / "cohort.csv").read_text()
    assert text.count("\n") == 3  # header + 2 rows: every field is on one line
    header, rows = read_table(tmp_path / "cohort.csv")
    assert header[:2] == ["id", "patient_id"] and header[2:] == list(COLUMNS[1:])
    assert rows[0]["error"] == "line one line two, with comma"
    assert rows[0]["liver_ml"] == "1234.57" and rows[0]["patient_id"] == "P1"
    assert rows[1]["liver_ml"] == ""


def test_torn_last_line_is_ignored_and_dropped_by_the_next_rewrite(tmp_path):
    path = tmp_path / "cohort.csv"
    t = CohortTable(path, columns_for())
    t.rewrite([_row("a")])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("b,/data/b.nii.gz,o")  # a crash in the middle of a write
    _, rows = read_table(path)
    assert [r["id"] for r in rows] == ["a"]
    t.rewrite(rows)
    assert path.read_text().endswith("\n")
    assert [r["id"] for r in read_table(path)[1]] == ["a"]


def test_missing_table_reads_empty(tmp_path):
    assert read_table(tmp_path / "nope.csv") == ([], [])


def _studies(*ids: str) -> list[Study]:
    return [Study(id=i, path=f"/data/{i}.nii.gz", name=i) for i in ids]


def test_resume_rules(tmp_path):
    out = tmp_path
    for name in ("a_mask.nii.gz", "a_report.json", "c_mask.nii.gz"):
        (out / name).write_bytes(b"x")
    rows = [
        _row("a", outputs="a_mask.nii.gz;a_report.json"),  # done: skipped
        _row("b", status="failed"),  # failed: kept unless --redo-failed
        _row("c", outputs="c_mask.nii.gz;c_report.json"),  # an output is missing: redone
        _row("d", sha="bb", outputs="a_mask.nii.gz"),  # another model: redone
        _row("e", engine="fastai", outputs="a_mask.nii.gz"),  # another engine: redone
        {**_row("f", outputs="a_mask.nii.gz"), "path": "/elsewhere/f.nii.gz"},  # another input: redone
        _row("zz", outputs="gone.nii.gz"),  # not in this run: kept as it is
    ]
    studies = _studies("a", "b", "c", "d", "e", "f", "new")
    plan = plan_resume(studies, rows, out, engine="onnx", model_sha256="aa")
    assert [s.id for s in plan.todo] == ["c", "d", "e", "f", "new"]
    assert [r["id"] for r in plan.kept] == ["a", "b", "zz"]
    assert (plan.skipped_ok, plan.skipped_failed) == (1, 1)
    assert plan.reasons["d"] == plan.reasons["e"] == "the model changed"
    assert "c_report.json" in plan.reasons["c"]
    redo = plan_resume(studies, rows, out, engine="onnx", model_sha256="aa", redo_failed=True)
    assert [s.id for s in redo.todo] == ["b", "c", "d", "e", "f", "new"]
    assert [r["id"] for r in redo.kept] == ["a", "zz"]


def test_resume_uses_the_last_row_of_a_study(tmp_path):
    (tmp_path / "a_mask.nii.gz").write_bytes(b"x")
    rows = [_row("a", status="failed"), _row("a", outputs="a_mask.nii.gz")]
    plan = plan_resume(_studies("a"), rows, tmp_path, engine="onnx", model_sha256="aa", redo_failed=True)
    assert plan.todo == [] and len(plan.kept) == 1 and plan.kept[0]["status"] == "ok"


def test_parquet_typed_columns(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    columns = columns_for()
    rows = [
        {**{c: "" for c in columns}, "id": "a", "status": "ok", "liver_ml": "1500.5", "n_lesions": "2"},
        {**{c: "" for c in columns}, "id": "b", "status": "failed", "error": "bad"},
    ]
    path = write_parquet(rows, columns, tmp_path / "cohort.parquet")
    table = pq.read_table(path).to_pydict()
    assert table["liver_ml"] == [1500.5, None]
    assert table["n_lesions"] == [2, None]
    assert table["status"] == ["ok", "failed"]


def test_parquet_without_pyarrow_is_skipped(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *a, **kw):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    assert write_parquet([], columns_for(), tmp_path / "x.parquet") is None
    assert not Path(tmp_path / "x.parquet").exists()
