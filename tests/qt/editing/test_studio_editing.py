"""Correcting a segmentation in the studio with the mouse and the keyboard (pytest-qt, offscreen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox
from scipy import ndimage

from editing_helpers import ANISO_SPACING, aniso_phantom, click, drag, horizontal_capsule
from studio_helpers import open_case, run_and_wait


def _segmented(qtbot: Any, window: Any, tmp_path: Path):
    path, ph = aniso_phantom(tmp_path)
    open_case(qtbot, window, path)
    result = run_and_wait(qtbot, window)
    np.testing.assert_array_equal(result.labels, ph.labels)
    return ph, window.editing.controller, window.studio.viewer


def _key(window: Any, key: Any, mods: Any = Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(window, key, mods)


def test_brush_drag_paints_exactly_the_voxels_within_the_radius_in_mm(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ph, c, viewer = _segmented(qtbot, window, tmp_path)
    _key(window, Qt.Key.Key_B)
    assert c.tool == "brush"
    c.set_radius(3.1)  # no voxel centre lies exactly 3.1 mm away (36 a^2 + 144 b^2 != 961)
    z = viewer.slice_index
    before = c.labels.copy()
    assert c.labels is not window.result.labels  # a working copy: the model's labels stay
    # a horizontal stroke through the background above the liver (rows 0.6 mm, columns 1.2 mm)
    y0, x0, x1 = 8, 6, 30
    drag(viewer, [(y0, x) for x in range(x0, x1 + 1, 3)] + [(y0, x1)])
    _, sy, sx = window.volume.spacing
    assert (sy, sx) == pytest.approx(ANISO_SPACING[1:])
    region = horizontal_capsule(before.shape[1:], y0, x0, x1, 3.1, sy, sx)
    # the radius is in mm: 5 rows up and down, 2 columns beyond the ends
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    assert (rows[0], rows[-1]) == (y0 - 5, y0 + 5) and (cols[0], cols[-1]) == (x0 - 2, x1 + 2)
    expected = before.copy()
    expected[z][region & (before[z] == 0)] = 1
    np.testing.assert_array_equal(c.labels, expected)
    np.testing.assert_array_equal(viewer.labels, expected)  # the panel shows the working copy
    np.testing.assert_array_equal(viewer.label_item.image, expected[z])
    assert c.undo_stack.depth == 1 and c.is_dirty()
    np.testing.assert_array_equal(window.result.labels, ph.labels)  # the model's output is kept


def test_the_panel_shows_the_stroke_at_once(qtbot: Any, window: Any, tmp_path: Path) -> None:
    """Only the changed rectangle is repainted per mouse move: the pixels there show the new label."""
    from editing_helpers import panel_point

    from liverseg_studio.core.colours import LABEL_COLOURS

    _ph, c, viewer = _segmented(qtbot, window, tmp_path)
    c.set_tool("brush")
    c.set_label(2)
    c.set_radius(2.0)
    _, p = panel_point(viewer, 6, 20)

    def colour() -> tuple[int, int, int]:
        QTest.qWait(50)
        col = viewer.overlay_panel.graphics.grab().toImage().pixelColor(p)
        return col.red(), col.green(), col.blue()

    before = colour()
    drag(viewer, [(6, 12), (6, 20), (6, 28)])
    # the normal update path repaints (pyqtgraph re-renders the overlay), before any grab
    qtbot.waitUntil(lambda: not viewer.label_item._renderRequired, timeout=5000)
    after = colour()
    tumour = np.array(LABEL_COLOURS[2], float)
    assert np.linalg.norm(np.array(after) - tumour) < np.linalg.norm(np.array(before) - tumour) - 40


def test_eraser_removes_liver_and_the_tumour_in_it(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ph, c, viewer = _segmented(qtbot, window, tmp_path)
    z = viewer.slice_index
    ys, xs = np.nonzero(ph.labels[z] == 2)
    ty, tx = int(np.median(ys)), int(np.median(xs))
    _key(window, Qt.Key.Key_E)
    assert c.tool == "eraser"
    c.set_radius(4.1)
    before = c.labels.copy()
    drag(viewer, [(ty, tx - 6), (ty, tx), (ty, tx + 6)])
    _, sy, sx = window.volume.spacing
    region = horizontal_capsule(before.shape[1:], ty, tx - 6, tx + 6, 4.1, sy, sx)
    expected = before.copy()
    expected[z][region] = 0
    np.testing.assert_array_equal(c.labels, expected)
    assert (before[z][region] == 2).any() and not c.labels[z][region].any()
    # erasing tumour (label 2) keeps the liver
    c.undo()
    _key(window, Qt.Key.Key_2)
    assert c.label == 2
    drag(viewer, [(ty, tx - 6), (ty, tx), (ty, tx + 6)])
    expected = before.copy()
    expected[z][region & (before[z] == 2)] = 1
    np.testing.assert_array_equal(c.labels, expected)


def test_flood_fill_fills_the_connected_region_within_the_hu_range(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ph, c, viewer = _segmented(qtbot, window, tmp_path)
    z = viewer.slice_index
    # clear the slice first (one eraser stroke with a huge brush), then fill the liver from one click
    c.set_tool("eraser")
    c.set_radius(50.0)
    drag(viewer, [(30, 20), (31, 20)])
    assert not c.labels[z].any()
    _key(window, Qt.Key.Key_F)
    _key(window, Qt.Key.Key_1)
    assert c.tool == "fill" and c.label == 1
    c.set_hu_tolerance(10)
    ys, xs = np.nonzero(ph.labels[z] == 1)
    sy, sx = int(ys[0]), int(xs[0])  # a liver voxel (60 HU), not in the tumour (20 HU)
    click(viewer, sy, sx)
    hu = ph.hu[z]
    comp, _ = ndimage.label((hu >= 50) & (hu <= 70))
    expected = comp == comp[sy, sx]
    np.testing.assert_array_equal(c.labels[z] == 1, expected)
    assert not (c.labels[z] == 2).any()
    assert c.labels[z].sum() == (ph.labels[z] == 1).sum()  # the liver without its tumour hole
    # the other slices are untouched
    others = [k for k in range(ph.shape[0]) if k != z]
    np.testing.assert_array_equal(c.labels[others], ph.labels[others])


def test_lasso_fills_the_polygon(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ph, c, viewer = _segmented(qtbot, window, tmp_path)
    z = viewer.slice_index
    _key(window, Qt.Key.Key_L)
    _key(window, Qt.Key.Key_2)
    before = c.labels.copy()
    drag(viewer, [(4, 4), (4, 12), (10, 12), (10, 4), (4, 4)])
    # the outline runs through the voxel centres of rows 4..10 and columns 4..12: the centres
    # strictly inside are filled, those on the outline may go either way (half-open rule)
    changed = c.labels[z] != before[z]
    assert (c.labels[z, 5:10, 5:12] == 2).all()
    assert not changed[:4].any() and not changed[11:].any() and not changed[:, :4].any() and not changed[:, 13:].any()
    assert (c.labels[z][changed] == 2).all()
    others = [k for k in range(ph.shape[0]) if k != z]
    np.testing.assert_array_equal(c.labels[others], before[others])


def test_undo_three_steps_and_redo_two(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ph, c, viewer = _segmented(qtbot, window, tmp_path)
    _key(window, Qt.Key.Key_B)
    c.set_radius(2.0)
    states = [c.labels.copy()]
    for i, label in enumerate((1, 2, 1, 2)):
        c.set_label(label)
        y = 5 + 4 * i
        drag(viewer, [(y, 4), (y, 14), (y, 24)])
        states.append(c.labels.copy())
        assert not np.array_equal(states[-1], states[-2])
    assert c.undo_stack.depth == 4
    for k in range(1, 4):
        _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        np.testing.assert_array_equal(c.labels, states[4 - k])
        np.testing.assert_array_equal(viewer.label_item.image, states[4 - k][viewer.slice_index])
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(c.labels, states[2])
    _key(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(c.labels, states[3])
    # the undo history holds the changed boxes only (not slices, not volumes)
    assert c.undo_stack.nbytes < 4 * 2 * 60 * 40 // 2


def test_tumour_painted_outside_the_liver_adds_liver_under_it(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ph, c, viewer = _segmented(qtbot, window, tmp_path)
    before = window.result.stats
    _key(window, Qt.Key.Key_B)
    _key(window, Qt.Key.Key_2)
    c.set_radius(2.4)
    z = viewer.slice_index
    assert not ph.labels[z, 2:9, 2:12].any()  # background there
    with qtbot.waitSignal(c.stats_changed, timeout=10000) as blocker:
        drag(viewer, [(5, 4), (5, 10)])
    painted = int(np.count_nonzero(c.labels[z] != ph.labels[z]))
    assert painted > 0 and (c.labels[z][c.labels[z] != ph.labels[z]] == 2).all()
    stats = blocker.args[0]
    assert stats.tumour_voxels == before.tumour_voxels + painted
    assert stats.liver_voxels == before.liver_voxels + painted  # liver (labels >= 1) includes the new tumour
    assert stats.n_lesions == before.n_lesions + 1
    vox_ml = float(np.prod(ANISO_SPACING)) / 1000.0
    assert stats.liver_ml == pytest.approx((before.liver_voxels + painted) * vox_ml)
    # the results panel shows the new numbers and the lesion table still jumps to slices
    page = window.studio
    assert page.results.tumour.value.text() == f"{stats.tumour_ml:,.1f} mL"
    assert page.results.table.rowCount() == stats.n_lesions
    viewer.set_slice(0)
    row = [les.centroid_slice for les in stats.lesions].index(z)
    page.results.table.cellClicked.emit(row, 0)
    assert viewer.slice_index == z


def test_keyboard_tools_labels_radius_and_escape(qtbot: Any, window: Any, tmp_path: Path) -> None:
    _ph, c, viewer = _segmented(qtbot, window, tmp_path)
    keys = ((Qt.Key.Key_B, "brush"), (Qt.Key.Key_E, "eraser"), (Qt.Key.Key_F, "fill"), (Qt.Key.Key_L, "lasso"))
    for key, tool in keys:
        _key(window, key)
        assert c.tool == tool
        assert window.editing.tool_actions[tool].isChecked()
        assert viewer.overlay_panel.view.editor is c  # left drags edit instead of panning
    _key(window, Qt.Key.Key_Escape)
    assert c.tool is None and viewer.overlay_panel.view.editor is None
    _key(window, Qt.Key.Key_2)
    assert c.label == 2 and window.studio.edit_panel.tumour_radio.isChecked()
    _key(window, Qt.Key.Key_1)
    assert c.label == 1 and window.studio.edit_panel.liver_radio.isChecked()
    r = c.radius_mm
    _key(window, Qt.Key.Key_BracketRight)
    assert c.radius_mm > r and window.studio.edit_panel.radius_spin.value() == pytest.approx(c.radius_mm)
    _key(window, Qt.Key.Key_BracketLeft)
    _key(window, Qt.Key.Key_BracketLeft)
    assert c.radius_mm < r
    from liverseg_studio.qt.start_screen import SHORTCUTS

    listed = " ".join(k for k, _ in SHORTCUTS)
    for key in ("B", "E", "F", "L", "1", "2", "[", "]", "Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+Y"):
        assert key in listed


def test_3d_brush_paints_a_sphere_across_slices(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ph, c, viewer = _segmented(qtbot, window, tmp_path)
    _key(window, Qt.Key.Key_B)
    c.set_brush_3d(True)
    c.set_radius(5.0)
    z = viewer.slice_index
    before = c.labels.copy()
    click(viewer, 6, 20)
    changed_z = set(np.flatnonzero((c.labels != before).any(axis=(1, 2))))
    assert changed_z == {z - 2, z - 1, z, z + 1, z + 2}  # 5 mm over 2.5 mm slices
    c.undo()
    np.testing.assert_array_equal(c.labels, before)


@pytest.mark.parametrize("answer", [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Discard])
def test_go_back_and_close_with_unsaved_edits_ask_first(
    qtbot: Any, window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: Any
) -> None:
    _ph, c, viewer = _segmented(qtbot, window, tmp_path)
    asked: list[str] = []

    def fake_question(parent: Any, title: str, text: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", staticmethod(fake_question))
    window.go_back()  # nothing edited yet: no question
    assert not asked and window.stack.currentWidget() is window.start_screen
    _segmented(qtbot, window, tmp_path)
    _key(window, Qt.Key.Key_B)
    drag(viewer, [(6, 6), (6, 16)])
    assert c.is_dirty()
    window.go_back()
    assert len(asked) == 1 and "not saved" in asked[0]
    if answer == QMessageBox.StandardButton.Cancel:
        assert window.stack.currentWidget() is window.studio and c.is_dirty()  # edits kept
        assert not window.close() and window.isVisible()  # closing asks too, and stays
        assert len(asked) == 2
        assert window.run_segmentation() is None and len(asked) == 3  # so does running again
        assert c.is_dirty() and not window.is_running()
    else:
        assert window.stack.currentWidget() is window.start_screen and not c.active
        _segmented(qtbot, window, tmp_path)
        _key(window, Qt.Key.Key_B)
        drag(viewer, [(6, 6), (6, 16)])
        assert window.close()
        assert len(asked) == 2


def test_undo_back_to_the_saved_state_is_clean(qtbot: Any, window: Any, tmp_path: Path) -> None:
    _ph, c, viewer = _segmented(qtbot, window, tmp_path)
    _key(window, Qt.Key.Key_B)
    drag(viewer, [(6, 6), (6, 16)])
    assert c.is_dirty()
    c.undo()
    assert not c.is_dirty()
    c.redo()
    out = window.export("mask", str(tmp_path / "saved_mask.nii.gz"))
    assert out is not None and not c.is_dirty()
    c.undo()
    assert c.is_dirty()  # the saved mask has the stroke; the labels no longer
