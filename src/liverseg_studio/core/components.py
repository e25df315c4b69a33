"""Connected components of a label map, counted slab by slab in bounded memory.

:func:`liver_components` finds the component that step 1 of
:func:`liverseg_studio.core.postprocess.postprocess_labels` keeps (the largest
6-connected component of ``labels >= 1``, preferring components that hold
liver), its bounding box and the component count, without labelling the whole
volume at once: each slab of a few slices is labelled with
``scipy.ndimage.label``, and the pieces are joined across slab boundaries with
a union-find.  Memory is a slab's int32 labels plus a few numbers per
component, however many slices the volume has (``ndimage.label`` on a
512 x 512 x 1000 foreground box needs an int32 volume of up to 1 GB).

Why the choice is the same as ``postprocess_labels``'s: ``ndimage.label``
numbers components in the raster order of their first voxel, and the global
id of a piece (slab offset + local label) grows with that order too, so the
smallest id in a joined component ranks components exactly as labelling the
whole volume would; ties of size go to the first, as ``np.argmax`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from liverseg_studio.core.volume import Label

_FACE_3D = ndimage.generate_binary_structure(3, 1)
#: Slices labelled at once (a 512 x 512 slab of 8 is 8 MB of int32 labels).
DEFAULT_SLAB = 8


@dataclass(frozen=True)
class ComponentSummary:
    """What :func:`liver_components` found."""

    #: Number of 6-connected components of ``labels >= 1``.
    n_components: int
    #: Foreground (``labels >= 1``) voxels in the whole volume.
    foreground_voxels: int
    #: Voxels of the component post-processing keeps.
    kept_voxels: int
    #: Whether the kept component holds liver (label 1).
    kept_has_liver: bool
    #: Bounding box of the kept component: (z0, z1, y0, y1, x0, x1), stops exclusive.
    kept_box: tuple[int, int, int, int, int, int]

    def box(self, shape: tuple[int, ...], margin: int = 0) -> tuple[slice, slice, slice]:
        """The kept component's box as slices, grown by ``margin`` voxels and clipped to ``shape``."""
        z0, z1, y0, y1, x0, x1 = self.kept_box
        lo, hi = (z0, y0, x0), (z1, y1, x1)
        return tuple(  # type: ignore[return-value]
            slice(max(0, a - margin), min(int(n), b + margin)) for a, b, n in zip(lo, hi, shape[:3])
        )


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = [0]

    def add(self, n: int) -> None:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))

    def find(self, a: int) -> int:
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:  # path compression
            parent[a], a = root, parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller id (earlier in raster order) stays the root
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb


def liver_components(labels: np.ndarray, *, slab: int = DEFAULT_SLAB) -> ComponentSummary | None:
    """Components of ``labels >= 1`` (6-connectivity), streamed over z; None when there is no foreground.

    ``labels`` is a (z, y, x) label map (any array-like indexed by slices).
    The kept component is the largest; when the largest holds no liver voxel
    and another component does, the largest of those that do (as
    :func:`~liverseg_studio.core.postprocess.postprocess_labels`).
    """
    shape = tuple(int(s) for s in labels.shape)
    if len(shape) != 3:
        raise ValueError(f"labels must be (z, y, x), got shape {shape}")
    nz = shape[0]
    slab = max(1, int(slab))
    uf = _UnionFind()
    sizes: list[np.ndarray] = []
    liver: list[np.ndarray] = []
    boxes: list[np.ndarray] = []  # per piece: z0, z1, y0, y1, x0, x1
    offset = 0
    prev_last: np.ndarray | None = None  # global ids on the previous slab's last slice
    for z0 in range(0, nz, slab):
        z1 = min(nz, z0 + slab)
        sl = np.asarray(labels[z0:z1])
        lab, n = ndimage.label(sl >= Label.LIVER, structure=_FACE_3D)
        if n == 0:
            prev_last = None
            continue
        uf.add(n)
        sizes.append(np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(np.int64))
        liver.append(np.bincount(lab[sl == Label.LIVER], minlength=n + 1)[1:] > 0)
        b = np.zeros((n, 6), dtype=np.int64)
        for i, box in enumerate(ndimage.find_objects(lab, max_label=n)):
            if box is not None:
                b[i] = (box[0].start + z0, box[0].stop + z0, box[1].start, box[1].stop, box[2].start, box[2].stop)
        boxes.append(b)
        first = lab[0]
        if prev_last is not None:
            touch = (prev_last > 0) & (first > 0)
            if touch.any():
                pairs = np.unique(np.stack([prev_last[touch], first[touch].astype(np.int64) + offset]), axis=1)
                for a, c in pairs.T:
                    uf.union(int(a), int(c))
        last = lab[-1].astype(np.int64)
        prev_last = np.where(last > 0, last + offset, 0)
        offset += n
        del lab, sl
    if offset == 0:
        return None
    size = np.concatenate(sizes)
    has_liver = np.concatenate(liver)
    box = np.concatenate(boxes)
    roots = np.array([uf.find(i) for i in range(1, offset + 1)], dtype=np.int64)
    uniq, comp_of_piece = np.unique(roots, return_inverse=True)  # ascending root = raster order
    n_comp = int(uniq.size)
    comp_size = np.bincount(comp_of_piece, weights=size, minlength=n_comp).astype(np.int64)
    comp_liver = np.bincount(comp_of_piece, weights=has_liver.astype(np.int64), minlength=n_comp) > 0
    chosen = int(np.argmax(comp_size))
    if n_comp > 1 and not comp_liver[chosen] and comp_liver.any():
        chosen = int(np.argmax(np.where(comp_liver, comp_size, 0)))
    mine = box[comp_of_piece == chosen]
    kept_box = (
        int(mine[:, 0].min()),
        int(mine[:, 1].max()),
        int(mine[:, 2].min()),
        int(mine[:, 3].max()),
        int(mine[:, 4].min()),
        int(mine[:, 5].max()),
    )
    return ComponentSummary(
        n_components=n_comp,
        foreground_voxels=int(size.sum()),
        kept_voxels=int(comp_size[chosen]),
        kept_has_liver=bool(comp_liver[chosen]),
        kept_box=kept_box,
    )
