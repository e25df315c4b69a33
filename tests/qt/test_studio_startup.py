"""Start-up: the window appears fast and without importing torch, onnxruntime or pyqtgraph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
c0 = time.process_time()
from liverseg_studio.qt.app import create_app, create_window
app = create_app([])
window = create_window()
shown = []
window.shown.connect(lambda: shown.append((time.perf_counter(), time.process_time())))
window.show()
app.processEvents()
heavy = sorted(m for m in ("torch", "onnxruntime", "fastai", "pyqtgraph") if m in sys.modules)
print(json.dumps({
    "in_process_s": (shown[0][0] - t0) if shown else float("nan"),
    "cpu_s": (shown[0][1] - c0) if shown else float("nan"),
    "title": window.windowTitle(),
    "visible": window.isVisible(),
    "heavy": heavy,
}))
sys.stdout.flush()
window.close()
"""


@pytest.mark.timeout(120)
def test_window_shown_fast_without_heavy_imports(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LIVERSEG_SETTINGS=str(tmp_path / "s.ini"))
    best = None
    for _ in range(3):  # the first run may pay for cold disk caches; take the best of three
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        wall = time.perf_counter() - t0
        data = json.loads(out.stdout.strip().splitlines()[-1])
        data["wall_s"] = wall
        if best is None or data["in_process_s"] < best["in_process_s"]:
            best = data
    assert best is not None
    # This machine is shared (2 cores): when other jobs keep it busy, our share of the
    # CPU is cores / load, and the wall-clock bound scales with it.  The CPU time the
    # start-up needs is independent of the load and must stay under 2 s regardless.
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    bound = 2.0 * max(1.0, load / cores)
    print(
        f"\nstudio window shown {best['in_process_s']:.2f} s after the first import, {best['cpu_s']:.2f} s CPU "
        f"(whole process incl. interpreter start {best['wall_s']:.2f} s; load {load:.1f} on {cores} cores)"
    )
    assert best["title"] == "LiverSeg Studio" and best["visible"]
    assert best["heavy"] == [], f"imported before the first segmentation: {best['heavy']}"
    assert best["cpu_s"] < 2.0
    assert best["in_process_s"] < bound


def test_module_entry_point_parses_arguments(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LIVERSEG_SETTINGS=str(tmp_path / "s.ini"))
    out = subprocess.run(
        [sys.executable, "-m", "liverseg_studio", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0
    assert "liverseg-studio" in out.stdout and "--sample" in out.stdout
