"""Fixtures of the editing tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def discard_on_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing the window at the end of a test with unsaved edits asks (a modal dialog):
    answer Discard unless the test patches QMessageBox.question itself."""
    from PySide6.QtWidgets import QMessageBox

    def fake_question(*_args: Any, **_kwargs: Any) -> Any:
        return QMessageBox.StandardButton.Discard

    monkeypatch.setattr(QMessageBox, "question", staticmethod(fake_question))
