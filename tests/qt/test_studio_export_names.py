"""The studio's Export menu uses the words of ``liverseg segment --export`` (issue 14, item 4)."""

from __future__ import annotations

from typing import Any

from liverseg_studio.segment.exporters import FORMATS


def test_export_menu_uses_the_cli_format_names(window: Any) -> None:
    assert list(window.export_actions) == list(FORMATS)
    for key, action in window.export_actions.items():
        assert action.text().lower().startswith(key), (key, action.text())
