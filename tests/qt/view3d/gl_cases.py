"""The 3D panel with a real OpenGL context (run by test_view3d_gl.py under Xvfb + Mesa, QT_QPA_PLATFORM=xcb).

Not collected on its own (no ``test_`` prefix): test_view3d_gl.py starts it in a process of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from liverseg_studio.core.resection import ResectionPlan


@pytest.fixture(scope="module", autouse=True)
def gl_here() -> None:
    from liverseg_studio.qt.view3d.panel import gl_status

    # several GL widgets one after another (one per test): shaders are shared between their contexts
    QApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    QApplication.instance() or QApplication([])
    ok, why = gl_status()
    if not ok:
        pytest.skip(f"OpenGL is truly absent here: {why}")


def _labels() -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.indices((40, 60, 60))
    lab = np.zeros((40, 60, 60), np.uint8)
    lab[((z - 20) / 16) ** 2 + ((y - 30) / 26) ** 2 + ((x - 30) / 26) ** 2 <= 1] = 1
    lab[((z - 20) ** 2 + (y - 30) ** 2 + (x - 18) ** 2) <= 36] = 2  # lesion 1 (larger), right of centre in x index
    lab[((z - 20) ** 2 + (y - 30) ** 2 + (x - 44) ** 2) <= 16] = 2  # lesion 2
    return lab, np.diag([1.0, 1.0, 1.5, 1.0])


@pytest.fixture
def panel(qtbot: Any):
    from liverseg_studio.qt.view3d.panel import View3DPanel

    p = View3DPanel()
    qtbot.addWidget(p)
    p.resize(640, 520)
    p.show()
    qtbot.waitExposed(p)
    lab, aff = _labels()
    with qtbot.waitSignal(p.built, timeout=60000):
        p.set_labels(lab, aff)
    yield p
    p.shutdown()


def test_build_the_3d_view(panel: Any) -> None:
    assert panel.gl_ok and panel.view is not None
    assert sorted(panel.items) == ["lesion_01", "lesion_02", "liver"]
    assert panel.build_seconds is not None and "built in" in panel.status.text()
    liver = panel.surfaces["liver"]
    assert liver.volume_error < 0.03
    img = panel.view.grabFramebuffer()
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, : img.width() * 4]
    assert arr.reshape(img.height(), img.width(), 4)[..., :3].std() > 5  # something was drawn
    for name in ("anterior", "posterior", "left", "right", "superior", "reset"):
        panel.buttons[name].click()
    assert panel.view.opts["elevation"] == pytest.approx(20.0)


def test_standard_views_put_the_camera_where_named(panel: Any) -> None:
    centre = panel._centre
    panel.set_view("anterior")  # camera in front (+y, RAS): a point in front is nearer than one behind
    _px, depth = panel.project(np.array([centre + [0, 50, 0], centre - [0, 50, 0]]))
    assert depth[0] < depth[1]
    panel.set_view("right")
    _px, depth = panel.project(np.array([centre + [50, 0, 0], centre - [50, 0, 0]]))
    assert depth[0] < depth[1]


def test_clicking_a_lesion_picks_it(panel: Any, qtbot: Any) -> None:
    panel.set_view("anterior")
    for lesion_id in (2, 1):
        s = panel.surfaces[f"lesion_{lesion_id:02d}"]
        (px,), _ = panel.project(s.vertices.mean(axis=0, keepdims=True))
        pos = QPoint(int(round(px[0])), int(round(px[1])))
        with qtbot.waitSignal(panel.lesion_picked, timeout=3000) as blocker:
            qtbot.mousePress(panel.view, Qt.MouseButton.LeftButton, pos=pos)
            qtbot.mouseRelease(panel.view, Qt.MouseButton.LeftButton, pos=pos)
        assert blocker.args == [lesion_id]
        assert panel.highlighted == lesion_id
    # a click on empty background picks nothing
    assert panel.pick(2.0, 2.0) is None


def test_shift_drag_moves_the_plane_not_the_camera(panel: Any, qtbot: Any) -> None:
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QMouseEvent

    before = dict(panel.view.opts)
    seen: list[tuple] = []
    panel.plane_dragged.connect(lambda *a: seen.append(a))
    view = panel.view
    left, shift = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier
    for kind, y, buttons in ((QMouseEvent.Type.MouseButtonPress, 200, left), (QMouseEvent.Type.MouseMove, 180, left),
                             (QMouseEvent.Type.MouseButtonRelease, 180, Qt.MouseButton.NoButton)):
        pos = QPointF(300, y)
        QApplication.sendEvent(view, QMouseEvent(kind, pos, view.mapToGlobal(pos), left, buttons, shift))
    assert seen == [(0.0, -20.0, "move")]
    assert view.opts["azimuth"] == before["azimuth"] and view.opts["elevation"] == before["elevation"]


def test_plan_colours_the_liver_by_side(panel: Any) -> None:
    plan = ResectionPlan(tuple(panel._centre), (1.0, 0.0, 0.0))
    panel.show_plan(plan)
    assert panel.plane_item is not None
    colours = panel.items["liver"].opts["meshdata"].vertexColors()
    side = plan.signed_distance(panel.surfaces["liver"].vertices) > 0
    assert 0 < side.mean() < 1
    assert not np.allclose(colours[side][0], colours[~side][0])
    panel.show_plan(None)
    assert panel.plane_item is None


def test_table_and_3d_in_the_studio(qtbot: Any, window: Any, nifti_phantom: Any) -> None:
    """Picking a lesion in the window: its row is selected and the 2D views go to its slice."""
    from studio_helpers import open_case, run_and_wait

    from liverseg_studio.qt.view3d.studio import install_view3d

    studio = install_view3d(window)
    open_case(qtbot, window, nifti_phantom.path)
    result = run_and_wait(qtbot, window)
    assert result.stats.lesions
    studio.dock.show()
    qtbot.waitUntil(lambda: studio.panel is not None and bool(studio.panel.surfaces), timeout=60000)
    panel = studio.panel
    panel.set_view("anterior")
    s = panel.surfaces["lesion_01"]
    (px,), _ = panel.project(s.vertices.mean(axis=0, keepdims=True))
    window.go_to_slice(0)
    pos = QPoint(int(round(px[0])), int(round(px[1])))
    with qtbot.waitSignal(panel.lesion_picked, timeout=3000):
        qtbot.mousePress(panel.view, Qt.MouseButton.LeftButton, pos=pos)
        qtbot.mouseRelease(panel.view, Qt.MouseButton.LeftButton, pos=pos)
    table = window.studio.results.table
    assert table.selectionModel().selectedRows()[0].row() == 0
    assert window.studio.viewer.slice_index == result.stats.lesions[0].centroid_slice
    table.clearSelection()
    assert panel.highlighted is None
    table.selectRow(0)
    assert panel.highlighted == 1
    # an edit (the controller's stats after a stroke) rebuilds the surfaces in the worker
    with qtbot.waitSignal(panel.built, timeout=60000):
        window.editing.controller.stats_changed.emit(result.stats)
    studio.shutdown()
