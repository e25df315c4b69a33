"""The studio page: the slice viewer beside the side panel (case, segmentation, results, editing)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from liverseg_studio.qt.results import ResultsPanel


class StudioPage(QWidget):
    """The viewer plus the side panel (case, segmentation, results)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from liverseg_studio.qt.viewer import SliceViewer  # imports pyqtgraph

        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        lay.addWidget(splitter)
        self.viewer: SliceViewer = SliceViewer()
        splitter.addWidget(self.viewer)

        side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(6, 0, 0, 0)
        side_lay.setSpacing(8)

        # -- case -------------------------------------------------------------------
        case_box = QGroupBox("Case")
        cl = QVBoxLayout(case_box)
        self.case_name = QLabel("–")
        self.case_name.setStyleSheet("font-weight: 600; font-size: 11pt;")
        self.case_name.setWordWrap(True)
        self.case_details = QLabel("")
        self.case_details.setObjectName("muted")
        self.case_details.setWordWrap(True)
        self.back_button = QPushButton("◀  Go back")
        self.back_button.setToolTip("Close this case and return to the start screen (Ctrl+W)")
        # what the loader warned about (an intensity correction, disagreeing qform/sform ...)
        self.case_warning = QLabel("")
        self.case_warning.setObjectName("caseWarning")
        self.case_warning.setStyleSheet("color: #e5c07b;")
        self.case_warning.setWordWrap(True)
        self.case_warning.setVisible(False)
        cl.addWidget(self.case_name)
        cl.addWidget(self.case_details)
        cl.addWidget(self.case_warning)
        cl.addWidget(self.back_button)
        side_lay.addWidget(case_box)

        # -- segmentation ------------------------------------------------------------
        seg_box = QGroupBox("Segmentation")
        form = QFormLayout(seg_box)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.backend_combo = QComboBox()
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(14)
        form.addRow("Backend", self.backend_combo)
        form.addRow("Model", self.model_combo)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run  (Ctrl+R)")
        self.run_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("danger")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        form.addRow(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m slices")
        self.progress.setVisible(False)
        form.addRow(self.progress)
        self.run_status = QLabel("Not segmented yet.")
        self.run_status.setObjectName("muted")
        self.run_status.setWordWrap(True)
        form.addRow(self.run_status)
        side_lay.addWidget(seg_box)

        # -- correcting the segmentation (qt.editing) -------------------------------------
        from liverseg_studio.qt.editing.panel import EditPanel

        self.edit_panel = EditPanel()
        side_lay.addWidget(self.edit_panel)

        # -- results ---------------------------------------------------------------------
        res_box = QGroupBox("Results")
        rl = QVBoxLayout(res_box)
        self.results = ResultsPanel()
        rl.addWidget(self.results)
        self.export_button = QToolButton()
        self.export_button.setText("Export  (Ctrl+E)")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.export_button.setEnabled(False)
        rl.addWidget(self.export_button)
        side_lay.addWidget(res_box, 1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(side)
        scroll.setMinimumWidth(330)
        splitter.addWidget(scroll)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([1200, 360])

    def show_case(self, volume: object) -> None:
        """The case panel for a loaded volume: geometry, loader, orientation, and the loader's warning."""
        z, y, x = volume.shape  # type: ignore[attr-defined]
        if volume.spacing_known:  # type: ignore[attr-defined]
            sz, sy, sx = volume.spacing  # type: ignore[attr-defined]
            geo = f"{x} × {y} × {z} voxels · {sx:.2f} × {sy:.2f} × {sz:.2f} mm"
        else:
            geo = f"{x} × {y} × {z} voxels · spacing unknown (volumes in voxels)"
        radiological = self.viewer.orientation.radiological
        orient = "radiological view (patient right on the left)" if radiological else "shown as stored"
        loader = getattr(volume, "loader", "") or "loaded"
        self.case_details.setText(f"{geo}\n{loader} · {volume.intensity.value} · {orient}")  # type: ignore[attr-defined]
        warning = str(getattr(volume, "meta", {}).get("warning") or "")
        self.case_warning.setText(f"⚠ {warning}" if warning else "")
        self.case_warning.setToolTip(warning)
        self.case_warning.setVisible(bool(warning))
