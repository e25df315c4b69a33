"""Connected components of a label map, counted slab by slab in bounded memory.

:func:`stream_components` labels a volume a slab of a few slices at a time with
``scipy.ndimage.label`` and joins the pieces across slab boundaries with a
union-find.  Memory is a slab's int32 labels plus a few numbers per component,
however many slices the volume has (``ndimage.label`` on a 512 x 512 x 1000
volume needs a 1 GB int32 array, ``np.bincount`` of it 2 GB more).

Components are numbered as ``ndimage.label`` numbers them on the whole volume:
in the raster order of their first voxel.  (``ndimage.label`` numbers a slab's
pieces in that order, and a piece's global id, slab offset + local label,
grows with it too; a joined component takes the smallest id of its pieces.)
Ties of size therefore go to the same component as ``np.argmax`` over a
whole-volume labelling.

:func:`liver_components` uses it to find the component that step 1 of
:func:`liverseg_studio.core.postprocess.postprocess_labels` keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from liverseg_studio.core.volume import Label

FACE_3D = ndimage.generate_binary_structure(3, 1)
FULL_3D = np.ones((3, 3, 3), dtype=bool)
#: Slices labelled at once (a 512 x 512 slab of 8 is 8 MB of int32 labels).
DEFAULT_SLAB = 8

#: ``select(slab) -> bool mask`` of the voxels whose components are counted.
SelectFn = Callable[[np.ndarray], np.ndarray]
#: ``flag(labels, z0, z1) -> bool mask`` (slab-shaped) of voxels that flag their component.
FlagFn = Callable[[Any, int, int], np.ndarray]


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


def _shift_pairs(prev: np.ndarray, cur: np.ndarray, full: bool) -> np.ndarray:
    """(2, k) unique pairs of ids that touch across the slab boundary (prev slice -> next slice)."""
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)] if full else [(0, 0)]
    h, w = prev.shape
    found = []
    for dy, dx in shifts:
        a = prev[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
        b = cur[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
        touch = (a > 0) & (b > 0)
        if touch.any():  # one int64 key per pair (ids < 2**31): 1-D unique is fast
            found.append(np.unique((a[touch] << 32) | b[touch]))
    if not found:
        return np.zeros((2, 0), dtype=np.int64)
    keys = np.unique(np.concatenate(found))
    return np.stack([keys >> 32, keys & 0xFFFFFFFF])


@dataclass
class Components:
    """Components of a streamed labelling, in the raster order of their first voxel."""

    n: int
    #: Voxels per component (int64).
    sizes: np.ndarray
    #: Whether any voxel of the component was flagged (``flag``), per component.
    flags: np.ndarray
    #: (n, 6): z0, z1, y0, y1, x0, x1 (stops exclusive) per component.
    boxes: np.ndarray
    slab: int
    full: bool
    select: SelectFn
    #: piece id (offset + local label) -> component index; index 0 unused.
    piece_component: np.ndarray = field(repr=False)
    #: z0 of each slab -> its piece id offset.
    offsets: dict[int, int] = field(repr=False)

    def slab_components(self, slab_labels: np.ndarray, z0: int) -> np.ndarray:
        """Component index per voxel of the slab starting at ``z0`` (-1: not selected).

        ``slab_labels`` must hold the values the components were counted on.
        """
        lab, _ = ndimage.label(self.select(slab_labels), structure=FULL_3D if self.full else FACE_3D)
        out = np.full(lab.shape, -1, dtype=np.int32)
        fg = lab > 0
        out[fg] = self.piece_component[lab[fg].astype(np.int64) + self.offsets.get(z0, 0)]
        return out


def stream_components(
    labels: Any,
    select: SelectFn,
    *,
    full: bool = False,
    flag: FlagFn | None = None,
    slab: int = DEFAULT_SLAB,
) -> Components:
    """Components of ``select(labels)`` (6-connectivity, or 26 with ``full``), streamed over z.

    ``labels`` is a (z, y, x) array-like indexed by slices.  ``flag(labels,
    z0, z1)`` (optional) marks voxels of the slab; a component is flagged when
    any of its voxels is.
    """
    shape = tuple(int(s) for s in labels.shape)
    if len(shape) != 3:
        raise ValueError(f"labels must be (z, y, x), got shape {shape}")
    nz = shape[0]
    slab = max(1, int(slab))
    structure = FULL_3D if full else FACE_3D
    uf = _UnionFind()
    sizes: list[np.ndarray] = []
    flags: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    offsets: dict[int, int] = {}
    offset = 0
    prev_last: np.ndarray | None = None  # piece ids on the previous slab's last slice
    for z0 in range(0, nz, slab):
        z1 = min(nz, z0 + slab)
        sl = np.asarray(labels[z0:z1])
        lab, n = ndimage.label(select(sl), structure=structure)
        if n == 0:
            prev_last = None
            continue
        offsets[z0] = offset
        uf.add(n)
        boxes_local = ndimage.find_objects(lab, max_label=n)
        cnt = np.zeros(n, dtype=np.int64)
        b = np.zeros((n, 6), dtype=np.int64)
        for i, box in enumerate(boxes_local):
            if box is not None:
                cnt[i] = np.count_nonzero(lab[box] == i + 1)
                b[i] = (box[0].start + z0, box[0].stop + z0, box[1].start, box[1].stop, box[2].start, box[2].stop)
        sizes.append(cnt)
        boxes.append(b)
        fl = np.zeros(n, dtype=bool)
        if flag is not None:
            hit = lab[flag(labels, z0, z1) & (lab > 0)]
            if hit.size:
                fl[np.unique(hit) - 1] = True
        flags.append(fl)
        if prev_last is not None:
            first = np.where(lab[0] > 0, lab[0].astype(np.int64) + offset, 0)
            for a, c in _shift_pairs(prev_last, first, full).T:
                uf.union(int(a), int(c))
        last = lab[-1].astype(np.int64)
        prev_last = np.where(last > 0, last + offset, 0)
        offset += n
        del lab, sl
    if offset == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Components(0, empty, empty.astype(bool), np.zeros((0, 6), np.int64), slab, full, select,
                          np.full(1, -1, dtype=np.int32), offsets)
    size = np.concatenate(sizes)
    flag_arr = np.concatenate(flags)
    box = np.concatenate(boxes)
    roots = np.array([uf.find(i) for i in range(1, offset + 1)], dtype=np.int64)
    uniq, comp_of_piece = np.unique(roots, return_inverse=True)  # ascending root = raster order
    n_comp = int(uniq.size)
    comp_size = np.bincount(comp_of_piece, weights=size, minlength=n_comp).astype(np.int64)
    comp_flag = np.bincount(comp_of_piece, weights=flag_arr.astype(np.int64), minlength=n_comp) > 0
    comp_box = np.empty((n_comp, 6), dtype=np.int64)
    for col, fn in ((0, np.minimum), (1, np.maximum), (2, np.minimum), (3, np.maximum), (4, np.minimum), (5, np.maximum)):
        init = np.iinfo(np.int64).max if fn is np.minimum else -1
        acc = np.full(n_comp, init, dtype=np.int64)
        fn.at(acc, comp_of_piece, box[:, col])
        comp_box[:, col] = acc
    piece_component = np.concatenate([[-1], comp_of_piece]).astype(np.int32)
    return Components(n_comp, comp_size, comp_flag, comp_box, slab, full, select, piece_component, offsets)


@dataclass(frozen=True)
class ComponentSummary:
    """What :func:`liver_components` found."""

    #: Number of 6-connected components of ``labels >= 1``.
    n_components: int
    #: Foreground (``labels >= 1``) voxels in the whole volume.
    foreground_voxels: int
    #: Index (raster order) of the component post-processing keeps.
    kept: int
    #: Voxels of the kept component.
    kept_voxels: int
    #: Whether the kept component holds liver (label 1).
    kept_has_liver: bool
    #: Bounding box of the kept component: (z0, z1, y0, y1, x0, x1), stops exclusive.
    kept_box: tuple[int, int, int, int, int, int]
    #: The streamed labelling (for a second pass with ``slab_components``).
    components: Components | None = field(default=None, repr=False, compare=False)

    def box(self, shape: tuple[int, ...], margin: int = 0) -> tuple[slice, slice, slice]:
        """The kept component's box as slices, grown by ``margin`` voxels and clipped to ``shape``."""
        z0, z1, y0, y1, x0, x1 = self.kept_box
        lo, hi = (z0, y0, x0), (z1, y1, x1)
        return tuple(  # type: ignore[return-value]
            slice(max(0, a - margin), min(int(n), b + margin)) for a, b, n in zip(lo, hi, shape[:3])
        )


