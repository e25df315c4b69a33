"""The studio end to end, offscreen, with a synthetic NIfTI phantom and a test backend."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox
from studio_helpers import TEST_BACKEND, open_case, run_and_wait

from liverseg_studio.core.colours import LABEL_COLOURS
from liverseg_studio.core.volume import Label

pytestmark = pytest.mark.timeout(120)


def _expected_ml(labels: np.ndarray, affine: np.ndarray) -> tuple[float, float]:
    vox_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    return float(np.count_nonzero(labels >= 1) * vox_ml), float(np.count_nonzero(labels == 2) * vox_ml)


def test_window_title_and_start_screen(window: Any) -> None:
    assert window.windowTitle() == "LiverSeg Studio"
    assert window.stack.currentWidget() is window.start_screen
    # the file dialog filter comes from the registered loaders
    from liverseg_studio.qt.main_window import file_dialog_filter

    flt = file_dialog_filter(window.manager.loaders.file_dialog_filters())
    assert flt.startswith("All supported (") and "*.nii.gz" in flt and flt.endswith("All files (*)")
    assert window.run_action.shortcut().toString() == "Ctrl+R"
    assert window.open_action.shortcut().toString() == "Ctrl+O"
    assert window.export_action.shortcut().toString() == "Ctrl+E"


def test_open_segment_and_show_volumetry(qtbot: Any, window: Any, nifti_phantom: Any) -> None:
    ph = nifti_phantom.phantom
    volume = open_case(qtbot, window, nifti_phantom.path)
    assert volume.shape == ph.shape
    page = window.studio
    assert window.stack.currentWidget() is page
    viewer = page.viewer
    assert viewer.n_slices == ph.shape[0]
    assert viewer.slice_index == ph.shape[0] // 2
    assert page.case_name.text() == "phantom.nii.gz"
    # the phantom's affine (-dx, -dy) is displayed radiologically
    assert viewer.orientation.radiological

    result = run_and_wait(qtbot, window)
    np.testing.assert_array_equal(result.labels, ph.labels)
    assert window.result is result

    # volumetry labels show the values computed independently from the phantom
    liver_ml, tumour_ml = _expected_ml(ph.labels, ph.affine)
    assert liver_ml > 0 and tumour_ml > 0
    assert page.results.liver.value.text() == f"{liver_ml:,.1f} mL"
    assert page.results.tumour.value.text() == f"{tumour_ml:,.1f} mL"
    assert page.results.burden.value.text() == f"{100 * tumour_ml / liver_ml:.2f} %"
    assert page.results.lesion_count.value.text() == "1"
    assert page.results.table.rowCount() == 1
    assert "Inference" in page.results.timing.text()

    # overlay: the label image shows the current slice's labels through the colour table
    z = viewer.slice_index
    np.testing.assert_array_equal(viewer.label_item.image, ph.labels[z])
    lut = viewer.overlay_lut()
    assert tuple(lut[Label.LIVER][:3]) == LABEL_COLOURS[Label.LIVER]
    assert tuple(lut[Label.TUMOUR][:3]) == LABEL_COLOURS[Label.TUMOUR]
    assert lut[0][3] == 0 and lut[Label.LIVER][3] > 0

    # slice navigation: step, shortcuts' actions, lesion click jumps to its slice
    viewer.set_slice(0)
    np.testing.assert_array_equal(viewer.label_item.image, ph.labels[0])
    window.next_action.trigger()
    assert viewer.slice_index == 1
    np.testing.assert_array_equal(viewer.label_item.image, ph.labels[1])
    window.prev_action.trigger()
    window.prev_action.trigger()  # clamped at 0
    assert viewer.slice_index == 0
    lesion = result.stats.lesions[0]
    page.results.table.cellClicked.emit(0, 1)
    assert viewer.slice_index == lesion.centroid_slice
    assert viewer.slice_label.text() == f"Slice {lesion.centroid_slice + 1} / {ph.shape[0]}"

    # per-label visibility and opacity change the lookup table only
    viewer.set_label_visible(Label.TUMOUR, False)
    assert viewer.overlay_lut()[Label.TUMOUR][3] == 0
    assert viewer.overlay_lut()[Label.LIVER][3] > 0
    viewer.set_opacity(1.0)
    assert viewer.overlay_lut()[Label.LIVER][3] == 255

    # cursor readout at the tumour centroid
    cz, cy, cx = (int(round(v)) for v in lesion.centroid_zyx)
    r = viewer.readout(cz, cy, cx)
    assert r["label"] == "Liver tumour" and r["unit"] == "HU" and r["value"] == pytest.approx(20.0)


def test_cancel_a_run(qtbot: Any, window: Any, nifti_phantom: Any, control: Any) -> None:
    control.delay = 0.2  # 12 slices: ~2.4 s unless cancelled
    open_case(qtbot, window, nifti_phantom.path)
    window.set_backend(TEST_BACKEND)
    with qtbot.waitSignal(window.task_failed, timeout=10000) as blocker:
        window.run_segmentation()
        assert control.started.wait(5)
        assert window.is_running()
        bar = window.studio.progress
        qtbot.waitUntil(lambda: bar.value() >= 1 and bar.maximum() == nifti_phantom.phantom.shape[0], timeout=5000)
        assert bar.isVisible() and window.studio.cancel_button.isEnabled()
        assert "slice" in window.studio.run_status.text()
        window.cancel_run()
    failure = blocker.args[0]
    assert failure.cancelled
    assert window.result is None
    assert window.studio.viewer.labels is None
    qtbot.waitUntil(lambda: not window.is_running(), timeout=5000)
    assert window.studio.run_status.text() == "Cancelled."
    assert window.studio.run_button.isEnabled()


def test_backend_error_shows_dialog_and_window_still_works(
    qtbot: Any, window: Any, nifti_phantom: Any, control: Any, errors: list
) -> None:
    open_case(qtbot, window, nifti_phantom.path)
    window.set_backend(TEST_BACKEND)
    control.error = RuntimeError("GPU melted")
    with qtbot.waitSignal(window.task_failed, timeout=10000):
        window.run_segmentation()
    assert len(errors) == 1
    title, text = errors[0]
    assert title == "Segmentation failed"
    assert "GPU melted" in text and TEST_BACKEND in text
    assert not window.is_running()
    # the app is still usable: run again without the fault
    control.error = None
    result = run_and_wait(qtbot, window)
    assert result.stats.n_lesions == 1
    assert len(errors) == 1


def test_loader_error_shows_dialog(qtbot: Any, window: Any, tmp_path: Path, errors: list) -> None:
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with qtbot.waitSignal(window.task_failed, timeout=10000):
        window.open_path(str(bad))
    assert len(errors) == 1
    assert errors[0][0] == "Cannot open this file" and "broken.nii.gz" in errors[0][1]
    assert window.volume is None
    assert window.stack.currentWidget() is window.start_screen


def test_go_back_frees_the_case(qtbot: Any, window: Any, nifti_phantom: Any) -> None:
    open_case(qtbot, window, nifti_phantom.path)
    run_and_wait(qtbot, window)
    ref = weakref.ref(window.volume)
    result_ref = weakref.ref(window.result)
    with qtbot.waitSignal(window.went_back, timeout=5000):
        window.back_action.trigger()
    assert window.stack.currentWidget() is window.start_screen
    assert window.volume is None and window.result is None
    assert window.studio.viewer.volume is None
    qtbot.waitUntil(lambda: not window.segment_runner.is_busy() and not window.loader_runner.is_busy(), timeout=5000)
    for _ in range(3):
        qtbot.wait(10)
        gc.collect()
    assert result_ref() is None, "the segmentation result is still referenced after Go back"
    assert ref() is None, "the volume is still referenced after Go back"
    # recent files list the case; it can be reopened without restarting
    assert window.start_screen.recent_list.count() == 1
    open_case(qtbot, window, nifti_phantom.path)
    assert window.volume is not None


def test_second_run_during_a_run_cancels_the_first(
    qtbot: Any, window: Any, nifti_phantom: Any, control: Any
) -> None:
    control.delay = 0.1
    open_case(qtbot, window, nifti_phantom.path)
    window.set_backend(TEST_BACKEND)
    finished: list = []
    window.segmentation_finished.connect(finished.append)
    first = window.run_segmentation()
    assert control.started.wait(5)
    with qtbot.waitSignal(window.segmentation_finished, timeout=20000):
        second = window.run_segmentation()
    assert second != first
    qtbot.wait(50)
    assert len(finished) == 1  # only the second run's result was shown
    assert control.max_running == 1  # queued, never two predictions at once
    assert window.result is finished[0]
    assert not window.is_running()


def test_stale_result_is_dropped_when_another_image_opens(
    qtbot: Any, window: Any, nifti_phantom: Any, control: Any, tmp_path: Path
) -> None:
    import threading

    import nibabel as nib

    ph = nifti_phantom.phantom
    other_path = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(ph.hu[:8, :48, :48].astype(np.int16).T), ph.affine), str(other_path))
    open_case(qtbot, window, nifti_phantom.path)
    window.set_backend(TEST_BACKEND)
    control.gate = threading.Event()  # the run finishes only when we say so
    # opening another case cancels the run; make that cancel a no-op so that the
    # first run really delivers its (now stale) result
    rid = window.run_segmentation()
    assert control.started.wait(5)
    worker = window._run_worker
    worker.cancel = lambda: None  # type: ignore[method-assign]
    open_case(qtbot, window, other_path)
    with qtbot.waitSignal(window.stale_dropped, timeout=10000) as blocker:
        control.gate.set()
    assert blocker.args[0] == rid
    assert window.result is None
    assert window.studio.viewer.labels is None
    assert window.volume.shape == (8, 48, 48)


def test_closing_during_a_run_joins_the_worker(qtbot: Any, manager: Any, control: Any, nifti_phantom: Any) -> None:
    from liverseg_studio.qt.main_window import MainWindow
    from liverseg_studio.qt.settings import StudioSettings

    control.delay = 0.2
    win = MainWindow(settings=StudioSettings(), manager=manager)
    win.show()
    open_case(qtbot, win, nifti_phantom.path)
    win.set_backend(TEST_BACKEND)
    win.run_segmentation()
    assert control.started.wait(5)
    worker = win._run_worker
    assert worker is not None and not worker.is_done()
    assert win.close()
    # close() returned only after the worker stopped (cancelled at its next slice)
    assert worker.is_done()
    assert not win.segment_runner.is_busy()
    assert control.running == 0
    win.deleteLater()
    qtbot.wait(20)


def test_export_asks_before_overwriting(
    qtbot: Any, window: Any, nifti_phantom: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import nibabel as nib

    open_case(qtbot, window, nifti_phantom.path)
    result = run_and_wait(qtbot, window)
    out = tmp_path / "out"
    out.mkdir()
    mask = window.export("nifti", str(out / "phantom_mask.nii.gz"))
    assert mask is not None and mask.is_file()
    img = nib.load(str(mask))
    np.testing.assert_array_equal(np.asarray(img.dataobj).T, result.labels)
    np.testing.assert_allclose(img.affine, nifti_phantom.phantom.affine)

    report = window.export("json", str(out / "report.json"))
    data = json.loads(report.read_text())
    assert data["tumour_voxels"] == int(np.count_nonzero(result.labels == 2))

    png = window.export("png", str(out / "slice.png"))
    assert png.is_file() and png.stat().st_size > 0

    # DICOM SEG is offered only for DICOM sources
    assert not window.export_actions["seg"].isEnabled()

    # overwriting: "No" keeps the file untouched, "Yes" replaces it
    before = report.read_bytes()
    asked: list[str] = []

    def answer(reply: Any):
        def fake(parent: Any, title: str, text: str, *a: Any, **k: Any) -> Any:
            asked.append(text)
            return reply

        return staticmethod(fake)

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    assert window.export("json", str(report)) is None
    assert report.read_bytes() == before and len(asked) == 1
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    assert window.export("json", str(report)) == report
    assert len(asked) == 2
    assert json.loads(report.read_text())["created_utc"]


def test_pickle_only_model_needs_confirmation(
    qtbot: Any, window: Any, nifti_phantom: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from liverseg_studio.qt.tasks import needs_pickle_trust

    model = tmp_path / "pickled"
    model.mkdir()
    (model / "export.pkl").write_bytes(b"not loaded")
    assert needs_pickle_trust("fastai", str(model)) == model / "export.pkl"
    assert needs_pickle_trust("onnx", str(model)) is None
    (model / "model.safetensors").write_bytes(b"x")
    assert needs_pickle_trust("fastai", str(model)) is None
    (model / "model.safetensors").unlink()

    if "fastai" not in window.manager.backends:
        from liverseg_studio.backends.plugin import fastai_factory
        from liverseg_studio.plugins.registry import BackendSpec

        window.manager.backends.add(BackendSpec(name="fastai", factory=fastai_factory))
    open_case(qtbot, window, nifti_phantom.path)
    window.studio.backend_combo.addItem("fastai", "fastai")
    window.set_backend("fastai")
    window.set_model_dir(str(model))
    asked: list[str] = []

    def refuse(parent: Any, title: str, text: str, *a: Any, **k: Any) -> Any:
        asked.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(refuse))
    assert window.run_segmentation() is None  # refused: nothing started, nothing unpickled
    assert len(asked) == 1 and "arbitrary code" in asked[0]
    assert not window.is_running()


def test_settings_persist(qtbot: Any, window: Any, temp_settings: Path, nifti_phantom: Any) -> None:
    from liverseg_studio.qt.settings import StudioSettings

    window.settings.threads = 3
    window.settings.default_backend = TEST_BACKEND
    window.settings.opacity = 0.7
    window.settings.sync()
    again = StudioSettings(temp_settings)
    assert (again.threads, again.default_backend, again.opacity) == (3, TEST_BACKEND, pytest.approx(0.7))
    assert Path(again.location) == temp_settings
    open_case(qtbot, window, nifti_phantom.path)
    assert StudioSettings(temp_settings).recent_files()[0] == str(Path(nifti_phantom.path).resolve())
    window.studio.viewer.layout_combo.setCurrentIndex(window.studio.viewer.layout_combo.findData("focus"))
    assert window.studio.viewer.layout_mode == "focus"
    window.settings.sync()
    assert StudioSettings(temp_settings).layout == "focus"


def test_about_panel_toggles_and_shows_contact(window: Any) -> None:
    assert not window.about_dock.isVisible()
    window.about_action.trigger()
    assert window.about_dock.isVisible()
    text = window.about_panel.text()
    assert "Contact" in text and "Licence" in text and "non-commercial" in text.lower()
    window.about_action.trigger()
    assert not window.about_dock.isVisible()


def test_model_card_is_shown(window: Any, tmp_path: Path) -> None:
    from liverseg_studio.core.modelcard import ModelCard, write_card

    card = ModelCard(
        name="test-unet",
        version="9.9",
        training={"data": "synthetic phantoms"},
        metrics={"liver_dice": 0.5},
        licence="CC BY-NC-SA 4.0",
    )
    write_card(tmp_path, card)
    from liverseg_studio.qt.about import model_card_html

    html = model_card_html(tmp_path)
    assert "test-unet" in html and "synthetic phantoms" in html and "0.500" in html
    assert "Non-commercial" in html


def test_missing_default_model_is_explained(
    qtbot: Any, window: Any, nifti_phantom: Any, errors: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liverseg_studio.qt.main_window as mw
    from liverseg_studio.plugins.registry import BackendSpec

    monkeypatch.setattr(mw, "default_model_dir", lambda: None)
    window.manager.backends.add(BackendSpec(name="needs-model", factory=lambda: None, needs_model=True))
    open_case(qtbot, window, nifti_phantom.path)
    window.studio.backend_combo.addItem("needs-model", "needs-model")
    window.set_backend("needs-model")
    window.set_model_dir(None)
    assert window.run_segmentation() is None
    assert len(errors) == 1 and errors[0][0] == "No model"
    assert "Model list" in errors[0][1] and TEST_BACKEND in errors[0][1]
    assert not window.is_running()


def test_open_sample_case(qtbot: Any, window: Any, nifti_phantom: Any, monkeypatch: pytest.MonkeyPatch, errors: list) -> None:
    import liverseg_studio.sample as sample

    monkeypatch.setattr(sample, "sample_case", lambda: sample.SampleCase(image=Path(nifti_phantom.path), labels=None))
    with qtbot.waitSignal(window.case_loaded, timeout=20000):
        window.start_screen.sample_button.click()
    assert window.studio.case_name.text().startswith("LiTS case 117 (sample)")
    window.go_back()
    monkeypatch.setattr(sample, "sample_case", lambda: None)
    window.sample_action.trigger()
    assert errors and errors[-1][0] == "Sample case not installed"


def test_mouse_wheel_pages_slices_and_ctrl_wheel_zooms(qtbot: Any, window: Any, nifti_phantom: Any) -> None:
    from PySide6.QtCore import Qt

    open_case(qtbot, window, nifti_phantom.path)
    viewer = window.studio.viewer
    start = viewer.slice_index

    class Wheel:
        def __init__(self, delta: int, modifiers: Any = Qt.KeyboardModifier.NoModifier) -> None:
            self._delta, self._mod, self.accepted = delta, modifiers, False

        def delta(self) -> int:
            return self._delta

        def modifiers(self) -> Any:
            return self._mod

        def accept(self) -> None:
            self.accepted = True

        def ignore(self) -> None:
            self.accepted = False

        def pos(self) -> Any:
            from PySide6.QtCore import QPointF

            return QPointF(10, 10)

    ev = Wheel(120)
    viewer.overlay_panel.view.wheelEvent(ev)
    assert ev.accepted and viewer.slice_index == start + 1
    viewer.anatomy_panel.view.wheelEvent(Wheel(-120))
    viewer.anatomy_panel.view.wheelEvent(Wheel(-120))
    assert viewer.slice_index == start - 1
    before = viewer.input_panel.view.viewRange()[0]
    viewer.overlay_panel.view.wheelEvent(Wheel(120, Qt.KeyboardModifier.ControlModifier))
    assert viewer.slice_index == start - 1  # Ctrl+wheel zooms instead
    after = viewer.input_panel.view.viewRange()[0]
    assert (after[1] - after[0]) < (before[1] - before[0])


def test_choosing_a_folder_without_model_json_is_refused(
    qtbot: Any, window: Any, nifti_phantom: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QFileDialog

    from liverseg_studio.core.modelcard import ModelCard, write_card
    from liverseg_studio.qt.main_window import BROWSE

    open_case(qtbot, window, nifti_phantom.path)
    combo = window.studio.model_combo
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda p, t, text, *a, **k: warned.append(text)))
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(empty)))
    combo.setCurrentIndex(combo.findData(BROWSE))
    window._model_activated(combo.currentIndex())
    assert len(warned) == 1 and "model.json" in warned[0]
    assert window.selected_model_dir() is None
    good = tmp_path / "good"
    good.mkdir()
    write_card(good, ModelCard(name="m"))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(good)))
    combo.setCurrentIndex(combo.findData(BROWSE))
    window._model_activated(combo.currentIndex())
    assert window.selected_model_dir() == str(good)
    assert window.settings.last_model_dir == str(good)
