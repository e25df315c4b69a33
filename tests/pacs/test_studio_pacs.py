"""The studio's PACS dialogs against the real Orthanc: File -> Open from PACS… finds the study, retrieves
the series in a worker (progress) and hands its cache folder to the window; Export -> Send to PACS…
sends the SEG of a result."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

pytest.importorskip("pytestqt")


@pytest.fixture
def config(filled, tmp_path):
    from liverseg_studio.pacs.config import load_config

    return load_config(filled.orthanc.config_toml(tmp_path / "pacs.toml"))


@pytest.mark.parametrize("via", ["get", "wado"])
def test_open_from_pacs_dialog_finds_and_retrieves(qtbot, filled, tmp_path, via):
    from liverseg_studio.pacs.config import load_config
    from liverseg_studio.qt.pacs.dialog import PacsDialog

    config = load_config(filled.orthanc.config_toml(tmp_path / "pacs.toml", retrieve=via))
    dialog = PacsDialog(None, config, tmp_path / "cache")
    qtbot.addWidget(dialog)
    dialog.patient_name.setText("liver_01*")
    dialog.search()
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 1 and dialog._worker is None, timeout=20000)
    study = dialog.tree.topLevelItem(0)
    children = [study.child(i) for i in range(study.childCount())]
    ct = [c for c in children if c.text(3) == "CT"]  # (other tests store SEG series into this study)
    assert len(ct) == 1 and ct[0].text(5) == "6" and ct[0].text(4) == "PORTAL VENOUS 1.6 mm"
    assert {c.text(3) for c in children} <= {"CT", "SEG"}
    dialog.tree.setCurrentItem(ct[0])
    values = []
    dialog.retrieve()
    dialog.progress.valueChanged.connect(values.append)
    qtbot.waitUntil(lambda: bool(dialog.opened), timeout=30000)
    folder = dialog.opened[0]
    assert folder == tmp_path / "cache" / filled.ct_study / filled.ct_series
    assert len(list(folder.glob("*.dcm"))) == 6
    assert dialog.result() == dialog.DialogCode.Accepted


def test_unknown_study_is_one_line_in_the_dialog(qtbot, filled, config, tmp_path):
    from liverseg_studio.pacs.model import StudyInfo
    from liverseg_studio.qt.pacs.dialog import PacsDialog, UID_ROLE
    from PySide6.QtWidgets import QTreeWidgetItem

    dialog = PacsDialog(None, config, tmp_path / "cache")
    qtbot.addWidget(dialog)
    item = QTreeWidgetItem(["x"])
    from liverseg_studio.pacs.model import SeriesInfo

    item.setData(0, UID_ROLE, ("series", SeriesInfo("1.2.3.4", "1.2.3.4.5", "CT")))
    dialog.tree.addTopLevelItem(item)
    dialog.tree.setCurrentItem(item)
    dialog.retrieve()
    qtbot.waitUntil(lambda: dialog._worker is None and bool(dialog.error.text()), timeout=20000)
    assert "no instances" in dialog.error.text() and "\n" not in dialog.error.text()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.dcm"))
    assert StudyInfo  # the tree takes the client's records


def test_window_has_the_pacs_actions_and_sends_a_seg(qtbot, filled, config, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVERSEG_SETTINGS", str(tmp_path / "studio.ini"))
    from liverseg_studio.plugins.manager import get_plugin_manager
    from liverseg_studio.plugins.registry import LoadOptions
    from liverseg_studio.qt.app import create_app
    from liverseg_studio.qt.main_window import MainWindow
    from liverseg_studio.qt.pacs.send import send_seg
    from liverseg_studio.qt.settings import StudioSettings
    from liverseg_studio.segment.pipeline import segment_volume

    create_app([])
    pm = get_plugin_manager()
    win = MainWindow(settings=StudioSettings(tmp_path / "studio.ini"), manager=pm)
    qtbot.addWidget(win)
    try:
        file_menu = win.menuBar().actions()[0].menu()
        assert "Open from &PACS…" in [a.text() for a in file_menu.actions()]
        assert "Send to PACS…" in [a.text() for a in win.export_menu.actions()]
    finally:
        win.shutdown(10)
    folder = Path(filled.ct_files[0]).parent
    backend = pm.backends.get("threshold").factory()
    backend.load(None)
    result = segment_volume(pm.loaders.load(folder, LoadOptions()), backend)
    sop = send_seg(config, "orthanc", result)
    hits = [h for h in filled.orthanc.rest("POST", "/tools/lookup", data=sop) if h["Type"] == "Instance"]
    assert len(hits) == 1
    tags = filled.orthanc.rest("GET", f"/instances/{hits[0]['ID']}/simplified-tags")
    assert tags["Modality"] == "SEG" and tags["StudyInstanceUID"] == filled.ct_study
    assert str(pydicom.dcmread(filled.ct_files[0]).SeriesInstanceUID) == filled.ct_series
