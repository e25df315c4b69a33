"""Helpers of the studio tests (import as ``from studio_helpers import ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverseg_studio.core.volume import Volume

TEST_BACKEND = "test-phantom"


def open_case(qtbot: Any, win: Any, path: Path | str) -> Volume:
    """Open ``path`` in ``win`` and wait for it to load."""
    with qtbot.waitSignal(win.case_loaded, timeout=20000) as blocker:
        win.open_path(str(path))
    return blocker.args[0]


def run_and_wait(qtbot: Any, win: Any, timeout: int = 20000) -> Any:
    win.set_backend(TEST_BACKEND)
    with qtbot.waitSignal(win.segmentation_finished, timeout=timeout) as blocker:
        win.run_segmentation()
    return blocker.args[0]
