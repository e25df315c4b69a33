"""Editing a label map by hand: brush, eraser, flood fill, lasso, undo (no Qt).

The studio's editing tools (:mod:`liverseg_studio.qt.editing`) turn mouse
events into calls of these functions; everything that decides *which* voxels
change lives here and is tested without a display.

Conventions
-----------
* Label maps are uint8 ``(z, y, x)`` with :class:`~liverseg_studio.core.volume.Label`
  values.  Liver is ``labels >= 1`` (tumour counts as liver, as LiTS scores it),
  so painting tumour anywhere makes that voxel liver too: tumour stays inside
  the liver by construction.
* Positions are voxel *indices* ``(y, x)`` or ``(z, y, x)``; a voxel's centre
  is at its integer index.  Spacing is in mm, in the same axis order.
* A brush of radius ``r`` mm dragged from ``a`` to ``b`` covers every voxel
  whose centre lies within ``r`` mm of the segment ``a``–``b`` (a capsule; a
  disc when ``a == b``, a sphere-swept segment in 3D), distances measured in
  mm, so on anisotropic pixels the brush stays round on the patient.
* Applying a region with a label (:func:`apply_label`):

  ============  =====================================================
  paint liver   background -> liver (tumour is liver already: kept)
  paint tumour  anything -> tumour (so liver is added under it)
  erase liver   anything -> background (erasing liver erases tumour)
  erase tumour  tumour -> liver (the liver stays)
  ============  =====================================================

Undo stores only what changed: each :class:`EditStep` holds, per changed
slice, the bounding box of the change before and after the edit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage

from liverseg_studio.core.volume import Label

#: Undo history kept by default (the studio promises at least 50 steps).
DEFAULT_UNDO_STEPS = 100
_EPS = 1e-9


# -- regions ------------------------------------------------------------------------
def capsule_region(
    a: Sequence[float],
    b: Sequence[float],
    radius_mm: float,
    spacing: Sequence[float],
    shape: Sequence[int],
) -> tuple[tuple[slice, ...], np.ndarray]:
    """Voxels whose centre is within ``radius_mm`` of the segment ``a``–``b``.

    Works in 2D (``(y, x)``) and 3D (``(z, y, x)``).  Returns ``(box, mask)``:
    ``box`` is a tuple of slices into an array of ``shape`` and ``mask`` a
    boolean array of the box's shape.  The voxels of ``a`` and ``b`` are always
    included (a radius below half a pixel still paints the clicked pixel).
    Parts outside ``shape`` are clipped (the box may then be empty).
    """
    pa = np.asarray(a, dtype=np.float64)
    pb = np.asarray(b, dtype=np.float64)
    sp = np.asarray(spacing, dtype=np.float64)
    nd = len(shape)
    if pa.shape != (nd,) or pb.shape != (nd,) or sp.shape != (nd,):
        raise ValueError("a, b, spacing and shape must have the same number of axes")
    if not np.all(sp > 0):
        raise ValueError(f"spacing must be positive, got {tuple(sp)}")
    r = max(float(radius_mm), 0.0)
    reach = np.ceil(r / sp).astype(int)
    lo = np.maximum(np.floor(np.minimum(pa, pb)).astype(int) - reach, 0)
    hi = np.minimum(np.ceil(np.maximum(pa, pb)).astype(int) + reach + 1, np.asarray(shape, dtype=int))
    box = tuple(slice(int(lo[i]), int(max(hi[i], lo[i]))) for i in range(nd))
    if any(s.stop <= s.start for s in box):
        return box, np.zeros(tuple(max(0, s.stop - s.start) for s in box), dtype=bool)
    grids = np.ogrid[box]
    # vectors from a to each voxel centre, in mm (broadcast open grids)
    rel = [(grids[i] - pa[i]) * sp[i] for i in range(nd)]
    seg = (pb - pa) * sp
    seg_len2 = float(np.dot(seg, seg))
    if seg_len2 > 0:
        t = sum(rel[i] * seg[i] for i in range(nd)) / seg_len2
        t = np.clip(t, 0.0, 1.0)
        d2 = sum((rel[i] - t * seg[i]) ** 2 for i in range(nd))
    else:
        d2 = sum(rel[i] ** 2 for i in range(nd))
    mask = np.asarray(d2 <= r * r + _EPS)
    mask = np.broadcast_to(mask, tuple(s.stop - s.start for s in box)).copy()
    for p in (pa, pb):  # the clicked voxels themselves
        idx = np.rint(p).astype(int) - lo
        if all(0 <= idx[i] < mask.shape[i] for i in range(nd)):
            mask[tuple(idx)] = True
    return box, mask


def disc_offsets(radius_mm: float, spacing_yx: Sequence[float]) -> np.ndarray:
    """``(n, 2)`` integer (dy, dx) offsets of a brush disc of ``radius_mm`` (for cursors and tests)."""
    sy, sx = (float(s) for s in spacing_yx)
    ry, rx = int(math.ceil(radius_mm / sy)), int(math.ceil(radius_mm / sx))
    _, mask = capsule_region((ry, rx), (ry, rx), radius_mm, (sy, sx), (2 * ry + 1, 2 * rx + 1))
    return np.argwhere(mask) - np.array([ry, rx])


def flood_region(
    values: np.ndarray,
    seed: Sequence[int],
    lo: float,
    hi: float,
    *,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """The connected region around ``seed`` whose values lie in ``[lo, hi]``.

    ``values`` is a 2D slice (or a 3D block) of HU; connectivity is by faces
    (4-connected in 2D, 6 in 3D), so a fill does not leak through corners.
    ``within`` optionally restricts the candidates (a boolean mask).  Returns a
    boolean mask of ``values``' shape, empty when the seed itself is outside
    the range.
    """
    v = np.asarray(values)
    seed_t = tuple(int(s) for s in seed)
    inside = (v >= lo) & (v <= hi)
    if within is not None:
        inside &= np.asarray(within, dtype=bool)
    if not inside[seed_t]:
        return np.zeros(v.shape, dtype=bool)
    comp, _n = ndimage.label(inside)  # default structure: face connectivity
    return comp == comp[seed_t]


def polygon_region(
    vertices_yx: Sequence[Sequence[float]] | np.ndarray, shape_yx: Sequence[int]
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Voxels whose centre lies inside the closed polygon ``vertices_yx`` (even-odd rule).

    Vertices are (y, x) in index coordinates (a voxel centre is at its
    integer index).  Returns ``(box, mask)`` like :func:`capsule_region`.
    """
    pts = np.asarray(vertices_yx, dtype=np.float64).reshape(-1, 2)
    ny, nx = (int(s) for s in shape_yx)
    if len(pts) < 3:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), dtype=bool)
    y0 = max(int(math.ceil(pts[:, 0].min())), 0)
    y1 = min(int(math.floor(pts[:, 0].max())) + 1, ny)
    x0 = max(int(math.ceil(pts[:, 1].min())), 0)
    x1 = min(int(math.floor(pts[:, 1].max())) + 1, nx)
    box = (slice(y0, max(y0, y1)), slice(x0, max(x0, x1)))
    mask = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), dtype=bool)
    if mask.size == 0:
        return box, mask
    ya, xa = pts[:, 0], pts[:, 1]
    yb, xb = np.roll(ya, -1), np.roll(xa, -1)
    rows = np.arange(y0, y1, dtype=np.float64)[:, None]  # (rows, 1)
    # edges crossing each row's centre line (half-open rule: no double counting at vertices)
    crosses = (ya[None, :] > rows) != (yb[None, :] > rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = xa[None, :] + (rows - ya[None, :]) * (xb - xa)[None, :] / (yb - ya)[None, :]
    xi = np.where(crosses, xi, np.inf)
    xi.sort(axis=1)
    cols = np.arange(x0, x1, dtype=np.float64)
    for r in range(mask.shape[0]):
        row = xi[r]
        n = int(np.count_nonzero(np.isfinite(row)))
        if n < 2:
            continue
        left = np.searchsorted(row[:n], cols, side="right")  # crossings left of (or at) each centre
        mask[r] = (left % 2) == 1
    return box, mask


# -- applying a label -----------------------------------------------------------------
def apply_label(target: np.ndarray, region: np.ndarray, label: int, *, erase: bool = False) -> int:
    """Paint or erase ``label`` in ``target`` (a uint8 view) where ``region``; returns voxels changed.

    See the module docstring for what each combination does; the result keeps
    tumour inside the liver.
    """
    label = int(label)
    if label not in (Label.LIVER, Label.TUMOUR):
        raise ValueError(f"can only edit liver (1) or tumour (2), not {label}")
    region = np.asarray(region, dtype=bool)
    if erase:
        if label == Label.LIVER:
            change = region & (target != Label.BACKGROUND)
            new = Label.BACKGROUND
        else:
            change = region & (target == Label.TUMOUR)
            new = Label.LIVER
    else:
        if label == Label.LIVER:
            change = region & (target == Label.BACKGROUND)
            new = Label.LIVER
        else:
            change = region & (target != Label.TUMOUR)
            new = Label.TUMOUR
    n = int(np.count_nonzero(change))
    if n:
        target[change] = np.uint8(new)
    return n


def changed_voxels(
    original: np.ndarray, edited: np.ndarray, slices: Sequence[int] | None = None
) -> dict[str, dict[str, int]]:
    """Voxels the reader changed, per label: ``{"liver": {"added", "removed"}, "tumour": {...}}``.

    Liver is ``labels >= 1`` and tumour ``labels == 2`` (as volumetry counts
    them).  ``slices`` limits the comparison to those z indices (the ones an
    editing session touched); by default every slice is compared.
    """
    if original.shape != edited.shape:
        raise ValueError(f"shapes differ: {original.shape} vs {edited.shape}")
    zs = range(original.shape[0]) if slices is None else sorted(set(int(z) for z in slices))
    out = {"liver": {"added": 0, "removed": 0}, "tumour": {"added": 0, "removed": 0}}
    for z in zs:
        o, e = original[z], edited[z]
        for name, before, after in (
            ("liver", o >= Label.LIVER, e >= Label.LIVER),
            ("tumour", o == Label.TUMOUR, e == Label.TUMOUR),
        ):
            out[name]["added"] += int(np.count_nonzero(after & ~before))
            out[name]["removed"] += int(np.count_nonzero(before & ~after))
    return out


# -- undo -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlicePatch:
    """The bounding box of what changed on slice ``z``: its voxels before and after."""

    z: int
    y0: int
    x0: int
    before: np.ndarray
    after: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.before.nbytes + self.after.nbytes)

    def _box(self) -> tuple[int, slice, slice]:
        h, w = self.before.shape
        return self.z, slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    def apply(self, labels: np.ndarray, *, undo: bool) -> None:
        labels[self._box()] = self.before if undo else self.after