def _foreground(sl: np.ndarray) -> np.ndarray:
    return sl >= Label.LIVER


def liver_components(labels: Any, *, slab: int = DEFAULT_SLAB) -> ComponentSummary | None:
    """Components of ``labels >= 1`` (6-connectivity), streamed over z; None when there is no foreground.

    The kept component is the largest; when the largest holds no liver voxel
    and another component does, the largest of those that do (as
    :func:`~liverseg_studio.core.postprocess.postprocess_labels`).
    """

    def has_liver(lab: Any, z0: int, z1: int) -> np.ndarray:
        return np.asarray(lab[z0:z1]) == Label.LIVER

    comps = stream_components(labels, _foreground, full=False, flag=has_liver, slab=slab)
    if comps.n == 0:
        return None
    chosen = int(np.argmax(comps.sizes))
    if comps.n > 1 and not comps.flags[chosen] and comps.flags.any():
        chosen = int(np.argmax(np.where(comps.flags, comps.sizes, 0)))
    return ComponentSummary(
        n_components=comps.n,
        foreground_voxels=int(comps.sizes.sum()),
        kept=chosen,
        kept_voxels=int(comps.sizes[chosen]),
        kept_has_liver=bool(comps.flags[chosen]),
        kept_box=tuple(int(v) for v in comps.boxes[chosen]),  # type: ignore[arg-type]
        components=comps,
    )
