"""The studio at 1024x640 and up: every control reachable, no text clipped; below that the panels scroll
(issue 29 case 10).  Also: the case panel shows the loader's warning (issue 29 case 2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QScrollArea, QSlider, QWidget

from studio_helpers import open_case


def _visible_rect(w: QWidget) -> QRect:
    """The part of ``w`` not cut off by its ancestors (scroll-area viewports count as reachable)."""
    rect = QRect(w.mapTo(w.window(), QPoint(0, 0)), w.size())
    parent = w.parentWidget()
    while parent is not None and parent is not w.window():
        if isinstance(parent.parentWidget(), QScrollArea) and parent is parent.parentWidget().viewport():
            return rect  # inside a scroll area: reachable by scrolling
        prect = QRect(parent.mapTo(w.window(), QPoint(0, 0)), parent.size())
        rect = rect.intersected(prect)
        parent = parent.parentWidget()
    return rect.intersected(w.window().rect())


def _problems(win: Any) -> list[str]:
    bad = []
    for w in win.findChildren(QWidget):
        if not w.isVisible() or not isinstance(w, (QAbstractButton, QComboBox, QLabel, QSlider)):
            continue
        if w.window() is not win:
            continue
        name = f"{type(w).__name__} {getattr(w, 'text', lambda: '')() or w.objectName()!r}"
        vis = _visible_rect(w)
        if vis.width() < min(w.width(), 8) or vis.height() < min(w.height(), 8):
            bad.append(f"{name}: not reachable ({vis.width()}x{vis.height()} of {w.width()}x{w.height()} visible)")
            continue
        if isinstance(w, QLabel) and w.text() and not w.wordWrap() and w.pixmap().isNull():
            if w.width() + 1 < w.minimumSizeHint().width():
                bad.append(f"{name}: clipped ({w.width()} < {w.minimumSizeHint().width()})")
        elif isinstance(w, QLabel) and w.wordWrap() and w.text():
            if w.height() + 1 < w.heightForWidth(w.width()):
                bad.append(f"{name}: clipped ({w.height()} < {w.heightForWidth(w.width())})")
        elif isinstance(w, QAbstractButton) and w.text():
            if w.width() + 1 < w.minimumSizeHint().width() or w.height() + 1 < w.minimumSizeHint().height():
                bad.append(f"{name}: squeezed ({w.width()}x{w.height()} < {w.minimumSizeHint().width()}x"
                           f"{w.minimumSizeHint().height()})")
    return bad


def _resize(qtbot: Any, win: Any, w: int, h: int) -> None:
    win.resize(w, h)
    qtbot.waitUntil(lambda: (win.width(), win.height()) == (w, h), timeout=3000)
    qtbot.wait(50)


@pytest.mark.parametrize("size", [(1024, 640), (1280, 800), (1920, 1080)])
def test_start_screen_fits_from_1024x640(qtbot, window, size):
    _resize(qtbot, window, *size)
    assert _problems(window) == []


def test_start_screen_scrolls_below_1024x640(qtbot, window):
    window.setMinimumSize(0, 0)
    _resize(qtbot, window, 420, 300)
    scroll = window.start_screen.findChild(QScrollArea, "startScroll")
    assert scroll is not None and scroll.verticalScrollBar().maximum() > 0
    assert _problems(window) == []  # inside the scroll area: reachable


def test_studio_page_fits_at_1024x640_and_scrolls_below(qtbot, window, phantom, tmp_path):
    from helpers.phantom import write_nifti

    path = write_nifti(tmp_path / "case.nii.gz", phantom.hu, phantom.affine, dtype="int16")
    open_case(qtbot, window, path)
    _resize(qtbot, window, 1024, 640)
    assert _problems(window) == []
    window.setMinimumSize(0, 0)
    _resize(qtbot, window, 640, 420)
    assert _problems(window) == []


def test_case_panel_shows_the_loader_warning(qtbot, window, phantom, tmp_path):
    import nibabel as nib

    img = nib.Nifti1Image(phantom.hu.astype(np.int16).T, None)
    s = phantom.affine.copy()
    s[:3, 2] *= 2
    img.set_qform(phantom.affine, code=1)
    img.set_sform(s, code=2)
    path = tmp_path / "disagree.nii.gz"
    nib.save(img, path)
    open_case(qtbot, window, path)
    warning = window.studio.case_warning
    assert warning.isVisible() and "disagree" in warning.text() and "sform" in warning.text()
