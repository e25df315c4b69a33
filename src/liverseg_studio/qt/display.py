"""Pure display geometry of the slice viewer: window presets, layouts, the
radiological display transform and the label lookup table (no pyqtgraph)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QTransform

from liverseg_studio.core.colours import LABEL_COLOURS
from liverseg_studio.core.volume import Volume

#: Window presets: name -> (width, level) in HU.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "Liver": (150.0, 30.0),
    "Abdomen": (400.0, 40.0),
    "Soft tissue": (350.0, 40.0),
    "Bone": (1800.0, 400.0),
}
DEFAULT_PRESET = "Abdomen"

#: Layout modes of the viewer.
LAYOUTS: dict[str, str] = {
    "three": "Three panels",
    "focus": "Segmentation large + two",
    "overlay": "Segmentation only",
    "anatomy": "Anatomy only",
    "input": "Model input only",
}


# -- pure geometry (tested without a display) -------------------------------------
@dataclass(frozen=True)
class DisplayOrientation:
    """How array columns/rows map onto the screen (a display transform only)."""

    transpose: bool = False
    flip_x: bool = False
    flip_y: bool = False
    #: mm per column and per row (1 when the spacing is unknown)
    col_mm: float = 1.0
    row_mm: float = 1.0
    #: True when the affine told the orientation (radiological display)
    radiological: bool = False

    def qtransform(self, n_rows: int, n_cols: int) -> QTransform:
        """Item (column, row) -> view coordinates, flipped and scaled."""
        sx, sy = self.col_mm, self.row_mm
        if not self.transpose:
            fx = -1.0 if self.flip_x else 1.0
            fy = -1.0 if self.flip_y else 1.0
            dx = sx * n_cols if self.flip_x else 0.0
            dy = sy * n_rows if self.flip_y else 0.0
            return QTransform(fx * sx, 0.0, 0.0, fy * sy, dx, dy)
        # screen x from rows, screen y from columns
        fx = -1.0 if self.flip_x else 1.0
        fy = -1.0 if self.flip_y else 1.0
        dx = sy * n_rows if self.flip_x else 0.0
        dy = sx * n_cols if self.flip_y else 0.0
        return QTransform(0.0, fy * sx, fx * sy, 0.0, dx, dy)


def display_orientation(volume: Volume) -> DisplayOrientation:
    """Radiological display orientation of ``volume``'s axial slices.

    Screen right is the patient's left (RAS ``-x``) and screen down is
    posterior (RAS ``-y``).  Applied only when the spacing is known and the
    in-plane axes are (close to) aligned with the patient's x and y axes;
    otherwise the slices are shown as stored.
    """
    if not volume.spacing_known:
        return DisplayOrientation()
    a = volume.affine[:3, :3]
    col_dir, row_dir = a[:, 0], a[:, 1]
    col_mm, row_mm = float(np.linalg.norm(col_dir)), float(np.linalg.norm(row_dir))
    if col_mm <= 0 or row_mm <= 0:
        return DisplayOrientation()
    c = np.abs(col_dir) / col_mm
    r = np.abs(row_dir) / row_mm
    aligned = 0.7  # cos(~45 deg): dominant axis
    if c[0] >= aligned and r[1] >= aligned:
        return DisplayOrientation(
            transpose=False,
            flip_x=bool(col_dir[0] > 0),
            flip_y=bool(row_dir[1] > 0),
            col_mm=col_mm,
            row_mm=row_mm,
            radiological=True,
        )
    if c[1] >= aligned and r[0] >= aligned:
        return DisplayOrientation(
            transpose=True,
            flip_x=bool(row_dir[0] > 0),
            flip_y=bool(col_dir[1] > 0),
            col_mm=col_mm,
            row_mm=row_mm,
            radiological=True,
        )
    return DisplayOrientation(col_mm=col_mm, row_mm=row_mm)


def label_lut(opacity: float = 1.0, visible: dict[int, bool] | None = None) -> np.ndarray:
    """RGBA (256, 4) uint8 lookup table of the label overlay (0 stays transparent)."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    alpha = int(round(255 * min(1.0, max(0.0, float(opacity)))))
    for label, (r, g, b) in LABEL_COLOURS.items():
        if visible is None or visible.get(int(label), True):
            lut[int(label)] = (r, g, b, alpha)
    return lut


def window_to_levels(width: float, level: float) -> tuple[float, float]:
    return level - width / 2.0, level + width / 2.0


def levels_to_window(lo: float, hi: float) -> tuple[float, float]:
    return hi - lo, (hi + lo) / 2.0
