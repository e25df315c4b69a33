"""3D post-processing of a predicted label map.

What :func:`postprocess_labels` does, in order (all in 3D):

1. **Largest liver component.**  Liver and tumour together (``labels >= 1``)
   are split into connected components (6-connectivity, as nnU-Net's
   ``remove_all_but_the_largest_connected_component`` does for LiTS) and only
   the largest (among those holding any liver voxel) is kept; every other
   island becomes background.
2. **Tumour only in or touching the liver.**  Tumour components
   (26-connectivity) with no liver voxel among their 26 neighbours are removed.
3. **Small components.**  Tumour components smaller than
   ``min_component_mm3`` become liver (they lie inside the kept liver, so
   deleting them would punch holes into it); if the kept liver component
   itself is smaller than the threshold, the result is empty.  When the
   spacing is unknown the threshold is read as a number of voxels.

Speed: the work happens inside the bounding box of the foreground (steps 2-3:
of the kept liver component), the components are counted inside their own
boxes, and whether tumours touch liver is one maximum filter for all of them; a 512 x 512 x 200
prediction with thousands of false-positive islands takes ~2 s on this machine (see
``tests/core/test_postprocess.py`` which prints the measured time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from liverseg_studio.core.volume import Label

#: Default: tumour components below 100 mm^3 (a sphere of ~5.8 mm diameter) are dropped.
DEFAULT_MIN_COMPONENT_MM3 = 100.0

_FACE_3D = ndimage.generate_binary_structure(3, 1)
_FULL_3D = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class PostprocessReport:
    """What post-processing changed (voxel counts)."""

    liver_components: int = 0
    removed_liver_islands: int = 0
    removed_island_voxels: int = 0
    removed_tumours_outside_liver: int = 0
    removed_tumour_voxels_outside_liver: int = 0
    small_tumours_relabelled: int = 0
    small_tumour_voxels_relabelled: int = 0
    removed_small_liver: bool = False

    def to_json(self) -> dict[str, int | bool]:
        from dataclasses import asdict

        return asdict(self)


def _bbox(mask_any_zyx: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box of the non-zero voxels of a (z, y, x) array, without a full-size copy."""
    zs = np.flatnonzero(np.any(mask_any_zyx, axis=(1, 2)))
    if zs.size == 0:
        return None
    z0, z1 = int(zs[0]), int(zs[-1]) + 1
    sub = mask_any_zyx[z0:z1]
    ys = np.flatnonzero(np.any(sub, axis=(0, 2)))
    xs = np.flatnonzero(np.any(sub, axis=(0, 1)))
    return slice(z0, z1), slice(int(ys[0]), int(ys[-1]) + 1), slice(int(xs[0]), int(xs[-1]) + 1)


def _component_sizes(comp: np.ndarray, n: int) -> tuple[np.ndarray, list]:
    """Voxel count of each component 0..n (0 is left 0) and their bounding boxes.

    Counted inside each component's box: ``np.bincount`` would first copy the
    whole int32 label image to int64, several times slower on large volumes.
    """
    boxes = ndimage.find_objects(comp, max_label=n)
    sizes = np.zeros(n + 1, dtype=np.int64)
    for i, b in enumerate(boxes, start=1):
        if b is not None:
            sizes[i] = np.count_nonzero(comp[b] == i)
    return sizes, boxes


def _pad(box: tuple[slice, ...], shape: tuple[int, ...], by: int = 1) -> tuple[slice, ...]:
    return tuple(slice(max(0, b.start - by), min(n, b.stop + by)) for b, n in zip(box, shape))


