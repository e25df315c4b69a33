"""The studio makes no network call: open, segment and export with sockets blocked."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from studio_helpers import open_case, run_and_wait

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(address)
        raise OSError(f"network access blocked in this test: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))  # type: ignore[arg-type]
    return attempts


def test_studio_runs_offline(qtbot: Any, window: Any, nifti_phantom: Any, tmp_path: Path, no_network: list) -> None:
    open_case(qtbot, window, nifti_phantom.path)
    run_and_wait(qtbot, window)
    window.about_action.trigger()
    assert window.export("json", str(tmp_path / "r.json")) is not None
    window.go_back()
    assert no_network == []
