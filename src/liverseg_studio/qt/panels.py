"""The viewer's panels: a titled pyqtgraph view with PACS-style annotations.

:class:`SliceViewBox` pages slices with the wheel and sets window/level with a
middle or Shift+left drag; while an editing tool is active (``editor`` set,
see :mod:`liverseg_studio.qt.editing`) plain left clicks and drags go to it.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget


class SliceViewBox(pg.ViewBox):
    """A ViewBox whose plain mouse wheel pages slices (Ctrl+wheel zooms) and whose
    middle drag or Shift+left drag sets window/level, as in PACS viewers."""

    sigSliceScroll = Signal(int)
    #: (phase, dx, dy): phase 0 start, 1 move, 2 finish; dx/dy in screen pixels since the start
    sigWindowDrag = Signal(int, float, float)

    #: the active editing tool's handler (:class:`~liverseg_studio.qt.editing.EditController`) or
    #: None; it gets plain left clicks and drags (``view_click(view, ev)`` / ``view_drag(view, ev)``)
    editor: Any = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, **kwargs)
        self.setBackgroundColor("#000000")

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 - Qt name
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if delta:
            self.sigSliceScroll.emit(1 if delta > 0 else -1)
        ev.accept()

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 - pyqtgraph name
        window_drag = ev.button() == Qt.MouseButton.MiddleButton or (
            ev.button() == Qt.MouseButton.LeftButton and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier
        )
        if not window_drag and self.editor is not None and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.editor.view_drag(self, ev)
            return
        if not window_drag:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        d = ev.screenPos() - ev.buttonDownScreenPos()
        phase = 0 if ev.isStart() else (2 if ev.isFinish() else 1)
        self.sigWindowDrag.emit(phase, float(d.x()), float(d.y()))

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802 - pyqtgraph name
        if self.editor is not None and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.editor.view_click(self, ev)
            return
        super().mouseClickEvent(ev)


class _Graphics(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget that tells when it was resized (to place the annotations)."""

    resized = Signal()

    def resizeEvent(self, ev: Any) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(ev)
        self.resized.emit()


class Panel(QWidget):
    """A titled pyqtgraph panel holding one ViewBox."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.header = QHBoxLayout()
        self.header.setContentsMargins(4, 0, 4, 0)
        self.title = QLabel(title)
        self.title.setObjectName("panelTitle")
        self.title.setWordWrap(True)  # a narrow panel (a dock beside it at 1024 px) wraps its title, never clips it
        self.header.addWidget(self.title, 1)
        lay.addLayout(self.header)
        self.graphics = _Graphics()
        self.graphics.ci.setContentsMargins(0, 0, 0, 0)
        self.graphics.resized.connect(self._place)
        self.view = SliceViewBox()
        self.graphics.addItem(self.view)
        lay.addWidget(self.graphics, 1)
        # PACS-style annotations over the image: slice / window in the corners,
        # orientation letters at the edges (only when the affine tells them)
        style = "color: #c8d0dc; background: transparent; font-size: 9pt;"
        self.top_left = QLabel(self.graphics)
        self.bottom_left = QLabel(self.graphics)
        self.letters = {k: QLabel(k, self.graphics) for k in ("R", "L", "A", "P")}
        for lab in (self.top_left, self.bottom_left, *self.letters.values()):
            lab.setStyleSheet(style)
            lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        for lab in self.letters.values():
            lab.setStyleSheet(style + " font-weight: 700; color: #e5c07b;")
            lab.hide()

    def set_annotations(self, top_left: str, bottom_left: str, letters: bool) -> None:
        self.top_left.setText(top_left)
        self.bottom_left.setText(bottom_left)
        for lab in (self.top_left, self.bottom_left):
            lab.adjustSize()
        for lab in self.letters.values():
            lab.setVisible(letters)
            lab.adjustSize()
        self._place()

    def _place(self) -> None:
        w, h = self.graphics.width(), self.graphics.height()
        self.top_left.move(8, 6)
        self.bottom_left.move(8, h - self.bottom_left.height() - 6)
        lt = self.letters
        lt["R"].move(6, (h - lt["R"].height()) // 2)
        lt["L"].move(w - lt["L"].width() - 6, (h - lt["L"].height()) // 2)
        lt["A"].move((w - lt["A"].width()) // 2, 4)
        lt["P"].move((w - lt["P"].width()) // 2, h - lt["P"].height() - 4)
