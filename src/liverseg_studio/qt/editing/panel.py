"""The "Correct" box of the side panel: tools, label, brush radius, fill range, undo/redo.

Only widgets; :class:`~liverseg_studio.qt.editing.studio.StudioEditing` binds
them to the actions (which carry the keyboard shortcuts) and the controller.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QToolButton,
    QWidget,
)

from liverseg_studio.qt.editing.controller import DEFAULT_HU_TOLERANCE, DEFAULT_RADIUS_MM, RADIUS_MM_RANGE, TOOLS


class EditPanel(QGroupBox):
    """Widgets of the editing tools (see the module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Correct", parent)
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(6)
        tools = QHBoxLayout()
        self.tool_buttons: dict[str, QToolButton] = {}
        for key in TOOLS:
            b = QToolButton()
            b.setCheckable(True)
            b.setObjectName(f"tool_{key}")
            tools.addWidget(b, 1)
            self.tool_buttons[key] = b
        grid.addLayout(tools, 0, 0, 1, 4)

        self.liver_radio = QRadioButton("Liver (1)")
        self.liver_radio.setObjectName("liver")
        self.tumour_radio = QRadioButton("Tumour (2)")
        self.tumour_radio.setObjectName("tumour")
        self.liver_radio.setChecked(True)
        self.label_group = QButtonGroup(self)
        self.label_group.addButton(self.liver_radio, 1)
        self.label_group.addButton(self.tumour_radio, 2)
        grid.addWidget(QLabel("Label"), 1, 0)
        grid.addWidget(self.liver_radio, 1, 1)
        grid.addWidget(self.tumour_radio, 1, 2, 1, 2)

        self.radius_spin = QDoubleSpinBox()
        self.radius_spin.setRange(*RADIUS_MM_RANGE)
        self.radius_spin.setDecimals(1)
        self.radius_spin.setSingleStep(0.5)
        self.radius_spin.setSuffix(" mm")
        self.radius_spin.setValue(DEFAULT_RADIUS_MM)
        self.radius_spin.setToolTip("Brush and eraser radius ([ smaller, ] larger)")
        self.brush_3d = QCheckBox("3D")
        self.brush_3d.setToolTip("Paint and erase a sphere across slices instead of a disc on this slice")
        grid.addWidget(QLabel("Radius"), 2, 0)
        grid.addWidget(self.radius_spin, 2, 1, 1, 2)
        grid.addWidget(self.brush_3d, 2, 3)

        self.hu_spin = QDoubleSpinBox()
        self.hu_spin.setRange(0.0, 1000.0)
        self.hu_spin.setDecimals(0)
        self.hu_spin.setSingleStep(5.0)
        self.hu_spin.setPrefix("± ")
        self.hu_spin.setSuffix(" HU")
        self.hu_spin.setValue(DEFAULT_HU_TOLERANCE)
        self.hu_spin.setToolTip("Fill: the connected region within the clicked HU ± this range")
        grid.addWidget(QLabel("Fill"), 3, 0)
        grid.addWidget(self.hu_spin, 3, 1, 1, 3)

        row = QHBoxLayout()
        self.undo_button = QToolButton()
        self.redo_button = QToolButton()
        self.open_mask_button = QPushButton("Open mask…")
        self.open_mask_button.setToolTip("Open an existing mask (NIfTI, DICOM SEG or PNG) onto this image to edit it")
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        row.addStretch(1)
        row.addWidget(self.open_mask_button)
        grid.addLayout(row, 4, 0, 1, 4)
        self.status = QLabel("Open a mask or run a segmentation to correct it.")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        grid.addWidget(self.status, 5, 0, 1, 4)
