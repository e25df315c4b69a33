"""Segmentation metrics on binary masks (numpy/scipy only).

Overlap: Dice, Jaccard, precision, recall, F1, pixel accuracy, relative volume
difference (RVD).  Surface distances: average symmetric surface distance
(ASSD) and the 95th-percentile Hausdorff distance (HD95), in mm when a
``spacing`` is given (``None``: pixels/voxels).

Definitions (``P`` prediction, ``T`` truth, as sets of voxels):

* Dice = 2|P∩T| / (|P| + |T|); Jaccard = |P∩T| / |P∪T|;
  precision = |P∩T| / |P|; recall = |P∩T| / |T|; F1 = 2 pr / (p + r);
  pixel accuracy = correctly classified voxels / all voxels;
  RVD = (|P| - |T|) / |T| (signed: > 0 over-segmentation).
* Surfaces: the voxels of a mask with at least one 6-connected (4-connected in
  2D) neighbour outside it (or on the array border), as MedPy does.  The
  directed distances go from each surface voxel of one mask to the nearest
  surface voxel of the other (Euclidean distance transform with ``sampling =
  spacing``).  ASSD is the mean of the two directed mean distances (MedPy's
  ``assd``); HD95 is the larger of the two directed 95th percentiles (MedPy's
  ``hd95``).

**Empty masks** (:data:`EMPTY_CONVENTION`, written into every report): when
both truth and prediction are empty, every metric except pixel accuracy is
undefined and returned as ``None`` (excluded from means); when exactly one is
empty, Dice/Jaccard/F1 are 0, precision is ``None`` if nothing was predicted,
recall ``None`` if the truth is empty, RVD ``None`` for empty truth, and the
surface distances are ``None`` (no surface to measure to).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import ndimage as ndi

EMPTY_CONVENTION = (
    "empty truth and empty prediction: Dice, Jaccard, precision, recall, F1, RVD, ASSD and HD95 are undefined "
    "(null) and excluded from means; pixel accuracy is still reported. Exactly one empty: Dice/Jaccard/F1 = 0, "
    "precision null when nothing is predicted, recall and RVD null when the truth is empty, ASSD/HD95 null."
)


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred).astype(bool, copy=False)
    t = np.asarray(truth).astype(bool, copy=False)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from truth shape {t.shape}")
    return p, t


def confusion(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) voxel counts."""
    p, t = _pair(pred, truth)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return tp, fp, fn, int(p.size - tp - fp - fn)


def dice(pred: np.ndarray, truth: np.ndarray) -> float | None:
    tp, fp, fn, _ = confusion(pred, truth)
    den = 2 * tp + fp + fn
    return None if den == 0 else 2.0 * tp / den


def jaccard(pred: np.ndarray, truth: np.ndarray) -> float | None:
    tp, fp, fn, _ = confusion(pred, truth)
    den = tp + fp + fn
    return None if den == 0 else tp / den


def precision(pred: np.ndarray, truth: np.ndarray) -> float | None:
    tp, fp, _, _ = confusion(pred, truth)
    return None if tp + fp == 0 else tp / (tp + fp)


def recall(pred: np.ndarray, truth: np.ndarray) -> float | None:
    tp, _, fn, _ = confusion(pred, truth)
    return None if tp + fn == 0 else tp / (tp + fn)


def f1(pred: np.ndarray, truth: np.ndarray) -> float | None:
    tp, fp, fn, _ = confusion(pred, truth)
    if tp + fp + fn == 0:
        return None
    if tp == 0:
        return 0.0
    p, r = tp / (tp + fp), tp / (tp + fn)
    return 2 * p * r / (p + r)


def pixel_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    tp, fp, fn, tn = confusion(pred, truth)
    return (tp + tn) / max(tp + fp + fn + tn, 1)


