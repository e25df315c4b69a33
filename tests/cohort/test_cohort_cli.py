"""``liverseg cohort`` end to end on a LocalCluster with 2 worker processes (issue 16's acceptance).

6 synthetic studies, one corrupt: 5 ok rows + 1 failed row; the masks equal what
``liverseg segment`` writes for the same inputs; each worker loaded the model
once; a rerun runs 0 tasks; a missing output is redone (replacing the study's own
earlier files); --redo-failed retries the failure.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("distributed", reason="the 'cluster' extra (dask, distributed) is not installed")

from cohort_helpers import BACKEND, CORRUPT, write_studies

from liverseg_studio.cli import main
from liverseg_studio.cohort.table import read_table
from liverseg_studio.cohort.task import ModelSpec, worker_state
from liverseg_studio.core.io import TEMP_PREFIX


def _states(client) -> dict:
    return client.run(worker_state, ModelSpec(backend=BACKEND).plugin_name())


def _rows(out: Path) -> dict[str, dict[str, str]]:
    header, rows = read_table(out / "cohort.csv")
    assert header[:4] == ["id", "path", "status", "error"]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"a study has two rows: {ids}"
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, cluster, client):
    """One cohort run through the CLI on the module's cluster, and ``liverseg segment`` on the same inputs."""
    base = tmp_path_factory.mktemp("cohort")
    inputs = write_studies(base / "in", 5)
    out = base / "out"
    rc = main(["cohort", str(base / "in"), "--out", str(out), "--backend", BACKEND, "--scheduler", cluster.scheduler_address])
    seg_out = base / "segment"
    seg_rc = main(["segment", *[str(p) for p in inputs], "--out", str(seg_out), "--backend", BACKEND])
    return base, inputs, out, rc, seg_out, seg_rc


def test_rows_ok_and_failed(first_run):
    _, inputs, out, rc, _, _ = first_run
    assert rc == 2  # a study of the cohort failed
    rows = _rows(out)
    assert sorted(rows) == sorted([f"case{i}" for i in range(5)] + [CORRUPT])
    assert [i for i, r in rows.items() if r["status"] == "failed"] == [CORRUPT]
    assert "corrupt.nii.gz" in rows[CORRUPT]["error"]
    for i in range(5):
        r = rows[f"case{i}"]
        assert r["status"] == "ok", r
        assert r["path"] == str(inputs[i].resolve())
        assert float(r["liver_ml"]) > 0 and int(r["liver_voxels"]) > 0
        assert r["engine"] == BACKEND and r["model_name"]
        assert float(r["seconds"]) > 0
        assert r["mask"] == f"case{i}_mask.nii.gz"
        for name in r["outputs"].split(";"):
            assert (out / name).is_file()
    assert not list(out.glob(f"{TEMP_PREFIX}*"))
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(out / "cohort.parquet")
    assert table.num_rows == 6
    assert str(table.schema.field("liver_ml").type) == "double"


def test_masks_identical_to_segment(first_run):
    _, inputs, out, _, seg_out, seg_rc = first_run
    assert seg_rc == 2  # segment reports the corrupt input too
    rows = _rows(out)
    for i in range(5):
        a = nib.load(out / f"case{i}_mask.nii.gz")
        b = nib.load(seg_out / f"case{i}_mask.nii.gz")
        assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
        assert np.array_equal(a.affine, b.affine)
        assert a.get_data_dtype() == b.get_data_dtype() == np.uint8
        assert int(rows[f"case{i}"]["liver_voxels"]) == int((np.asarray(b.dataobj) >= 1).sum())
    # the same files as segment writes, named the same
    assert sorted(p.name for p in seg_out.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in out.iterdir() if not p.name.startswith(".") and not p.name.startswith("cohort.")
    )


def test_model_loaded_once_per_worker(first_run, client):
    states = _states(client)
    assert len(states) == 2
    assert all(s["loads"] == 1 for s in states.values()), states
    assert sum(s["tasks"] for s in states.values()) == 6
    assert all(s["tasks"] >= 1 for s in states.values()), "both workers should have segmented studies"


def test_rerun_runs_no_task(first_run, cluster, client, capsys, monkeypatch):
    import socket

    _, _, out, _, _, _ = first_run
    before = _rows(out)
    tasks = sum(s["tasks"] for s in _states(client).values())
    capsys.readouterr()
    peers: list = []
    connect = socket.socket.connect

    def recording_connect(sock, address, *a, **kw):
        peers.append(address)
        return connect(sock, address, *a, **kw)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    rc = main(["cohort", str(out.parent / "in"), "--out", str(out), "--backend", BACKEND, "--scheduler", cluster.scheduler_address])
    monkeypatch.undo()
    inet = [p for p in peers if isinstance(p, tuple)]
    assert inet and all(p[0].startswith("127.") or p[0] in ("::1", "localhost") for p in inet), peers  # loopback only
    assert rc == 2
    assert sum(s["tasks"] for s in _states(client).values()) == tasks  # 0 tasks ran
    assert all(s["loads"] == 1 for s in _states(client).values())  # the plugin was not loaded again
    assert "0 task(s) run" in capsys.readouterr().out
    assert _rows(out) == before


def test_missing_output_redone_and_redo_failed(first_run, cluster, client):
    base, inputs, out, _, _, _ = first_run
    (out / "case1_mask.nii.gz").unlink()
    rc = main(["cohort", str(base / "in"), "--out", str(out), "--backend", BACKEND, "--scheduler", cluster.scheduler_address])
    assert rc == 2
    rows = _rows(out)
    assert rows["case1"]["status"] == "ok"  # its own montage and report were replaced, not refused
    assert (out / "case1_mask.nii.gz").is_file()
    assert rows[CORRUPT]["status"] == "failed"
    # the corrupt study repaired: --redo-failed runs it again
    shutil.copy(inputs[0], inputs[-1])
    rc = main(
        ["cohort", str(base / "in"), "--out", str(out), "--backend", BACKEND, "--scheduler", cluster.scheduler_address, "--redo-failed"]
    )
    assert rc == 0
    rows = _rows(out)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows.values())


def test_refuses_to_replace_files_it_did_not_write(tmp_path, cluster):
    write_studies(tmp_path / "in", 1, corrupt=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "case0_mask.nii.gz").write_bytes(b"user data")
    rc = main(["cohort", str(tmp_path / "in"), "--out", str(out), "--backend", BACKEND, "--scheduler", cluster.scheduler_address])
    assert rc == 2
    row = _rows(out)["case0"]
    assert row["status"] == "failed" and "--overwrite" in row["error"]
    assert (out / "case0_mask.nii.gz").read_bytes() == b"user data"
