"""Fixtures of the studio tests: temporary settings, a controllable test backend, the window.

Every test here runs offscreen (``tests/conftest.py`` sets ``QT_QPA_PLATFORM``)
with settings in a temporary INI file, never the user's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from liverseg_studio.backends.base import Prediction
from liverseg_studio.core.errors import CancelledError
from liverseg_studio.core.volume import Volume
from liverseg_studio.plugins import hookimpl
from liverseg_studio.plugins.manager import PluginManager
from liverseg_studio.plugins.registry import BackendSpec

from studio_helpers import TEST_BACKEND  # noqa: E402,F401


@dataclass
class BackendControl:
    """How the test backend behaves; shared by every instance the factory makes."""

    #: seconds to sleep per slice (polling is_cancelled before each slice)
    delay: float = 0.0
    #: raise this from predict
    error: BaseException | None = None
    #: set when predict started; the test may wait on it
    started: threading.Event = field(default_factory=threading.Event)
    #: predict waits for this event (if given) before returning
    gate: threading.Event | None = None
    loads: int = 0
    predicts: int = 0
    #: concurrent predictions seen (must stay 1)
    running: int = 0
    max_running: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class PhantomBackend:
    """Segments the synthetic phantom by HU: 40.. HU liver, 10..30 HU tumour (exact on the phantom)."""

    name = TEST_BACKEND

    def __init__(self, control: BackendControl) -> None:
        self.control = control
        self.card = None
        self.model_dir = None

    def load(self, model_dir: Path | None, *, threads: int | None = None) -> None:
        self.control.loads += 1

    def predict(self, volume: Volume, *, progress: Any = None, is_cancelled: Any = None) -> Prediction:
        c = self.control
        with c.lock:
            c.predicts += 1
            c.running += 1
            c.max_running = max(c.max_running, c.running)
        try:
            c.started.set()
            if c.error is not None:
                raise c.error
            labels = np.zeros(volume.shape, dtype=np.uint8)
            n = volume.n_slices
            for z in range(n):
                if is_cancelled is not None and is_cancelled():
                    raise CancelledError("cancelled by the user")
                if c.delay:
                    time.sleep(c.delay)
                hu = volume.hu_slice(z)
                labels[z][hu >= 40] = 1
                labels[z][(hu >= 10) & (hu <= 30)] = 2
                if progress is not None:
                    progress(z + 1, n)
            if c.gate is not None:
                while not c.gate.wait(0.01):
                    if is_cancelled is not None and is_cancelled():
                        raise CancelledError("cancelled by the user")
            return Prediction(labels=labels, timings={"inference": 0.0})
        finally:
            with c.lock:
                c.running -= 1


class _TestPlugin:
    def __init__(self, control: BackendControl) -> None:
        self.control = control

    @hookimpl
    def liverseg_register_backends(self, registry: Any) -> None:
        registry.add(
            BackendSpec(
                name=TEST_BACKEND,
                factory=lambda: PhantomBackend(self.control),
                description="test backend (HU thresholds on the phantom)",
                needs_model=False,
            )
        )


@pytest.fixture(autouse=True)
def temp_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings in a temporary INI file (never the user's)."""
    path = tmp_path_factory.mktemp("settings") / "studio.ini"
    monkeypatch.setenv("LIVERSEG_SETTINGS", str(path))
    return path


@pytest.fixture
def control() -> BackendControl:
    return BackendControl()


@pytest.fixture
def manager(control: BackendControl) -> PluginManager:
    """The built-in loaders plus the test backend (no model, no torch)."""
    import liverseg_studio.loaders.plugin as builtin_loaders

    pm = PluginManager(disabled=())
    pm.register(builtin_loaders, "builtin_loaders")
    pm.register(_TestPlugin(control), "test_backend")
    assert TEST_BACKEND in pm.backends and len(pm.loaders) > 0
    return pm


@pytest.fixture
def window(qtbot: Any, manager: PluginManager, temp_settings: Path):
    """The main window with the test backend; closed (workers joined) at the end."""
    from liverseg_studio.qt.app import create_app
    from liverseg_studio.qt.main_window import MainWindow
    from liverseg_studio.qt.settings import StudioSettings

    create_app([])
    win = MainWindow(settings=StudioSettings(temp_settings), manager=manager)
    qtbot.addWidget(win)
    win.resize(1400, 860)
    win.show()
    yield win
    win.shutdown(10)


@pytest.fixture
def errors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record QMessageBox.critical calls instead of showing modal dialogs."""
    from PySide6.QtWidgets import QMessageBox

    calls: list[tuple[str, str]] = []

    def fake_critical(parent: Any, title: str, text: str, *args: Any, **kwargs: Any) -> Any:
        calls.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "critical", staticmethod(fake_critical))
    return calls