def rvd(pred: np.ndarray, truth: np.ndarray) -> float | None:
    """Relative volume difference (|P| - |T|) / |T|; None for empty truth."""
    p, t = _pair(pred, truth)
    nt = int(np.count_nonzero(t))
    return None if nt == 0 else (int(np.count_nonzero(p)) - nt) / nt


def surface(mask: np.ndarray) -> np.ndarray:
    """Surface voxels: in the mask with a face neighbour outside it or on the array border."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return m.copy()
    structure = ndi.generate_binary_structure(m.ndim, 1)
    return m & ~ndi.binary_erosion(m, structure=structure, iterations=1, border_value=0)


def _spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    s = tuple(float(v) for v in spacing)
    if len(s) != ndim:
        raise ValueError(f"spacing {s} needs {ndim} values")
    if any(not v > 0 for v in s):
        raise ValueError(f"spacing must be positive, got {s}")
    return s


def surface_distances(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Directed surface distances (pred -> truth, truth -> pred); None if either mask is empty."""
    p, t = _pair(pred, truth)
    if not p.any() or not t.any():
        return None
    sp = _spacing(spacing, p.ndim)
    sp_, st_ = surface(p), surface(t)
    # crop to the bounding box of both masks plus a margin for speed (distances are unchanged:
    # the box holds every surface voxel and the transform measures to surface voxels only)
    both = p | t
    idx = np.nonzero(both)
    lo = [max(int(i.min()) - 1, 0) for i in idx]
    hi = [min(int(i.max()) + 2, n) for i, n in zip(idx, p.shape)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    sp_, st_ = sp_[box], st_[box]
    dt_t = ndi.distance_transform_edt(~st_, sampling=sp)
    dt_p = ndi.distance_transform_edt(~sp_, sampling=sp)
    return dt_t[sp_].astype(np.float64), dt_p[st_].astype(np.float64)


def hd95(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None) -> float | None:
    d = surface_distances(pred, truth, spacing)
    if d is None:
        return None
    return float(max(np.percentile(d[0], 95), np.percentile(d[1], 95)))


def assd(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None) -> float | None:
    d = surface_distances(pred, truth, spacing)
    if d is None:
        return None
    return float((d[0].mean() + d[1].mean()) / 2.0)


def binary_metrics(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None, *, distances: bool = True
) -> dict[str, float | None]:
    """Every metric of one binary pair (see the module docstring for the empty-mask convention)."""
    p, t = _pair(pred, truth)
    tp, fp, fn, tn = confusion(p, t)
    out: dict[str, float | None] = {
        "dice": None if 2 * tp + fp + fn == 0 else 2.0 * tp / (2 * tp + fp + fn),
        "jaccard": None if tp + fp + fn == 0 else tp / (tp + fp + fn),
        "precision": None if tp + fp == 0 else tp / (tp + fp),
        "recall": None if tp + fn == 0 else tp / (tp + fn),
        "f1": f1(p, t),
        "pixel_accuracy": (tp + tn) / max(p.size, 1),
        "rvd": None if tp + fn == 0 else (tp + fp - (tp + fn)) / (tp + fn),
        "truth_voxels": float(tp + fn),
        "pred_voxels": float(tp + fp),
    }
    if distances:
        d = surface_distances(p, t, spacing)
        out["assd"] = None if d is None else float((d[0].mean() + d[1].mean()) / 2.0)
        out["hd95"] = None if d is None else float(max(np.percentile(d[0], 95), np.percentile(d[1], 95)))
    return out


def mean_defined(values: Sequence[float | None]) -> float | None:
    """Mean of the defined (non-None, finite) values; None if there are none."""
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def median_defined(values: Sequence[float | None]) -> float | None:
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def summarise(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, dict[str, float | int | None]]:
    """Mean / median / count of the defined values of ``keys`` over ``rows``."""
    out: dict[str, dict[str, float | int | None]] = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        defined = [v for v in vals if v is not None and np.isfinite(v)]
        out[k] = {"mean": mean_defined(vals), "median": median_defined(vals), "n": len(defined)}
    return out
