"""``liverseg cohort --export mesh --mesh-format ply`` (issue 25): one surface folder per study, kept on a rerun."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("distributed", reason="the 'cluster' extra (dask, distributed) is not installed")
trimesh = pytest.importorskip("trimesh")

from cohort_helpers import BACKEND, local_cluster, write_studies

from liverseg_studio.cli import main
from liverseg_studio.cohort.table import read_table


@pytest.fixture(scope="module")
def cluster():
    """A cluster of its own: the shared one counts model loads per worker (test_cohort_cli)."""
    with local_cluster(1) as c:
        yield c


def test_cohort_writes_meshes_and_keeps_them_on_a_rerun(tmp_path, cluster, capsys):
    write_studies(tmp_path / "in", 2, corrupt=False)
    out = tmp_path / "out"
    args = ["cohort", str(tmp_path / "in"), "--out", str(out), "--backend", BACKEND, "--scheduler",
            cluster.scheduler_address, "--export", "mask,mesh,report", "--mesh-format", "ply"]
    assert main(args) == 0, capsys.readouterr().err
    _header, rows = read_table(out / "cohort.csv")
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for r in rows:
        assert f"{r['id']}_mesh" in r["outputs"].split(";")
        folder = out / f"{r['id']}_mesh"
        info = json.loads((folder / "surfaces.json").read_text())
        assert info["format"] == "ply" and info["coordinates"] == "RAS"
        liver = trimesh.load(str(folder / "liver.ply"), force="mesh")
        assert liver.is_watertight and liver.volume > 0
    stamp = (out / f"{rows[0]['id']}_mesh" / "liver.ply").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert (out / f"{rows[0]['id']}_mesh" / "liver.ply").stat().st_mtime_ns == stamp  # not redone