def postprocess_labels(
    labels: np.ndarray,
    spacing: tuple[float, float, float] | None = None,
    *,
    min_component_mm3: float = DEFAULT_MIN_COMPONENT_MM3,
    keep_largest: bool = True,
    return_report: bool = False,
) -> np.ndarray | tuple[np.ndarray, PostprocessReport]:
    """Clean a (z, y, x) uint8 label map; returns a new array (the input is not modified).

    ``spacing`` is (z, y, x) mm; None means unknown (threshold in voxels).
    With ``keep_largest=False`` step 1 only drops liver components smaller
    than the threshold.  With ``return_report`` a :class:`PostprocessReport`
    is returned as well.
    """
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise ValueError(f"labels must be (z, y, x), got shape {lab.shape}")
    if not min_component_mm3 >= 0:
        raise ValueError(f"min_component_mm3 must be >= 0, got {min_component_mm3}")
    out = np.array(lab, dtype=np.uint8, copy=True)
    vox_mm3 = float(np.prod(spacing)) if spacing is not None else 1.0
    if not vox_mm3 > 0:
        vox_mm3 = 1.0
    min_voxels = min_component_mm3 / vox_mm3
    stats: dict[str, int | bool] = {}

    def _done() -> np.ndarray | tuple[np.ndarray, PostprocessReport]:
        report = PostprocessReport(**stats)  # type: ignore[arg-type]
        return (out, report) if return_report else out

    box = _bbox(out)
    if box is None:
        return _done()
    sub = out[box]  # a view: edits land in ``out``

    # 1. largest component of liver + tumour
    comp, n = ndimage.label(sub >= Label.LIVER, structure=_FACE_3D)
    stats["liver_components"] = int(n)
    if n > 1:
        sizes, boxes = _component_sizes(comp, n)
        if keep_largest:
            largest = int(np.argmax(sizes))
            lbox = boxes[largest - 1]
            if not np.any((sub[lbox] == Label.LIVER) & (comp[lbox] == largest)):
                # prefer components that hold liver: a tumour-only blob is not "the liver"
                with_liver = np.bincount(comp[sub == Label.LIVER], minlength=n + 1) > 0
                if with_liver.any():
                    sizes = np.where(with_liver, sizes, 0)
                    largest = int(np.argmax(sizes))
                    lbox = boxes[largest - 1]
            before = int(np.count_nonzero(sub))
            keep_box = tuple(slice(b.start, b.stop) for b in lbox)
            kept = sub[keep_box] * (comp[keep_box] == largest)
            sub[...] = Label.BACKGROUND
            sub[keep_box] = kept
            stats["removed_liver_islands"] = int(n - 1)
            stats["removed_island_voxels"] = before - int(sizes[largest])
            del kept
        else:
            small = (sizes < min_voxels) & (np.arange(n + 1) > 0)
            if small.any():
                for i in np.flatnonzero(small):
                    b = boxes[i - 1]
                    sub[b][comp[b] == i] = Label.BACKGROUND
                stats["removed_liver_islands"] = int(small.sum())
                stats["removed_island_voxels"] = int(sizes[small].sum())
    del comp

    box2 = _bbox(sub)
    fg_count = 0 if box2 is None else int(np.count_nonzero(sub[box2]))
    if fg_count == 0 or fg_count < min_voxels:
        if fg_count:
            stats["removed_small_liver"] = True
            stats["removed_island_voxels"] = int(stats.get("removed_island_voxels", 0)) + fg_count
            sub[...] = Label.BACKGROUND
        return _done()
    sub = sub[box2]

    # 2. tumour components must touch liver; 3. small tumours become liver
    tumour = sub == Label.TUMOUR
    if not tumour.any():
        return _done()
    tcomp, tn = ndimage.label(tumour, structure=_FULL_3D)
    tsizes, tboxes = _component_sizes(tcomp, tn)
    # A tumour component touches liver iff one of its voxels lies in the liver's
    # 26-neighbourhood: one separable 3x3x3 maximum filter of the liver mask for
    # all components (instead of dilating every component in its own box).
    near_liver = ndimage.maximum_filter((sub == Label.LIVER).view(np.uint8), size=3, mode="constant", cval=0)
    touching = np.bincount(tcomp[(near_liver != 0) & tumour], minlength=tn + 1) > 0
    del near_liver
    action = np.full(tn + 1, int(Label.TUMOUR), dtype=np.uint8)  # new label per tumour component
    removed = relabelled = 0
    for i, b in enumerate(tboxes, start=1):
        if b is None:
            continue
        if not touching[i]:
            action[i] = Label.BACKGROUND
            removed += 1
            stats["removed_tumour_voxels_outside_liver"] = int(
                stats.get("removed_tumour_voxels_outside_liver", 0)
            ) + int(tsizes[i])
        elif tsizes[i] < min_voxels:
            action[i] = Label.LIVER
            relabelled += 1
            stats["small_tumour_voxels_relabelled"] = int(stats.get("small_tumour_voxels_relabelled", 0)) + int(
                tsizes[i]
            )
    if removed or relabelled:
        np.copyto(sub, action[tcomp], where=tumour)
    stats["removed_tumours_outside_liver"] = removed
    stats["small_tumours_relabelled"] = relabelled
    return _done()
