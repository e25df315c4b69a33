"""Editing in the main window: actions and shortcuts, the Edit menu, the Correct box.

:class:`StudioEditing` is built with the studio page and hooks itself to the
window's signals (a result shown -> edit a copy of it; a case closed -> stop).
The window asks it three things: the result to export (with the edits),
whether unsaved edits may be discarded (Go back, close), and opens masks.

Keyboard: B brush, E eraser, F fill, L lasso, 1 / 2 liver / tumour, Esc leaves
the tool, [ / ] brush radius, Ctrl+Z undo, Ctrl+Shift+Z or Ctrl+Y redo.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.core.volume import Label
from liverseg_studio.qt.editing.controller import TOOLS, EditController
from liverseg_studio.qt.editing.masks import MASK_FILTER, edited_result, load_mask, mask_result

if TYPE_CHECKING:
    from liverseg_studio.segment.pipeline import SegmentationResult

#: Export kinds that save the mask itself (old and new names).
_MASK_EXPORTS = {"nifti", "dicom-seg", "mask", "seg"}


class StudioEditing(QObject):
    """The editing tools of one main window (see the module docstring)."""

    def __init__(self, window: Any, page: Any) -> None:
        super().__init__(window)
        self.window = window
        self.page = page
        self.panel = page.edit_panel
        self.controller = EditController(page.viewer, self)
        self._build_actions()
        self._bind_panel()
        window.segmentation_finished.connect(self._on_result)
        window.case_loaded.connect(lambda _v: self.controller.end())
        window.went_back.connect(self.controller.end)
        window.cancel_action.changed.connect(self._sync)
        self.controller.state_changed.connect(self._sync)
        self.controller.stats_changed.connect(page.results.set_stats)
        self._sync()

    # ------------------------------------------------------------------ building
    def _action(self, text: str, slot: Callable[..., Any], shortcut: Any = None, checkable: bool = False) -> QAction:
        act = QAction(text, self.window)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        self.window.addAction(act)  # shortcuts work even when the menu bar is hidden
        return act

    def _build_actions(self) -> None:
        c = self.controller
        a = self._action
        self.tool_group = QActionGroup(self)
        self.tool_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        self.tool_actions: dict[str, QAction] = {}
        for key, (name, key_seq) in TOOLS.items():
            act = a(f"{name}  ({key_seq})", lambda on, k=key: c.set_tool(k if on else None), key_seq, True)
            self.tool_group.addAction(act)
            self.tool_actions[key] = act
        self.liver_action = a("Edit liver  (1)", lambda: c.set_label(Label.LIVER), "1")
        self.tumour_action = a("Edit tumour  (2)", lambda: c.set_label(Label.TUMOUR), "2")
        self.smaller_action = a("Smaller brush  ([)", lambda: c.grow_radius(1 / 1.25), "[")
        self.larger_action = a("Larger brush  (])", lambda: c.grow_radius(1.25), "]")
        self.leave_action = a("Leave the tool  (Esc)", lambda: c.set_tool(None), "Esc")
        self.undo_action = a("&Undo", c.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = a("&Redo", c.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.open_mask_action = QAction("Open &mask onto this image…", self.window)
        self.open_mask_action.triggered.connect(lambda: self.open_mask())
        menu = QMenu("&Edit", self.window)
        menu.addActions([self.undo_action, self.redo_action])
        menu.addSeparator()
        menu.addActions(list(self.tool_actions.values()))
        menu.addActions([self.leave_action, self.liver_action, self.tumour_action])
        menu.addActions([self.smaller_action, self.larger_action])
        menu.addSeparator()
        menu.addAction(self.open_mask_action)
        self.menu = menu
        bar = self.window.menuBar()
        actions = bar.actions()
        bar.insertMenu(actions[1] if len(actions) > 1 else None, menu)  # after File

    def _bind_panel(self) -> None:
        p, c = self.panel, self.controller
        for key, button in p.tool_buttons.items():
            button.setDefaultAction(self.tool_actions[key])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        p.undo_button.setDefaultAction(self.undo_action)
        p.redo_button.setDefaultAction(self.redo_action)
        p.label_group.idClicked.connect(c.set_label)
        p.radius_spin.valueChanged.connect(c.set_radius)
        p.brush_3d.toggled.connect(c.set_brush_3d)
        p.hu_spin.valueChanged.connect(c.set_hu_tolerance)
        p.open_mask_button.clicked.connect(lambda: self.open_mask())

    def _sync(self) -> None:
        """Widgets and actions follow the controller's state."""
        c, p = self.controller, self.panel
        active = c.active
        for key, act in self.tool_actions.items():
            act.setEnabled(active)
            if act.isChecked() != (c.tool == key):
                act.blockSignals(True)
                act.setChecked(c.tool == key)
                act.blockSignals(False)
        for act in (self.liver_action, self.tumour_action, self.smaller_action, self.larger_action):
            act.setEnabled(active)
        # Esc cancels a running segmentation; it leaves the tool otherwise (never both: ambiguous)
        self.leave_action.setEnabled(c.tool is not None and not self.window.cancel_action.isEnabled())
        self.undo_action.setEnabled(active and c.undo_stack.can_undo)
        self.redo_action.setEnabled(active and c.undo_stack.can_redo)
        self.open_mask_action.setEnabled(self.window.volume is not None)
        p.open_mask_button.setEnabled(self.window.volume is not None)
        for w in (p.radius_spin, p.hu_spin, p.brush_3d, p.liver_radio, p.tumour_radio):
            w.setEnabled(active)
        (p.liver_radio if c.label == Label.LIVER else p.tumour_radio).setChecked(True)
        known = self.window.volume is None or self.window.volume.spacing_known
        p.radius_spin.setSuffix(" mm" if known else " px")  # no spacing: the radius is in pixels
        if abs(p.radius_spin.value() - c.radius_mm) > 1e-6:
            p.radius_spin.blockSignals(True)
            p.radius_spin.setValue(c.radius_mm)
            p.radius_spin.blockSignals(False)
        if p.brush_3d.isChecked() != c.brush_3d:
            p.brush_3d.blockSignals(True)
            p.brush_3d.setChecked(c.brush_3d)
            p.brush_3d.blockSignals(False)
        if not active:
            p.status.setText("Open a mask or run a segmentation to correct it.")
        else:
            n = c.undo_stack.depth
            state = "unsaved" if c.is_dirty() else "saved" if n else "no corrections yet"
            p.status.setText(f"{n} correction{'s' if n != 1 else ''} · {state}")

    # ------------------------------------------------------------------ the window's questions
    def _on_result(self, result: "SegmentationResult") -> None:
        self.controller.begin(result.volume, result.labels)

    def export_result(self, result: "SegmentationResult") -> "SegmentationResult":
        """``result`` with the reader's corrections (unchanged when there are none)."""
        c = self.controller
        if not c.active or c.labels is None or c.original is not result.labels or not c.has_changes():
            return result
        return edited_result(result, c.labels, c.changed_voxels(), c.undo_stack.depth)

    def exported(self, kind: str) -> None:
        """An export succeeded: a saved mask means the edits are saved."""
        if kind in _MASK_EXPORTS:
            self.controller.mark_saved()

    def confirm_discard(self, doing: str = "go back") -> bool:
        """True when there are no unsaved edits, or the reader agrees to discard them."""
        if not self.controller.is_dirty():
            return True
        answer = QMessageBox.question(
            self.window,
            "Unsaved corrections",
            "The segmentation has corrections that were not saved (export the mask or the DICOM SEG "
            f"to keep them).\n\nDiscard them and {doing}?",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard

    def open_mask(self, path: str | None = None) -> bool:
        """Open a mask (NIfTI, DICOM SEG, PNG) onto the open image, to edit it without a model."""
        win = self.window
        volume = win.volume
        if volume is None:
            win.statusBar().showMessage("Open an image first, then its mask.", 4000)
            return False
        if not self.confirm_discard("open another mask"):
            return False
        if path is None:
            path, _ = QFileDialog.getOpenFileName(win, "Open a mask of this image", win.settings.last_dir, MASK_FILTER)
            if not path:
                return False
        try:
            labels = load_mask(path, volume)
        except LiversegError as exc:
            QMessageBox.critical(win, "Cannot open this mask", str(exc))
            return False
        self.controller.end()  # the mask replaces any edits (the question above was asked)
        win.adopt_result(mask_result(volume, labels, path), f"Mask {Path(path).name} opened: correct it, then export.")
        return True
