"""The resected liver in the 2D segmentation panel (issue 25): a second colour over the liver overlay.

An ``ImageItem`` of the studio's own, placed over the viewer's label overlay with the same
transform: on the shown slice, the liver voxels (label 1) on the resected side of the plan are
painted in :data:`RESECTED_RGB`; the remnant keeps the liver colour.  It follows the slice
(``SliceViewer.slice_changed``), the plan and the labels; the viewer itself is not changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liverseg_studio.core.resection import ResectionPlan, _slice_distances
from liverseg_studio.core.volume import Label

#: the resected liver in 2D, as in 3D (qt.view3d.panel.RESECTED_RGBA)
RESECTED_RGB = (217, 89, 217)


class ResectedOverlay:
    """See the module docstring."""

    def __init__(self, viewer: Any) -> None:
        import pyqtgraph as pg

        self.viewer = viewer
        self.item = pg.ImageItem()
        self.item.setZValue(11)  # over the label overlay (10)
        viewer.overlay_panel.view.addItem(self.item)
        self.labels: np.ndarray | None = None
        self.affine = np.eye(4)
        self.plan: ResectionPlan | None = None
        viewer.slice_changed.connect(lambda _z: self.update())

    def set_state(self, labels: np.ndarray | None, affine: Any, plan: ResectionPlan | None) -> None:
        self.labels = None if labels is None else np.asarray(labels)
        self.affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
        self.plan = plan
        self.update()

    def slice_mask(self, z: int) -> np.ndarray:
        """Bool (y, x): the resected liver on slice ``z``."""
        assert self.labels is not None and self.plan is not None
        return (self.labels[z] == Label.LIVER) & (_slice_distances(self.plan, self.affine, z, self.labels.shape[1:]) > 0)

    def update(self) -> None:
        z = self.viewer.slice_index
        if self.labels is None or self.plan is None or not 0 <= z < self.labels.shape[0]:
            self.item.clear()
            return
        cut = self.slice_mask(z)
        rgba = np.zeros((*cut.shape, 4), dtype=np.uint8)
        alpha = int(round(255 * min(1.0, max(0.0, float(getattr(self.viewer, "opacity", 0.45))))))
        rgba[cut] = (*RESECTED_RGB, alpha)
        self.item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.item.setTransform(self.viewer.label_item.transform())
