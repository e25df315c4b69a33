"""File -> "Open cohort table…": a ``cohort.csv`` of ``liverseg cohort`` in a sortable table.

Click a header to sort by any column (numbers as numbers, empty cells last);
the filter box matches any cell.  Double-click a row: the main window opens
that study (``MainWindow.open_path``) and, once it is loaded, shows the
study's mask from the cohort's folder over it (``<name>_mask.nii.gz``, or the
PNG mask of a 2D input).  Failed rows are tinted and have no mask.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

#: The sort key of a cell (numbers sort as numbers).
SORT_ROLE = int(Qt.ItemDataRole.UserRole) + 1
NUMERIC = {"liver_ml", "tumour_ml", "tumour_burden_percent", "n_lesions", "liver_voxels", "tumour_voxels",
           "n_slices", "seconds"}  # fmt: skip
FAILED_TINT = QColor(140, 40, 40, 90)


def load_mask(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    """A cohort mask as uint8 (z, y, x): NIfTI (``data.T``) or a 2D PNG; must match ``shape``."""
    p = Path(path)
    if p.name.lower().endswith((".nii", ".nii.gz")):
        import nibabel as nib

        labels = np.asarray(nib.load(str(p)).dataobj).T
    else:
        from PIL import Image

        with Image.open(p) as im:
            labels = np.asarray(im)[None]
    labels = np.asarray(labels, dtype=np.uint8)
    if labels.shape != tuple(shape):
        raise ValueError(f"{p.name}: mask shape {labels.shape} does not match the study {tuple(shape)}")
    return labels


class _SortProxy(QSortFilterProxyModel):
    """Numbers by value, text case-insensitively; empty cells after every value."""

    def lessThan(self, left: Any, right: Any) -> bool:  # noqa: N802 - Qt name
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:  # empty cells last in either order
            if self.sortOrder() == Qt.SortOrder.DescendingOrder:
                return a is None and b is not None
            return a is not None and b is None
        if isinstance(a, float) and isinstance(b, float):
            return a < b
        return str(a).lower() < str(b).lower()


class CohortTableWindow(QWidget):
    """The table of one ``cohort.csv``; ``study_requested(path, mask_path)`` on double-click."""

    study_requested = Signal(str, str)

    def __init__(self, csv_path: str | Path, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        from liverseg_studio.cohort.table import read_table

        self.csv_path = Path(csv_path)
        self.folder = self.csv_path.parent
        self.setWindowTitle(f"Cohort: {self.csv_path}")
        self.header, self.rows = read_table(self.csv_path)
        if "id" not in self.header or "path" not in self.header:
            raise ValueError(f"{self.csv_path}: not a cohort table (no id/path columns)")
        self.model = QStandardItemModel(len(self.rows), len(self.header), self)
        self.model.setHorizontalHeaderLabels(self.header)
        for r, row in enumerate(self.rows):
            failed = row.get("status") == "failed"
            for c, col in enumerate(self.header):
                text = row.get(col, "")
                item = QStandardItem(text)
                item.setEditable(False)
                item.setData(_sort_key(col, text), SORT_ROLE)
                item.setData(r, Qt.ItemDataRole.UserRole)  # the row in self.rows
                if failed:
                    item.setBackground(QBrush(FAILED_TINT))
                if col == "error" and text:
                    item.setToolTip(text)
                self.model.setItem(r, c, item)
        self.proxy = _SortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.doubleClicked.connect(lambda index: self.open_row(index.row()))
        self.view.resizeColumnsToContents()
        n_ok = sum(1 for r in self.rows if r.get("status") == "ok")
        self.summary = QLabel(
            f"{len(self.rows)} studies: {n_ok} ok, {len(self.rows) - n_ok} failed. "
            "Click a header to sort; double-click a study to open it with its mask."
        )
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter (any column)…")
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.filter)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view)
        self.resize(1100, 600)

    def sort_by(self, column: str, descending: bool = False) -> None:
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.view.sortByColumn(self.header.index(column), order)

    def row_at(self, view_row: int) -> dict[str, str]:
        """The table row shown at ``view_row`` (after sorting and filtering)."""
        index = self.proxy.index(view_row, 0)
        return self.rows[int(index.data(Qt.ItemDataRole.UserRole))]

    def open_row(self, view_row: int) -> None:
        row = self.row_at(view_row)
        mask = row.get("mask", "")
        self.study_requested.emit(row.get("path", ""), str(self.folder / mask) if mask else "")


def _sort_key(column: str, text: str) -> Any:
    if text == "":
        return None
    if column in NUMERIC:
        try:
            value = float(text)
        except ValueError:
            return text
        return value if math.isfinite(value) else None
    return text


# -- the main window's hook -------------------------------------------------------------
def open_study_with_mask(window: Any, path: str, mask: str) -> int | None:
    """Open ``path`` in ``window``; when that case is loaded, show ``mask`` over it."""
    if not path or not Path(path).exists():
        QMessageBox.warning(window, "Study not found", f"{path or '(no path)'} does not exist.")
        return None
    target = Path(path).resolve()

    def on_loaded(volume: Any) -> None:
        window.case_loaded.disconnect(on_loaded)
        source = Path(str(getattr(volume, "source", "") or path)).resolve()
        if source != target or not mask or window.studio is None:
            return  # another case was opened meanwhile, or a failed study (no mask)
        try:
            window.studio.viewer.set_labels(load_mask(mask, volume.shape))
        except (OSError, ValueError) as exc:
            QMessageBox.warning(window, "Mask not shown", f"{mask}: {exc}")
            return
        window.statusBar().showMessage(f"Showing the cohort mask {Path(mask).name}", 8000)

    window.case_loaded.connect(on_loaded)
    return window.open_path(path)


def open_cohort_table(window: Any, csv_path: str | None = None) -> CohortTableWindow | None:
    """Ask for a ``cohort.csv`` (unless given) and show it; double-clicks open studies in ``window``."""
    if csv_path is None:
        settings = getattr(window, "settings", None)
        start = getattr(settings, "last_dir", "") or ""
        csv_path, _ = QFileDialog.getOpenFileName(window, "Open cohort table", start, "Cohort table (*.csv)")
        if not csv_path:
            return None
    try:
        table = CohortTableWindow(csv_path, window)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        QMessageBox.warning(window, "Cannot open the cohort table", str(exc))
        return None
    table.study_requested.connect(lambda path, mask: open_study_with_mask(window, path, mask))
    table.show()
    return table


def cohort_action(window: Any) -> QAction:
    """File -> "Open cohort table…" for the main window's menu."""
    act = QAction("Open &cohort table…", window)
    act.setStatusTip("Show a cohort.csv of `liverseg cohort`; double-click a study to open it with its mask")
    act.triggered.connect(lambda: open_cohort_table(window))
    return act
