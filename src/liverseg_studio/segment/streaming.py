"""Post-processing of a whole volume's labels in bounded memory (used by ``segment_volume``).

:func:`postprocess_in_place` gives, bit for bit, the labels and the report of
:func:`liverseg_studio.core.postprocess.postprocess_labels`, while holding
only the uint8 label volume itself plus crop- and slab-sized temporaries:

1. :func:`liverseg_studio.core.components.liver_components` finds the liver
   component that post-processing keeps, slab by slab (no whole-volume int32
   labelling);
2. ``postprocess_labels`` runs on the crop to that component's box (plus a
   margin).  Inside the crop it decides exactly as on the whole volume: the kept
   component lies wholly inside, and any component the crop cuts is smaller
   than it was, so it cannot win a size comparison it lost before (ties keep
   their raster order); outside the crop everything becomes background;
3. the labels are overwritten with the result slab by slab, and the voxels that
   changed are recorded (flat index, old value) so that the labels *before*
   post-processing stay available as a lazy array (:class:`RawLabels`) without
   a second full-size copy.  The counts of the report that depend on the whole
   volume (components, removed island voxels) come from step 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from liverseg_studio.core.components import liver_components
from liverseg_studio.core.postprocess import DEFAULT_MIN_COMPONENT_MM3, PostprocessReport, postprocess_labels
from liverseg_studio.core.slices import LazyArray, SliceSource

#: Slices compared and rewritten at once in step 3.
SLAB = 16
#: Voxels around the kept component's box that the crop includes.
CROP_MARGIN = 1


class RawLabels(SliceSource):
    """The labels before post-processing: the final labels with the changed voxels put back."""

    def __init__(self, labels: np.ndarray, changed: np.ndarray, old_values: np.ndarray) -> None:
        super().__init__()
        self._labels = labels
        self._changed = changed  # sorted flat indices (int64)
        self._old = old_values  # uint8
        self.shape = tuple(int(s) for s in labels.shape)
        self.dtype = np.dtype(np.uint8)
        self.description = f"labels before post-processing ({changed.size} voxels differ)"

    @property
    def n_changed(self) -> int:
        return int(self._changed.size)

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        out = np.array(self._labels[start:stop], dtype=np.uint8, copy=True)
        per = int(np.prod(self.shape[1:]))
        lo, hi = np.searchsorted(self._changed, [start * per, stop * per])
        out.reshape(-1)[self._changed[lo:hi] - start * per] = self._old[lo:hi]
        return out


def postprocess_in_place(
    labels: np.ndarray,
    spacing: tuple[float, float, float] | None,
    *,
    min_component_mm3: float = DEFAULT_MIN_COMPONENT_MM3,
) -> tuple[np.ndarray | LazyArray, PostprocessReport]:
    """Post-process the writeable uint8 (z, y, x) ``labels`` in place (see the module docstring).

    Returns ``(raw, report)``: ``raw`` is the labels before post-processing (a
    :class:`~liverseg_studio.core.slices.LazyArray` over the changes, or
    ``labels`` itself when nothing changed) and ``report`` the
    :class:`~liverseg_studio.core.postprocess.PostprocessReport`.
    """
    if labels.ndim != 3 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be uint8 (z, y, x), got {labels.dtype} {labels.shape}")
    if not min_component_mm3 >= 0:
        raise ValueError(f"min_component_mm3 must be >= 0, got {min_component_mm3}")
    summary = liver_components(labels)
    if summary is None:  # nothing to clean
        return labels, PostprocessReport()
    box = summary.box(labels.shape, margin=CROP_MARGIN)
    crop = labels[box]
    crop_fg = int(np.count_nonzero(crop))
    crop_out, report = postprocess_labels(  # type: ignore[misc]
        crop, spacing, min_component_mm3=min_component_mm3, return_report=True
    )
    n = summary.n_components
    report = dataclasses.replace(
        report,
        liver_components=n,
        removed_liver_islands=n - 1 if n > 1 else 0,
        removed_island_voxels=report.removed_island_voxels + summary.foreground_voxels - crop_fg,
    )
    nz, ny, nx = labels.shape
    per = ny * nx
    zb, yb, xb = box
    changed: list[np.ndarray] = []
    old: list[np.ndarray] = []
    for a in range(0, nz, SLAB):
        b = min(nz, a + SLAB)
        cur = labels[a:b]
        za, zz = max(a, zb.start), min(b, zb.stop)
        if za >= zz and not cur.any():
            continue
        new = np.zeros_like(cur)
        if za < zz:
            new[za - a : zz - a, yb, xb] = crop_out[za - zb.start : zz - zb.start]
        diff = np.flatnonzero(cur != new)
        if diff.size:
            changed.append(diff + a * per)
            old.append(cur.reshape(-1)[diff])
            cur[...] = new
    if not changed:
        return labels, report
    raw = LazyArray(RawLabels(labels, np.concatenate(changed), np.concatenate(old)))
    return raw, report
