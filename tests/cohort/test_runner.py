"""The client side: a worker process killed mid-run; Ctrl-C leaves no partial files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the 'cluster' extra (dask, distributed) is not installed")

from cohort_helpers import BACKEND, write_studies

from liverseg_studio.cohort.inputs import collect_studies
from liverseg_studio.cohort.runner import CohortConfig, run_cohort, sweep_dead_temps
from liverseg_studio.cohort.table import read_table
from liverseg_studio.cohort.task import ModelSpec, worker_state
from liverseg_studio.core.io import TEMP_PREFIX
from liverseg_studio.plugins.manager import get_plugin_manager
from liverseg_studio.segment.exporters import DEFAULT_FORMATS


def test_killed_worker_every_study_done_once(tmp_path, client):
    write_studies(tmp_path / "in", 8, corrupt=False)
    out = tmp_path / "out"
    studies = collect_studies([str(tmp_path / "in")], get_plugin_manager().loaders, out)
    spec = ModelSpec(backend=BACKEND, threads=1)  # its own plugin (and counters) on the shared cluster
    config = CohortConfig(out_dir=out, model=spec, formats=DEFAULT_FORMATS)
    killed: list[int] = []

    def kill_a_busy_worker(row: dict) -> None:
        if killed:
            return
        busy = [w for w, keys in client.processing().items() if keys]
        assert busy, "no worker is busy after the first row: the cohort is too small to test a kill"
        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    summary = run_cohort(studies, config, client=client, on_row=kill_a_busy_worker)
    assert killed
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert summary.ok == 8 and summary.failed == 0
    _, rows = read_table(out / "cohort.csv")
    assert sorted(r["id"] for r in rows) == sorted(s.id for s in studies)  # each study exactly once
    assert all(r["status"] == "ok" for r in rows)
    for r in rows:
        assert all((out / n).is_file() for n in r["outputs"].split(";"))
    assert not list(out.glob(f"{TEMP_PREFIX}*"))
    # the nanny restarts the killed worker, which loads the model once too
    client.wait_for_workers(2, timeout=300)
    deadline = time.monotonic() + 300
    while True:
        states = client.run(worker_state, spec.plugin_name())
        if (len(states) == 2 and all(s["loads"] == 1 for s in states.values())) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(states) == 2 and all(s["loads"] == 1 for s in states.values()), states
    assert killed[0] not in {s["pid"] for s in states.values()}


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
    n = 10
    write_studies(tmp_path / "in", n, shape=(24, 96, 96), corrupt=False)
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "liverseg_studio.cli", "cohort", str(tmp_path / "in"), "--out", str(out),
        "--backend", BACKEND, "--workers", "2", "--no-dashboard",
    ]  # fmt: skip
    # A shell without job control starts background jobs with SIGINT ignored, and children inherit that
    # (a backgrounded `make test` then saw exit 0): give the command a terminal's default Ctrl-C.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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
    assert 1 <= len(rows) < n, "interrupted after the first study, not all should be done"
    assert "Traceback" not in stderr, stderr
    assert "interrupted" in stderr
    for r in rows:
        assert r["status"] == "ok"
        assert all((out / n).is_file() for n in r["outputs"].split(";"))
    # every output file on disk belongs to a complete study (a row) or a complete set of files
    assert not (out / ".liverseg-cohort" / "lock").exists()
