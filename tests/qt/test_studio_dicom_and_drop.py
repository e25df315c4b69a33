"""DICOM in the studio (series choice, DICOM SEG export), drag and drop, recent files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from studio_helpers import open_case, run_and_wait

pytestmark = pytest.mark.timeout(120)


def _root_conftest() -> Any:
    """tests/conftest.py's writers (loaded by path: tests/qt has its own conftest)."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("liverseg_root_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dicom_series_segment_and_export_seg(qtbot: Any, window: Any, dicom_series_phantom: Any, tmp_path: Path) -> None:
    import pydicom

    ph = dicom_series_phantom.phantom
    volume = open_case(qtbot, window, dicom_series_phantom.path)
    assert volume.shape == ph.shape
    result = run_and_wait(qtbot, window)
    np.testing.assert_array_equal(result.labels, ph.labels)
    assert window.export_actions["seg"].isEnabled()
    out = window.export("dicom-seg", str(tmp_path / "seg.dcm"))
    assert out is not None and out.is_file()
    ds = pydicom.dcmread(str(out))
    assert ds.Modality == "SEG"
    assert {int(s.SegmentNumber) for s in ds.SegmentSequence} >= {1, 2}


def test_folder_with_two_series_asks_which(
    qtbot: Any, window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study folder opens the series picker (issue 28) with the rule's choice (portal venous) preselected."""
    from PySide6.QtWidgets import QDialog

    from liverseg_studio.qt import series_picker

    root = _root_conftest()
    a = root.make_phantom(shape=(6, 32, 32))
    b = root.make_phantom(shape=(9, 32, 32))
    folder = tmp_path / "study"
    for name, ph, desc in (("a", a, "arterial"), ("b", b, "portal venous")):
        for path in root.write_ct_series(tmp_path / name, ph.hu, ph.affine, series_description=desc):
            folder.mkdir(exist_ok=True)
            path.rename(folder / f"{name}_{path.name}")  # the writer's names would clash
    offered: list[list[tuple[str, str, str]]] = []

    def accept(dialog: Any) -> int:
        t = dialog.table
        offered.append([(t.item(r, 1).text(), t.item(r, 2).text(), t.item(r, 4).text()) for r in range(t.rowCount())])
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(series_picker.SeriesPickerDialog, "exec", accept)
    with qtbot.waitSignal(window.case_loaded, timeout=20000) as blocker:
        window.open_path(str(folder))
    assert len(offered) == 1 and sorted(offered[0]) == [("arterial", "6", "arterial"), ("portal venous", "9", "portal venous")]
    assert blocker.args[0].shape == (9, 32, 32)


def test_series_picker_cancel_opens_nothing(window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QDialog

    from liverseg_studio.qt import series_picker

    root = _root_conftest()
    ph = root.make_phantom(shape=(4, 32, 32))
    for name, desc in (("a", "arterial"), ("b", "delayed")):
        root.write_ct_series(tmp_path / "study" / name, ph.hu, ph.affine, series_description=desc)
    monkeypatch.setattr(series_picker.SeriesPickerDialog, "exec", lambda self: QDialog.DialogCode.Rejected)
    assert window.open_path(str(tmp_path / "study")) == -1


def test_drag_and_drop_opens_the_file(qtbot: Any, window: Any, nifti_phantom: Any) -> None:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(nifti_phantom.path))])
    event = QDropEvent(
        QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(window.case_loaded, timeout=20000) as blocker:
        window.dropEvent(event)
    assert blocker.args[0].shape == nifti_phantom.phantom.shape


def test_recent_file_reopens(qtbot: Any, window: Any, nifti_phantom: Any) -> None:
    open_case(qtbot, window, nifti_phantom.path)
    window.go_back()
    lst = window.start_screen.recent_list
    assert lst.count() == 1
    assert window.recent_menu.isEnabled()
    with qtbot.waitSignal(window.case_loaded, timeout=20000):
        lst.itemActivated.emit(lst.item(0))
    assert window.studio.case_name.text() == "phantom.nii.gz"
