"""The studio's series picker (issue 28): opening a whole-study folder lists its series (description,
number of images, slice thickness, phase, a thumbnail, why the rule skips it) with the rule's choice
(:mod:`liverseg_studio.loaders.study`) preselected.  Hooked into ``MainWindow.open_path``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

THUMB = 64
COLUMNS = ("Series", "Description", "Images", "Thickness", "Phase", "Note")


def thumbnail(summary: Any) -> np.ndarray | None:
    """The middle image of a series, abdominal window (W400/L40), as uint8 of at most THUMB pixels a side."""
    import pydicom.pixels

    from liverseg_studio.loaders import dicom as dcm

    try:
        if summary.multiframe:
            arr = np.asarray(pydicom.pixels.pixel_array(summary.files[0], index=summary.n_images // 2), dtype=np.float32)
            ds = dcm.read_dataset(Path(summary.files[0]), stop_before_pixels=True)
            from liverseg_studio.loaders.dicom_multiframe import frame_rescale

            slope, intercept = frame_rescale(ds, summary.n_images // 2)
            hu = arr * slope + intercept
        else:
            path = Path(sorted(summary.files)[len(summary.files) // 2])
            ds = dcm.read_dataset(path)
            hu = dcm.decode_hu(path, ds, int(ds.Rows), int(ds.Columns))
    except Exception:  # noqa: BLE001 - a thumbnail is a courtesy
        return None
    step = max(1, max(hu.shape) // THUMB)
    grey = np.clip((hu[::step, ::step] + 160.0) / 400.0 * 255.0, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(grey)


def _icon(grey: np.ndarray | None) -> QIcon:
    if grey is None:
        return QIcon()
    img = QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0], QImage.Format.Format_Grayscale8)
    return QIcon(QPixmap.fromImage(img.copy()))


class SeriesPickerDialog(QDialog):
    """One row per series; the rule's choice selected; OK opens the selected series."""

    def __init__(self, folder: str, choice: Any, parent: QWidget | None = None, *, thumbnails: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a series")
        self.summaries = list(choice.summaries)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{folder} holds {len(self.summaries)} series."))
        reason = QLabel(choice.reason or f"Suggested: {choice.chosen.label}")
        reason.setWordWrap(True)
        layout.addWidget(reason)
        self.table = QTableWidget(len(self.summaries), len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, s in enumerate(self.summaries):
            number = QTableWidgetItem("" if s.series_number is None else str(s.series_number))
            if thumbnails and s.modality == "CT":
                number.setIcon(_icon(thumbnail(s)))
            cells = [number, QTableWidgetItem(s.description or "(no description)"), QTableWidgetItem(str(s.n_images)),
                     QTableWidgetItem(f"{s.thickness_mm:g} mm" if s.thickness_mm else "?"), QTableWidgetItem(s.phase or "-"),
                     QTableWidgetItem("rule's choice" if s.uid == choice.chosen.uid else (f"skipped: {s.skipped}" if s.skipped else ""))]
            for c, item in enumerate(cells):
                item.setToolTip(s.uid)
                self.table.setItem(r, c, item)
        self.table.setIconSize(QPixmap(THUMB, THUMB).size())
        self.table.resizeColumnsToContents()
        self.table.resizeRowsToContents()
        self.table.selectRow([s.uid for s in self.summaries].index(choice.chosen.uid))
        self.table.doubleClicked.connect(self.accept)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 360)

    def selected_uid(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.summaries[rows[0].row()].uid if rows else None


def ask(window: QWidget, path: str) -> Any:
    """Load options for ``path``: None (open as usual), False (the user cancelled), or the picked series.

    The picker shows only for folders holding several series."""
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.loaders.dicom_series import scan_study
    from liverseg_studio.plugins.registry import LoadOptions

    if not Path(path).is_dir():
        return None
    try:
        choice = scan_study(Path(path))
    except LiversegError:
        return None  # the loader says what is wrong, as for any folder
    if len(choice.summaries) < 2:
        return None
    dialog = SeriesPickerDialog(str(path), choice, window)
    if dialog.exec() != QDialog.DialogCode.Accepted or dialog.selected_uid() is None:
        return False
    return LoadOptions(series_uid=dialog.selected_uid())


def choose_tied(window: Any, err: Any) -> None:
    """The rule could not decide (MultipleSeriesError: an exact tie): ask which series, then open it."""
    from PySide6.QtWidgets import QInputDialog

    from liverseg_studio.plugins.registry import LoadOptions

    items = [f"{desc or 'no description'} — {n} files — {uid}" for uid, desc, n in err.series]
    choice, ok = QInputDialog.getItem(window, "Choose a series", f"{err.path} holds several series:", items, 0, False)
    if ok and choice in items:
        window.open_path(err.path, LoadOptions(series_uid=err.series[items.index(choice)][0]))
