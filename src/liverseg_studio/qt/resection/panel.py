"""Virtual resection controls (issue 25): a cutting plane, the FLR figures, save and reopen the plan.

The plane is set by its orientation (azimuth and elevation of its normal, degrees, RAS) and its
offset along the normal from the liver's centre (mm); *Flip* swaps the resected side.  The figures
(:func:`liverseg_studio.core.resection.evaluate_plan`): remnant mL and % of the liver, resected
mL, each lesion's side and margin in mm, and warnings (a lesion touching the cut, a remnant under
the configurable threshold, 30 % by default).  The plan is saved as ``<name>_plan.json``
(:func:`~liverseg_studio.core.resection.save_plan`) beside the mask and reopened from there;
``liverseg segment --export plan`` turns it into a mask with a third value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from liverseg_studio.core.resection import (
    DEFAULT_MIN_REMNANT_PERCENT,
    ResectionPlan,
    ResectionResult,
    evaluate_plan,
    load_plan,
    save_plan,
)
from liverseg_studio.core.volume import Label


def normal_from_angles(azimuth_deg: float, elevation_deg: float) -> tuple[float, float, float]:
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    return (math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e))


def angles_from_normal(normal: Any) -> tuple[float, float]:
    x, y, z = (float(v) for v in normal)
    return math.degrees(math.atan2(y, x)), math.degrees(math.asin(max(-1.0, min(1.0, z))))


class ResectionPanel(QWidget):
    """See the module docstring.  ``plan_changed`` carries the plan (None: no plan)."""

    plan_changed = Signal(object)
    evaluated = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: np.ndarray | None = None
        self.affine = np.eye(4)
        self.centre = np.zeros(3)
        self.plan: ResectionPlan | None = None
        self.result: ResectionResult | None = None
        self._updating = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self.azimuth = self._spin(-180, 180, 0.0, " °")
        self.elevation = self._spin(-90, 90, 0.0, " °")
        self.offset = QSlider(Qt.Orientation.Horizontal)
        self.offset.setRange(-150, 150)
        self.offset.setToolTip("plane position along its normal from the liver centre (mm)")
        self.min_remnant = self._spin(0, 100, DEFAULT_MIN_REMNANT_PERCENT, " %")
        self.min_remnant.setToolTip("warn when the remnant is below this share of the liver")
        form.addRow("Normal azimuth", self.azimuth)
        form.addRow("Normal elevation", self.elevation)
        form.addRow("Offset (mm)", self.offset)
        form.addRow("Warn if remnant <", self.min_remnant)
        lay.addLayout(form)
        row = QHBoxLayout()
        self.enable_button = QPushButton("Place plane")
        self.enable_button.setCheckable(True)
        self.flip_button = QPushButton("Flip side")
        self.save_button = QPushButton("Save plan…")
        self.open_button = QPushButton("Open plan…")
        for b in (self.enable_button, self.flip_button, self.save_button, self.open_button):
            row.addWidget(b)
        lay.addLayout(row)
        self.figures = QLabel("Place a plane to see the future liver remnant.")
        self.figures.setWordWrap(True)
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #e8a33d;")
        lay.addWidget(self.figures)
        lay.addWidget(self.warnings)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["#", "Side", "Margin"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(80)
        lay.addWidget(self.table, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(self._apply)
        for w in (self.azimuth, self.elevation, self.min_remnant):
            w.valueChanged.connect(self._schedule)
        self.offset.valueChanged.connect(self._schedule)
        self.enable_button.toggled.connect(self._toggled)
        self.flip_button.clicked.connect(self.flip)
        self.save_button.clicked.connect(lambda: self._dialog(save=True))
        self.open_button.clicked.connect(lambda: self._dialog(save=False))
        self._sync_enabled()

    def _spin(self, lo: float, hi: float, value: float, suffix: str) -> QDoubleSpinBox:
        s = QDoubleSpinBox()
        s.setRange(lo, hi)
        s.setDecimals(1)
        s.setValue(value)
        s.setSuffix(suffix)
        return s

    # ------------------------------------------------------------------ case
    def set_labels(self, labels: np.ndarray | None, affine: Any = None) -> None:
        """The label map to cut (the plan is kept and re-evaluated)."""
        self.labels = None if labels is None else np.asarray(labels)
        self.affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
        if self.labels is not None and (self.labels >= Label.LIVER).any():
            idx = np.argwhere(self.labels >= Label.LIVER).mean(axis=0)
            self.centre = (np.r_[idx[::-1], 1.0] @ self.affine.T)[:3]
        self._sync_enabled()
        if self.plan is not None:
            self.set_plan(self.plan)

    def _sync_enabled(self) -> None:
        has = self.labels is not None
        for w in (self.enable_button, self.open_button):
            w.setEnabled(has)
        for w in (self.flip_button, self.save_button):
            w.setEnabled(has and self.plan is not None)

    # ------------------------------------------------------------------ plan
    def _toggled(self, on: bool) -> None:
        if self._updating:
            return
        if on:
            self._apply()
        else:
            self.set_plan(None)

    def _schedule(self, *_: Any) -> None:
        if not self._updating and self.enable_button.isChecked():
            self._timer.start()

    def _widgets_plan(self) -> ResectionPlan:
        n = np.array(normal_from_angles(self.azimuth.value(), self.elevation.value()))
        point = self.centre + n * float(self.offset.value())
        sign = -1.0 if self._flipped else 1.0
        return ResectionPlan(tuple(point), tuple(sign * n), min_remnant_percent=self.min_remnant.value())

    #: the resected side is against the widgets' normal
    _flipped = False

    def _apply(self) -> None:
        self._timer.stop()
        if self.labels is None:
            return
        self.set_plan(self._widgets_plan(), from_widgets=True)

    def drag(self, dx: float, dy: float, mode: str) -> None:
        """Shift/Ctrl + drag in the 3D view: move the plane (up = along its normal, 0.5 mm per pixel) or
        turn it (0.5 degree per pixel: left/right the azimuth, up/down the elevation)."""
        if self.plan is None or self.labels is None:
            return
        if mode == "move":
            self.offset.setValue(int(round(self.offset.value() - 0.5 * dy)))
        else:
            self.azimuth.setValue(((self.azimuth.value() + 0.5 * dx + 180.0) % 360.0) - 180.0)
            self.elevation.setValue(max(-90.0, min(90.0, self.elevation.value() - 0.5 * dy)))

    def flip(self) -> None:
        if self.plan is None:
            return
        self._flipped = not self._flipped
        self.set_plan(self.plan.flipped(), from_widgets=True)

    def set_plan(self, plan: ResectionPlan | None, *, from_widgets: bool = False) -> ResectionResult | None:
        """Show ``plan`` (None: remove it) and evaluate it on the current labels."""
        self.plan = plan
        self.result = None
        if plan is not None and not from_widgets:
            self._updating = True
            try:
                az, el = angles_from_normal(plan.normal)
                self._flipped = False
                self.azimuth.setValue(az)
                self.elevation.setValue(el)
                wn = np.array(normal_from_angles(az, el))
                self.offset.setValue(int(round(float(wn @ (np.asarray(plan.point) - self.centre)))))
                self.min_remnant.setValue(plan.min_remnant_percent)
                self.enable_button.setChecked(True)
            finally:
                self._updating = False
        if plan is None:
            self._updating = True
            self.enable_button.setChecked(False)
            self._updating = False
            self.figures.setText("Place a plane to see the future liver remnant.")
            self.warnings.setText("")
            self.table.setRowCount(0)
        elif self.labels is not None:
            self.result = evaluate_plan(self.labels, self.affine, plan)
            self._show(self.result)
        self._sync_enabled()
        self.plan_changed.emit(plan)
        if self.result is not None:
            self.evaluated.emit(self.result)
        return self.result

    def _show(self, r: ResectionResult) -> None:
        self.figures.setText(
            f"Remnant {r.remnant_ml:.1f} mL ({r.remnant_percent:.1f} % of {r.liver_ml:.1f} mL) · "
            f"resected {r.resected_ml:.1f} mL ({100 - r.remnant_percent:.1f} %)"
        )
        self.warnings.setText("⚠ " + "; ".join(r.warnings) if r.warnings else "")
        self.table.setRowCount(len(r.lesions))
        for row, s in enumerate(r.lesions):
            margin = "touches" if s.touches else f"{s.margin_mm:.1f} mm"
            for col, text in enumerate((str(s.lesion_id), s.side, margin)):
                self.table.setItem(row, col, QTableWidgetItem(text))

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        if self.plan is None:
            raise ValueError("no plan to save")
        return save_plan(self.plan, path, result=self.result)

    def open(self, path: str | Path) -> ResectionPlan:
        plan = load_plan(path)
        self.set_plan(plan)
        return plan

    #: where Save/Open look first (set by the studio: beside the case's mask)
    default_path: Path | None = None

    def _dialog(self, *, save: bool) -> None:
        from PySide6.QtWidgets import QFileDialog, QMessageBox

        from liverseg_studio.core.errors import LiversegError

        start = str(self.default_path or "")
        if save:
            path, _ = QFileDialog.getSaveFileName(self, "Save resection plan", start, "Resection plan (*_plan.json)")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Open resection plan", start, "Resection plan (*.json)")
        if not path:
            return
        try:
            self.save(path) if save else self.open(path)
        except (LiversegError, OSError, ValueError) as exc:
            QMessageBox.warning(self, "Resection plan", str(exc))
