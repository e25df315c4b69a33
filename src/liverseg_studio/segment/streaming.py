"""Post-processing of a whole volume's labels in bounded memory (used by ``segment_volume``).

:func:`postprocess_in_place` gives, bit for bit, the labels and the report of
:func:`liverseg_studio.core.postprocess.postprocess_labels`, while holding only
the uint8 label volume itself plus slab-sized temporaries (a few slices of
int32 labels), however large the volume or its foreground:

1. the components of ``labels >= 1`` (6-connectivity) are counted slab by slab
   (:func:`liverseg_studio.core.components.liver_components`) and the one
   post-processing keeps is chosen as ``postprocess_labels`` chooses it;
2. a second pass over the same slabs keeps only that component (or clears a
   liver smaller than the threshold);
3. the tumour components (26-connectivity) of the result are counted slab by
   slab, each flagged when a liver voxel lies among its 26 neighbours
   (the slab's liver dilated with a one-slice halo);
4. a last pass removes tumours that touch no liver and turns tumours smaller
   than the threshold into liver.

The labels are rewritten in place; each slab that changes keeps a
zlib-compressed copy of its original, so the labels *before* post-processing
stay available as a lazy array (:class:`RawLabels`) without a second
full-size copy (a 512 x 512 x 1000 prediction whose islands are all removed
keeps a few MB).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from scipy import ndimage

from liverseg_studio.core.components import FULL_3D, liver_components, stream_components
from liverseg_studio.core.postprocess import DEFAULT_MIN_COMPONENT_MM3, PostprocessReport
from liverseg_studio.core.slices import LazyArray, SliceSource
from liverseg_studio.core.volume import Label


class RawLabels(SliceSource):
    """The labels before post-processing: the final labels, with the slabs that changed
    restored from zlib-compressed copies of their originals (label maps compress ~50:1)."""

    def __init__(self, labels: np.ndarray, originals: dict[int, tuple[int, bytes]]) -> None:
        super().__init__()
        self._labels = labels
        self._originals = originals  # z0 -> (slices, zlib of the original uint8 slab)
        self.shape = tuple(int(s) for s in labels.shape)
        self.dtype = np.dtype(np.uint8)
        self.description = f"labels before post-processing ({len(originals)} slabs differ)"

    @property
    def stored_bytes(self) -> int:
        return sum(len(b) for _, b in self._originals.values())

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        out = np.array(self._labels[start:stop], dtype=np.uint8, copy=True)
        for z0, (n, packed) in self._originals.items():
            lo, hi = max(start, z0), min(stop, z0 + n)
            if lo < hi:
                orig = np.frombuffer(zlib.decompress(packed), dtype=np.uint8).reshape(n, *self.shape[1:])
                out[lo - start : hi - start] = orig[lo - z0 : hi - z0]
        return out


class _Changes:
    """Rewrites slabs of ``labels`` in place, keeping a compressed copy of each slab's original."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self.originals: dict[int, tuple[int, bytes]] = {}

    def apply(self, z0: int, new: np.ndarray) -> None:
        cur = self.labels[z0 : z0 + new.shape[0]]
        if np.array_equal(cur, new):
            return
        if z0 not in self.originals:  # the first change of this slab: its original is the raw prediction
            self.originals[z0] = (new.shape[0], zlib.compress(np.ascontiguousarray(cur).tobytes(), 1))
        cur[...] = new

    def raw(self) -> np.ndarray | LazyArray:
        if not self.originals:
            return self.labels
        return LazyArray(RawLabels(self.labels, self.originals))


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
    vox_mm3 = float(np.prod(spacing)) if spacing is not None else 1.0
    if not vox_mm3 > 0:
        vox_mm3 = 1.0
    min_voxels = min_component_mm3 / vox_mm3
    nz = labels.shape[0]
    changes = _Changes(labels)
    stats: dict[str, Any] = {}

    # 1. the component to keep
    summary = liver_components(labels)
    if summary is None:  # nothing to clean
        return labels, PostprocessReport()
    n = summary.n_components
    stats["liver_components"] = n
    if n > 1:
        stats["removed_liver_islands"] = n - 1
        stats["removed_island_voxels"] = summary.foreground_voxels - summary.kept_voxels
    clear_all = summary.kept_voxels < min_voxels
    if clear_all:
        stats["removed_small_liver"] = True
        stats["removed_island_voxels"] = int(stats.get("removed_island_voxels", 0)) + summary.kept_voxels

    # 2. keep it alone (or nothing)
    comps = summary.components
    assert comps is not None
    if clear_all or n > 1:
        for z0 in range(0, nz, comps.slab):
            if z0 not in comps.offsets:
                continue  # no foreground in this slab
            cur = labels[z0 : z0 + comps.slab]
            if clear_all:
                new = np.zeros_like(cur)
            else:
                new = np.where(comps.slab_components(cur, z0) == summary.kept, cur, np.uint8(0)).astype(np.uint8)
            changes.apply(z0, new)
    if clear_all:
        return changes.raw(), PostprocessReport(**stats)

    # 3. tumour components, flagged when liver lies among their 26 neighbours
    def near_liver(lab: Any, z0: int, z1: int) -> np.ndarray:
        # the liver dilated by one voxel, only around this slab's tumour (in-plane box + 1)
        out = np.zeros((z1 - z0, *lab.shape[1:]), dtype=bool)
        tum = np.asarray(lab[z0:z1]) == Label.TUMOUR
        ys, xs = np.flatnonzero(tum.any(axis=(0, 2))), np.flatnonzero(tum.any(axis=(0, 1)))
        if ys.size == 0:
            return out
        y0, y1 = max(0, int(ys[0]) - 1), int(ys[-1]) + 2
        x0, x1 = max(0, int(xs[0]) - 1), int(xs[-1]) + 2
        lo, hi = max(0, z0 - 1), min(nz, z1 + 1)
        near = ndimage.binary_dilation(np.asarray(lab[lo:hi, y0:y1, x0:x1]) == Label.LIVER, structure=FULL_3D)
        out[:, y0:y1, x0:x1] = near[z0 - lo : z1 - lo]
        return out

    tumours = stream_components(labels, lambda sl: sl == Label.TUMOUR, full=True, flag=near_liver)
    if tumours.n == 0:
        return changes.raw(), PostprocessReport(**stats)
    outside = ~tumours.flags
    small = tumours.flags & (tumours.sizes < min_voxels)
    stats["removed_tumours_outside_liver"] = int(outside.sum())
    if outside.any():
        stats["removed_tumour_voxels_outside_liver"] = int(tumours.sizes[outside].sum())
    stats["small_tumours_relabelled"] = int(small.sum())
    if small.any():
        stats["small_tumour_voxels_relabelled"] = int(tumours.sizes[small].sum())

    # 4. remove them, or make them liver
    if outside.any() or small.any():
        action = np.full(tumours.n, int(Label.TUMOUR), dtype=np.uint8)
        action[outside] = Label.BACKGROUND
        action[small] = Label.LIVER
        for z0 in range(0, nz, tumours.slab):
            if z0 not in tumours.offsets:
                continue
            cur = labels[z0 : z0 + tumours.slab]
            ids = tumours.slab_components(cur, z0)
            hit = ids >= 0
            new = cur.copy()
            new[hit] = action[ids[hit]]
            changes.apply(z0, new)
    return changes.raw(), PostprocessReport(**stats)
