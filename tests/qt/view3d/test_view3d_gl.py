"""The 3D panel's OpenGL cases (gl_cases.py) in a process of their own under Xvfb with Mesa.

The rest of the suite runs on Qt's offscreen platform, which has no OpenGL; ``make setup`` installs
xvfb and Mesa (libgl1-mesa-dri).  Skipped, with the reason, only where there is no X server to start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_gl_cases_under_xvfb() -> None:
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (make setup installs xvfb): no X server for OpenGL")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["QT_QPA_PLATFORM"] = "xcb"
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "pytest",
           str(HERE / "gl_cases.py"), "-q", "-p", "no:cacheprovider", "-rs", "--rootdir", str(HERE.parents[2]),
           "-o", "addopts="]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=840, cwd=HERE.parents[2])
    tail = (out.stdout + out.stderr)[-4000:]
    assert out.returncode == 0, tail
    assert " passed" in out.stdout, tail
    assert "GLError" not in out.stdout + out.stderr, tail  # pyqtgraph prints paint errors and goes on
    if "skipped" in out.stdout:  # the cases say why (GL truly absent); show it
        print(tail)
