"""A real ``liverseg segment`` process stopped by SIGTERM leaves no partial output files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from liverseg_studio.core.io import TEMP_PREFIX
from liverseg_studio.sample import sample_image


@pytest.mark.timeout(240)
@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
def test_sigterm_mid_run_leaves_complete_outputs_or_none(tmp_path):
    sample = sample_image()
    if sample is None:
        pytest.skip("sample case not installed")
    out = tmp_path / "out"
    # three copies of the sample: the run is stopped while one of them is in progress
    inputs = []
    for i in range(3):
        p = tmp_path / f"case{i}.mrc"
        p.symlink_to(sample)
        inputs.append(str(p))
    proc = subprocess.Popen(
        [sys.executable, "-m", "liverseg_studio.cli", "segment", *inputs, "--out", str(out), "--backend", "threshold"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # wait until the second input is being segmented (its progress bar starts)
        for line in proc.stderr:
            if line.startswith("case1 ["):
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, err
    names = {p.name for p in out.iterdir()}
    assert not any(n.startswith(TEMP_PREFIX) for n in names), names
    for i in range(3):
        mine = {n for n in names if n.startswith(f"case{i}_")}
        assert mine in (set(), {f"case{i}_mask.nii.gz", f"case{i}_montage.png", f"case{i}_report.json"}), mine
    assert {n for n in names if n.startswith("case0_")}  # finished before the signal
    assert not {n for n in names if n.startswith("case2_")}  # never started
