"""The client side: a worker process killed mid-run; Ctrl-C leaves no partial files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BACKEND, local_cluster, write_studies

from liverseg_studio.cohort.inputs import collect_studies
from liverseg_studio.cohort.runner import CohortConfig, run_cohort, sweep_dead_temps
from liverseg_studio.cohort.table import read_table
from liverseg_studio.cohort.task import ModelSpec, worker_state
from liverseg_studio.core.io import TEMP_PREFIX
from liverseg_studio.plugins.manager import get_plugin_manager
from liverseg_studio.segment.exporters import DEFAULT_FORMATS


def _config(out: Path) -> CohortConfig:
    return CohortConfig(out_dir=out, model=ModelSpec(backend=BACKEND), formats=DEFAULT_FORMATS)


def test_killed_worker_every_study_done_once(tmp_path):
    from distributed import Client

    write_studies(tmp_path / "in", 8, corrupt=False)
    out = tmp_path / "out"
    studies = collect_studies([str(tmp_path / "in")], get_plugin_manager().loaders, out)
    killed: list[int] = []
    with local_cluster(2) as cluster, Client(cluster) as client:
        spec = ModelSpec(backend=BACKEND)

        def kill_a_busy_worker(row: dict) -> None:
            if killed:
                return
            busy = [w for w, keys in client.processing().items() if keys]
            assert busy, "no worker is busy after the first row: the cohort is too small to test a kill"
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        summary = run_cohort(studies, _config(out), client=client, on_row=kill_a_busy_worker)
        states = client.run(worker_state, spec.plugin_name())
    assert killed
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert summary.ok == 8 and summary.failed == 0
    _, rows = read_table(out / "cohort.csv")
    assert sorted(r["id"] for r in rows) == sorted(s.id for s in studies)  # each study exactly once
    assert all(r["status"] == "ok" for r in rows)
    for r in rows:
        assert all((out / n).is_file() for n in r["outputs"].split(";"))
    # the restarted worker loaded the model once too
    assert len(states) == 2 and all(s["loads"] == 1 for s in states.values()), states
    assert killed[0] not in {s["pid"] for s in states.values()}
    assert not list(out.glob(f"{TEMP_PREFIX}*"))


def test_sweep_removes_only_dead_processes_temps(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"{TEMP_PREFIX}{dead_pid}-abcd-case_mask.nii.gz"
    live = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-abcd-case_mask.nii.gz"
    user = tmp_path / "case_mask.nii.gz"
    for p in (stale, live, user):
        p.write_bytes(b"x")
    assert sweep_dead_temps(tmp_path) == [stale]
    assert live.exists() and user.exists()


@pytest.mark.slow
def test_ctrl_c_leaves_no_partial_files(tmp_path):
    """SIGINT to the whole process group (as a terminal's Ctrl-C) mid-run: exit 130, no temporary
    files, a valid table whose rows all have their outputs."""
    write_studies(tmp_path / "in", 10, shape=(24, 96, 96), corrupt=False)
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "liverseg_studio.cli", "cohort", str(tmp_path / "in"), "--out", str(out),
        "--backend", BACKEND, "--workers", "2", "--no-dashboard",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()  # the first finished study (EOF if the command failed)
        assert first.startswith("ok "), first + proc.stderr.read()
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    time.sleep(0.5)
    leftovers = [p for p in out.rglob(f"{TEMP_PREFIX}*")]
    assert not leftovers, leftovers
    _, rows = read_table(out / "cohort.csv")
    assert 1 <= len(rows) < 10, "interrupted after the first study, not all should be done"
    assert "Traceback" not in stderr, stderr
    assert "interrupted" in stderr
    for r in rows:
        assert r["status"] == "ok"
        assert all((out / n).is_file() for n in r["outputs"].split(";"))
    # every output file on disk belongs to a complete study (a row) or a complete set of files
    assert not (out / ".liverseg-cohort" / "lock").exists()