@dataclass(frozen=True)
class EditStep:
    """One undoable edit (a stroke, a fill, a lasso): the patches of the slices it changed."""

    name: str
    patches: tuple[SlicePatch, ...]

    @property
    def slices(self) -> list[int]:
        return [p.z for p in self.patches]

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.patches)


class StrokeRecorder:
    """Records an edit in progress: snapshots each slice before it is first changed.

    Call :meth:`touch` before changing slice ``z`` of ``labels`` and
    :meth:`finish` at the end; it returns the :class:`EditStep` holding only
    the changed bounding boxes (None when nothing changed).
    """

    def __init__(self, labels: np.ndarray, name: str) -> None:
        self.labels = labels
        self.name = name
        self._before: dict[int, np.ndarray] = {}

    def touch(self, zs: int | Sequence[int] | range) -> None:
        for z in [zs] if isinstance(zs, (int, np.integer)) else zs:
            z = int(z)
            if z not in self._before:
                self._before[z] = self.labels[z].copy()

    @property
    def touched(self) -> list[int]:
        return sorted(self._before)

    def finish(self) -> EditStep | None:
        patches = []
        for z in sorted(self._before):
            before = self._before[z]
            now = self.labels[z]
            diff = before != now
            if not diff.any():
                continue
            ys = np.flatnonzero(diff.any(axis=1))
            xs = np.flatnonzero(diff.any(axis=0))
            box = (slice(int(ys[0]), int(ys[-1]) + 1), slice(int(xs[0]), int(xs[-1]) + 1))
            patches.append(SlicePatch(z, int(ys[0]), int(xs[0]), before[box].copy(), now[box].copy()))
        self._before.clear()
        return EditStep(self.name, tuple(patches)) if patches else None


@dataclass
class UndoStack:
    """Undo/redo of :class:`EditStep` s on one label map (``max_steps`` kept, oldest dropped)."""

    max_steps: int = DEFAULT_UNDO_STEPS
    _done: list[EditStep] = field(default_factory=list)
    _undone: list[EditStep] = field(default_factory=list)

    def push(self, step: EditStep) -> None:
        self._done.append(step)
        self._undone.clear()
        if len(self._done) > self.max_steps:
            del self._done[: len(self._done) - self.max_steps]

    def undo(self, labels: np.ndarray) -> EditStep | None:
        if not self._done:
            return None
        step = self._done.pop()
        for p in reversed(step.patches):
            p.apply(labels, undo=True)
        self._undone.append(step)
        return step

    def redo(self, labels: np.ndarray) -> EditStep | None:
        if not self._undone:
            return None
        step = self._undone.pop()
        for p in step.patches:
            p.apply(labels, undo=False)
        self._done.append(step)
        return step

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def depth(self) -> int:
        """Steps that can be undone."""
        return len(self._done)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._done) + sum(s.nbytes for s in self._undone)
