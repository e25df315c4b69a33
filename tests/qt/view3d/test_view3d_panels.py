"""3D view and resection in the studio without OpenGL (offscreen): the one-line fallback, the
plane's split and FLR figures, saving and reopening a plan (issue 25).  The GL cases (building the
surfaces, picking a lesion) run under Xvfb: test_view3d_gl.py."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from studio_helpers import open_case, run_and_wait

from liverseg_studio.core.resection import ResectionPlan, load_plan, plan_path_for, resected_mask
from liverseg_studio.qt.resection.panel import ResectionPanel, angles_from_normal, normal_from_angles


def _box_case() -> tuple[np.ndarray, np.ndarray]:
    lab = np.zeros((20, 30, 40), np.uint8)
    lab[5:15, 5:25, 10:30] = 1  # 12 mL
    lab[8:11, 10:13, 25:28] = 2  # a lesion on the resected side (x 25..27 mm)
    return lab, np.diag([1.0, 1.5, 2.0, 1.0])


def test_no_gl_fallback_is_one_line(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from liverseg_studio.qt.view3d.panel import View3DPanel

    monkeypatch.setenv("LIVERSEG_NO_GL", "1")
    panel = View3DPanel()
    qtbot.addWidget(panel)
    assert panel.view is None and not panel.gl_ok
    text = panel.status.text()
    assert text.startswith("3D view unavailable: ") and "\n" not in text
    lab, aff = _box_case()
    assert panel.set_labels(lab, aff) is None  # nothing to build, nothing raised


def test_plane_split_and_flr_figures(qtbot: Any) -> None:
    panel = ResectionPanel()
    qtbot.addWidget(panel)
    lab, aff = _box_case()
    panel.set_labels(lab, aff)
    seen: list[Any] = []
    panel.evaluated.connect(seen.append)
    res = panel.set_plan(ResectionPlan((14.5, 0, 0), (1, 0, 0)))
    assert res is not None and seen == [res]
    assert res.remnant_ml == pytest.approx(3.0) and res.resected_ml == pytest.approx(9.0)
    assert "Remnant 3.0 mL (25.0 % of 12.0 mL)" in panel.figures.text()
    assert "remnant 25.0 % < 30 %" in panel.warnings.text()
    assert panel.table.rowCount() == 1
    assert panel.table.item(0, 1).text() == "resected" and panel.table.item(0, 2).text() == "10.5 mm"
    # the widgets now describe the same plane: moving the threshold re-evaluates through them
    with qtbot.waitSignal(panel.evaluated, timeout=3000) as blocker:
        panel.min_remnant.setValue(20.0)
    assert blocker.args[0].remnant_percent == pytest.approx(25.0)
    assert panel.warnings.text() == ""
    with qtbot.waitSignal(panel.evaluated, timeout=3000) as blocker:
        panel.flip()
    assert blocker.args[0].remnant_percent == pytest.approx(75.0)
    assert panel.table.item(0, 1).text() == "remnant"


def test_angles_round_trip() -> None:
    for n in [(1, 0, 0), (0, -1, 0), (0.3, 0.4, -0.866)]:
        v = np.asarray(n) / np.linalg.norm(n)
        assert np.allclose(normal_from_angles(*angles_from_normal(v)), v, atol=1e-9)


def test_plan_saved_and_reopened(qtbot: Any, tmp_path) -> None:
    lab, aff = _box_case()
    a = ResectionPanel()
    qtbot.addWidget(a)
    a.set_labels(lab, aff)
    first = a.set_plan(ResectionPlan((14.5, 3.0, 0), (1, 0.2, 0), min_remnant_percent=35))
    path = a.save(plan_path_for(tmp_path / "case_mask.nii.gz"))
    assert path.name == "case_plan.json"
    saved = json.loads(path.read_text())
    assert saved["figures"]["remnant_ml"] == pytest.approx(first.remnant_ml, abs=1e-3)
    b = ResectionPanel()
    qtbot.addWidget(b)
    b.set_labels(lab, aff)
    plan = b.open(path)
    assert plan == load_plan(path)
    assert b.result.remnant_ml == pytest.approx(first.remnant_ml)
    assert b.min_remnant.value() == pytest.approx(35.0) and b.enable_button.isChecked()
    # the widgets reproduce the reopened plane
    assert b._widgets_plan().normal == pytest.approx(plan.normal, abs=1e-3)


def test_studio_dock_without_gl(qtbot: Any, window: Any, nifti_phantom: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from liverseg_studio.qt.view3d.studio import default_plan_path, install_view3d

    monkeypatch.setenv("LIVERSEG_NO_GL", "1")
    studio = install_view3d(window)
    assert studio.panel is None  # nothing 3D is built before the dock is shown
    open_case(qtbot, window, nifti_phantom.path)
    result = run_and_wait(qtbot, window)
    # a plan saved beside the input is reopened with the case
    labels = np.asarray(result.labels)
    plan = ResectionPlan.through_centre(labels, result.volume.affine, normal=(0, 0, 1))
    path = default_plan_path(result)
    assert path == nifti_phantom.path.parent / "phantom_plan.json"
    from liverseg_studio.core.resection import save_plan

    save_plan(plan, path)
    studio.dock.show()
    qtbot.waitUntil(lambda: studio.panel is not None, timeout=5000)
    assert studio.panel.status.text().startswith("3D view unavailable")
    assert studio.resection.plan == load_plan(path)
    assert studio.resection.plan.point == pytest.approx(plan.point, abs=1e-3)
    assert 0 < studio.resection.result.remnant_percent < 100
    # the resected liver in a second colour on the 2D segmentation panel, following the slice
    overlay = studio.overlay
    assert overlay is not None
    for z in (lesion_z := result.stats.lesions[0].centroid_slice, 2):
        window.go_to_slice(z)
        image = overlay.item.image
        expected = resected_mask(labels, result.volume.affine, studio.resection.plan)[z] & (labels[z] == 1)
        assert image.shape[:2] == labels[z].shape
        assert np.array_equal(image[..., 3] > 0, expected)
    assert np.count_nonzero(overlay.slice_mask(lesion_z)) > 0
    studio.resection.set_plan(None)
    assert overlay.item.image is None
    studio.resection.set_plan(load_plan(path))
    # a lesion chosen (as a 3D click would) selects its row and moves the 2D views to its slice
    lesion = result.stats.lesions[0]
    window.go_to_slice(0)
    studio.select_lesion(lesion.id)
    table = window.studio.results.table
    assert table.selectionModel().selectedRows()[0].row() == 0
    assert window.studio.viewer.slice_index == lesion.centroid_slice
    # Export: the surfaces (one per label and lesion) and the mask with the plan's third value
    out = nifti_phantom.path.parent / "exports"
    out.mkdir()
    info = studio.export_meshes(out / "phantom_mesh", "ply")
    assert info["coordinates"] == "RAS"
    assert sorted(p.name for p in (out / "phantom_mesh").iterdir()) == ["lesion_01.ply", "liver.ply", "surfaces.json",
                                                                       "tumour.ply"]
    import nibabel as nib

    plan_mask = np.asarray(nib.load(str(studio.export_plan_mask(out / "phantom_plan_mask.nii.gz"))).dataobj).T
    assert set(np.unique(plan_mask)) == {0, 1, 2, 3}
    assert studio.mesh_action in window.export_menu.actions()
    # the rest of the studio works as before
    assert window.export("report", str(nifti_phantom.path.parent / "out_report.json")) is not None


def test_dragging_moves_and_turns_the_plane(qtbot: Any) -> None:
    panel = ResectionPanel()
    qtbot.addWidget(panel)
    lab, aff = _box_case()
    panel.set_labels(lab, aff)
    panel.drag(0, -20, "move")  # no plane yet: nothing happens
    assert panel.plan is None
    panel.enable_button.setChecked(True)  # a plane through the liver's centre, normal +x
    first = panel.result
    assert first.remnant_percent == pytest.approx(50.0, abs=5.0)
    with qtbot.waitSignal(panel.evaluated, timeout=3000) as blocker:
        panel.drag(0, -10, "move")  # up: 5 mm along the normal, less is resected
    assert panel.offset.value() == 5
    assert blocker.args[0].resected_ml < first.resected_ml
    with qtbot.waitSignal(panel.evaluated, timeout=3000):
        panel.drag(40, 0, "rotate")
    assert panel.azimuth.value() == pytest.approx(20.0)
    assert panel.plan.normal[1] == pytest.approx(np.sin(np.radians(20.0)), abs=1e-6)
