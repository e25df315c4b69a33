"""The results panel: liver and tumour volumes, burden, lesion table, timings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from liverseg_studio.core.volumetry import VolumeStats
    from liverseg_studio.segment.pipeline import SegmentationResult


def format_volume(ml: float | None, voxels: int) -> str:
    """``1234.5 mL``, or a voxel count (``12,345 vox``, ``1.37 M vox``) when the spacing is unknown."""
    if ml is None:
        if voxels >= 1_000_000:
            return f"{voxels / 1e6:.2f} M vox"
        return f"{voxels:,} vox"
    return f"{ml:,.1f} mL"


def format_burden(percent: float | None) -> str:
    return "–" if percent is None else f"{percent:.2f} %"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class _Metric(QFrame):
    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(0)
        self.value = QLabel("–")
        self.value.setObjectName("metric")
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.name = QLabel(name)
        self.name.setObjectName("metricName")
        lay.addWidget(self.value)
        lay.addWidget(self.name)


class ResultsPanel(QWidget):
    """Volumetry of the current segmentation; clicking a lesion asks to jump to its slice."""

    #: z index of the activated lesion's centroid
    lesion_activated = Signal(int)

    COLUMNS = ("#", "Volume", "Axial Ø", "Slice")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        grid = QGridLayout()
        grid.setSpacing(6)
        self.liver = _Metric("Liver (incl. tumour)")
        self.tumour = _Metric("Tumour")
        self.burden = _Metric("Tumour burden")
        self.lesion_count = _Metric("Lesions")
        grid.addWidget(self.liver, 0, 0)
        grid.addWidget(self.tumour, 0, 1)
        grid.addWidget(self.burden, 1, 0)
        grid.addWidget(self.lesion_count, 1, 1)
        lay.addLayout(grid)

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setToolTip("Click a lesion to show its centroid slice")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(120)
        self.table.cellClicked.connect(self._clicked)
        self.table.cellActivated.connect(self._clicked)
        lay.addWidget(self.table, 1)

        self.timing = QLabel("")
        self.timing.setObjectName("muted")
        self.timing.setWordWrap(True)
        self.note = QLabel("")
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        lay.addWidget(self.timing)
        lay.addWidget(self.note)
        self.clear()

    def clear(self) -> None:
        for m in (self.liver, self.tumour, self.burden, self.lesion_count):
            m.value.setText("–")
        self.table.setRowCount(0)
        self.timing.setText("Run a segmentation to see volumes and lesions.")
        self.note.setText("")

    def set_result(self, result: "SegmentationResult") -> None:
        self.set_stats(result.stats)
        t = result.timings
        model = result.model.name
        version = f" {result.model.version}" if result.model.version else ""
        model_text = f" · model {model}{version}" if model and model != result.backend else " · no model"
        self.timing.setText(
            f"Inference {format_seconds(t.get('inference'))} "
            f"({result.slices_per_second:.1f} slices/s) · total {format_seconds(t.get('total'))}\n"
            f"Backend {result.backend}{model_text}"
        )

    def set_stats(self, stats: "VolumeStats") -> None:
        self.liver.value.setText(format_volume(stats.liver_ml, stats.liver_voxels))
        self.tumour.value.setText(format_volume(stats.tumour_ml, stats.tumour_voxels))
        self.liver.value.setToolTip(f"{stats.liver_voxels:,} voxels")
        self.tumour.value.setToolTip(f"{stats.tumour_voxels:,} voxels")
        self.burden.value.setText(format_burden(stats.tumour_burden_percent))
        self.lesion_count.value.setText(str(stats.n_lesions))
        self.table.setRowCount(len(stats.lesions))
        for row, les in enumerate(stats.lesions):
            if les.volume_ml is not None:
                vol = f"{les.volume_ml:.2f} mL"
            else:
                vol = f"{les.voxels:,} vox"
            if les.longest_axial_diameter_mm is not None:
                diam = f"{les.longest_axial_diameter_mm:.1f} mm"
            else:
                diam = f"{les.longest_axial_diameter_px:.1f} px"
            cells: list[Any] = [str(les.id), vol, diam, str(les.centroid_slice + 1)]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, int(les.centroid_slice))
                align = Qt.AlignmentFlag.AlignRight if col else Qt.AlignmentFlag.AlignCenter
                item.setTextAlignment(align | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.note.setText(stats.note)

    def _clicked(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.lesion_activated.emit(int(item.data(Qt.ItemDataRole.UserRole)))
