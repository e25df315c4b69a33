"""The viewer: radiological display transform, window presets, layouts, readout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from liverseg_studio.core.volume import Volume
from liverseg_studio.qt.viewer import WINDOW_PRESETS, SliceViewer, display_orientation, label_lut


def _vol(affine: np.ndarray, spacing_known: bool = True) -> Volume:
    arr = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    return Volume(array=arr, affine=affine, spacing_known=spacing_known)


def test_display_orientation_follows_the_affine() -> None:
    # DICOM-like RAS affine (-dx, -dy): already radiological, no flips
    o = display_orientation(_vol(np.diag([-0.7, -0.8, 2.5, 1.0])))
    assert o.radiological and not (o.transpose or o.flip_x or o.flip_y)
    assert (o.col_mm, o.row_mm) == pytest.approx((0.7, 0.8))
    # +x columns run towards the patient's right: flip horizontally; +y rows run anterior: flip vertically
    o = display_orientation(_vol(np.diag([1.0, 1.0, 1.0, 1.0])))
    assert o.flip_x and o.flip_y and not o.transpose
    # columns along y, rows along x: transposed
    a = np.array([[0, -1.0, 0, 0], [-1.0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    o = display_orientation(_vol(a))
    assert o.transpose and not o.flip_x and not o.flip_y
    # unknown spacing: shown as stored
    assert display_orientation(_vol(np.eye(4), spacing_known=False)) == type(o)()


def test_transform_maps_pixels_radiologically() -> None:
    o = display_orientation(_vol(np.diag([1.0, 1.0, 1.0, 1.0])))
    t = o.qtransform(4, 6)
    # identity affine: column 0 is the patient's leftmost column, so it lands at the right edge;
    # row 0 is the most posterior row, so it lands at the bottom (the views invert y)
    p = t.map(0.0, 0.0)
    assert p == pytest.approx((6.0, 4.0))
    p = t.map(6.0, 4.0)
    assert p == pytest.approx((0.0, 0.0))


def test_label_lut() -> None:
    lut = label_lut(0.5, {1: True, 2: False})
    assert lut.shape == (256, 4) and lut[0, 3] == 0
    assert lut[1, 3] == 128 and lut[2, 3] == 0


def test_viewer_navigation_presets_layouts(qtbot: Any, phantom: Any) -> None:
    viewer = SliceViewer()
    qtbot.addWidget(viewer)
    vol = phantom.volume()
    viewer.set_volume(vol)
    assert viewer.slice_index == vol.n_slices // 2
    np.testing.assert_array_equal(viewer.grey_item.image, vol.array[vol.n_slices // 2])
    assert viewer.rgb_item.image.shape == vol.shape[1:] + (3,)
    viewer.set_slice(999)
    assert viewer.slice_index == vol.n_slices - 1
    viewer.step(-2)
    assert viewer.slice_index == vol.n_slices - 3
    assert viewer.slider.value() == vol.n_slices - 3

    for name, (w, lv) in WINDOW_PRESETS.items():
        viewer.apply_preset(name)
        assert viewer.window() == pytest.approx((w, lv))
        assert viewer.grey_item.levels == pytest.approx((lv - w / 2, lv + w / 2))
        assert viewer.preset_combo.currentData() == name
    viewer.set_levels(-10, 90)
    assert viewer.preset_combo.currentText() == "Custom"

    viewer.set_layout_mode("overlay")
    assert viewer.overlay_panel.isVisibleTo(viewer)
    assert not viewer.input_panel.isVisibleTo(viewer) and not viewer.anatomy_panel.isVisibleTo(viewer)
    viewer.set_layout_mode("focus")
    assert all(p.isVisibleTo(viewer) for p in (viewer.input_panel, viewer.anatomy_panel, viewer.overlay_panel))
    viewer.resize(1200, 700)
    viewer.show()
    qtbot.wait(20)
    assert viewer.overlay_panel.width() > 1.5 * viewer.input_panel.width()
    # the panels show the same region although their sizes differ
    viewer.fit_view()
    big = viewer.overlay_panel.view.viewRange()
    small = viewer.input_panel.view.viewRange()
    for (a0, a1), (b0, b1) in zip(big, small):
        assert max(a0, b0) < min(a1, b1)  # overlapping
    # zooming one panel zooms the others
    viewer.overlay_panel.view.scaleBy((0.5, 0.5))
    (x0, x1), _ = viewer.input_panel.view.viewRange()
    (bx0, bx1), _ = big
    assert (x1 - x0) < 0.8 * (bx1 - bx0)
    viewer.set_layout_mode("three")
    assert viewer.input_panel.isVisibleTo(viewer) and viewer.anatomy_panel.isVisibleTo(viewer)

    with pytest.raises(ValueError):
        viewer.set_labels(np.zeros((1, 2, 3), np.uint8))
    viewer.set_labels(phantom.labels)
    z = viewer.slice_index
    np.testing.assert_array_equal(viewer.label_item.image, phantom.labels[z])
    viewer.clear()
    assert viewer.volume is None and viewer.label_item.image is None


def test_readout_under_the_cursor(qtbot: Any, phantom: Any) -> None:
    viewer = SliceViewer()
    qtbot.addWidget(viewer)
    viewer.set_volume(phantom.volume())
    viewer.set_labels(phantom.labels)
    z = viewer.slice_index
    ys, xs = np.nonzero(phantom.labels[z] == 1)
    y, x = int(ys[0]), int(xs[0])
    seen: list[str] = []
    viewer.cursor_moved.connect(seen.append)
    # the scene position of that voxel's centre, through the (flipped, scaled) display transform
    item = viewer.anatomy_panel.view.childGroup  # noqa: F841 - the view exists
    scene_pos = viewer.grey_item.mapToScene(x + 0.5, y + 0.5)
    viewer._mouse_moved(viewer.grey_item, scene_pos)
    assert seen and f"x {x}" in seen[-1] and f"y {y}" in seen[-1] and "Liver" in seen[-1] and "HU 60" in seen[-1]


def test_linked_cursor_marks_the_same_voxel_in_the_other_panels(qtbot: Any, phantom: Any) -> None:
    viewer = SliceViewer()
    qtbot.addWidget(viewer)
    viewer.set_volume(phantom.volume())
    x, y = 20, 30
    viewer._mouse_moved(viewer.grey_item, viewer.grey_item.mapToScene(x + 0.5, y + 0.5))
    pos = viewer.cursor_marker_positions()
    assert pos["anatomy"] is None  # the mouse is over this panel
    expected = viewer.grey_item.mapToView(viewer.grey_item.mapFromScene(viewer.grey_item.mapToScene(x + 0.5, y + 0.5)))
    for name in ("input", "overlay"):
        assert pos[name] == pytest.approx((expected.x(), expected.y()))
    # leaving the image hides them
    viewer._mouse_moved(viewer.grey_item, viewer.grey_item.mapToScene(-50.0, -50.0))
    assert all(p is None for p in viewer.cursor_marker_positions().values())


def test_window_level_drag(qtbot: Any, phantom: Any) -> None:
    viewer = SliceViewer()
    qtbot.addWidget(viewer)
    viewer.set_volume(phantom.volume())
    viewer.apply_preset("Abdomen")  # W400 / L40
    k = viewer.WL_DRAG_HU_PER_PIXEL
    view = viewer.anatomy_panel.view
    view.sigWindowDrag.emit(0, 0.0, 0.0)
    view.sigWindowDrag.emit(1, 50.0, -10.0)  # right: wider; up: higher level
    assert viewer.window() == pytest.approx((400 + k * 50, 40 + k * 10))
    view.sigWindowDrag.emit(2, -100.0, 20.0)
    assert viewer.window() == pytest.approx((400 - k * 100, 40 - k * 20))
    assert viewer.grey_item.levels == pytest.approx((40 - k * 20 - (400 - k * 100) / 2, 40 - k * 20 + (400 - k * 100) / 2))
    assert viewer.preset_combo.currentText() == "Custom"


def test_middle_drag_event_becomes_window_drag(qtbot: Any, phantom: Any) -> None:
    from PySide6.QtCore import QPointF, Qt

    viewer = SliceViewer()
    qtbot.addWidget(viewer)
    viewer.set_volume(phantom.volume())
    viewer.apply_preset("Liver")
    seen: list[tuple[int, float, float]] = []
    viewer.overlay_panel.view.sigWindowDrag.connect(lambda *a: seen.append(a))

    class Drag:
        def __init__(self, button: Any, mods: Any, dx: float, start: bool, finish: bool) -> None:
            self._b, self._m, self._dx, self._s, self._f = button, mods, dx, start, finish
            self.accepted = False

        def button(self) -> Any:
            return self._b

        def modifiers(self) -> Any:
            return self._m

        def screenPos(self) -> QPointF:  # noqa: N802
            return QPointF(100 + self._dx, 100)

        def buttonDownScreenPos(self, *_: Any) -> QPointF:  # noqa: N802
            return QPointF(100, 100)

        def isStart(self) -> bool:  # noqa: N802
            return self._s

        def isFinish(self) -> bool:  # noqa: N802
            return self._f

        def accept(self) -> None:
            self.accepted = True

    none = Qt.KeyboardModifier.NoModifier
    view = viewer.overlay_panel.view
    view.mouseDragEvent(Drag(Qt.MouseButton.MiddleButton, none, 0, True, False))
    view.mouseDragEvent(Drag(Qt.MouseButton.MiddleButton, none, 30, False, True))
    view.mouseDragEvent(Drag(Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, 0, True, False))
    assert [s[0] for s in seen] == [0, 2, 0] and seen[1][1] == pytest.approx(30.0)
    assert viewer.window()[0] == pytest.approx(150 + viewer.WL_DRAG_HU_PER_PIXEL * 30)
