"""Guard against a Qt binding that corrupts reference counts (seen with PySide6 6.12.0 on Python 3.11).

PySide6 6.12.0 returns ``None`` from void methods without taking a reference,
so on Python < 3.12 (where None is not immortal) every such call lowers
None's reference count by one until the interpreter aborts with
"none_dealloc: deallocating None" -- after a few thousand calls, i.e. minutes
of using the studio.  pyproject excludes that release; this test fails if a
broken binding is installed anyway.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None, True and False are immortal from Python 3.12")
def test_qt_calls_keep_reference_counts(qtbot: Any) -> None:
    from PySide6.QtWidgets import QGraphicsRectItem, QWidget

    widget = QWidget()
    qtbot.addWidget(widget)
    item = QGraphicsRectItem(0, 0, 1, 1)
    before = (sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False))
    for _ in range(500):
        widget.resize(10, 10)  # void
        item.setVisible(True)  # void
        widget.isVisible()  # bool
    after = (sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False))
    import PySide6

    # a healthy binding changes these by a handful at most; the broken one by -500 or -1000
    assert all(a - b > -50 for a, b in zip(after, before)), (
        f"PySide6 {PySide6.__version__} loses references to None/True/False: {before} -> {after}; "
        "install another release (pyproject excludes 6.12.0)"
    )
