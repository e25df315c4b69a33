"""Helpers of the editing tests: an anisotropic phantom on disk and real mouse drags on a panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from helpers.phantom import make_phantom, write_nifti

#: (z, y, x) mm: rows 0.6 mm, columns 1.2 mm (a brush of r mm spans twice as many rows as columns)
ANISO_SPACING = (2.5, 0.6, 1.2)


def aniso_phantom(tmp_path: Path):
    """An anisotropic phantom (8 x 60 x 40) as NIfTI; returns (path, phantom)."""
    ph = make_phantom((8, 60, 40), ANISO_SPACING)
    path = write_nifti(tmp_path / "aniso.nii.gz", ph.hu, ph.affine, dtype="int16")
    return path, ph


def panel_point(viewer: Any, y: float, x: float, panel: str = "overlay") -> tuple[Any, QPoint]:
    """The viewport widget of ``panel`` and the point on it over the centre of voxel (y, x)."""
    p = {"overlay": viewer.overlay_panel, "anatomy": viewer.anatomy_panel, "input": viewer.input_panel}[panel]
    item = {"overlay": viewer.seg_grey_item, "anatomy": viewer.grey_item, "input": viewer.rgb_item}[panel]
    scene = item.mapToScene(QPointF(x + 0.5, y + 0.5))
    return p.graphics.viewport(), p.graphics.mapFromScene(scene)


def drag(viewer: Any, points_yx: Sequence[tuple[float, float]], panel: str = "overlay") -> None:
    """Press at the first voxel, move the mouse through the others (as a hand would, under
    100 moves a second), release at the last."""
    QTest.qWait(50)  # let a pending fit of the views (a 0 ms timer after a layout change) run first
    vp, p0 = panel_point(viewer, *points_yx[0], panel=panel)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p0)
    for y, x in points_yx[1:]:
        _, p = panel_point(viewer, y, x, panel=panel)
        QTest.mouseMove(vp, p)
        QTest.qWait(15)  # pyqtgraph drops moves closer than 1/mouseRateLimit (100 Hz) apart
    _, last = panel_point(viewer, *points_yx[-1], panel=panel)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, last)


def click(viewer: Any, y: float, x: float, panel: str = "overlay") -> None:
    QTest.qWait(50)  # as in drag: the views' range settles before the point is mapped
    vp, p = panel_point(viewer, y, x, panel=panel)
    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)


def horizontal_capsule(
    shape_yx: tuple[int, int], y0: int, x0: int, x1: int, r: float, sy: float, sx: float
) -> np.ndarray:
    """Voxels whose centre is within r mm of the segment (y0, x0)-(y0, x1), written out by hand."""
    ys, xs = np.mgrid[0 : shape_yx[0], 0 : shape_yx[1]]
    dy = (ys - y0) * sy
    dx = np.where(xs < x0, (xs - x0) * sx, np.where(xs > x1, (xs - x1) * sx, 0.0))
    return dy**2 + dx**2 <= r * r + 1e-9
