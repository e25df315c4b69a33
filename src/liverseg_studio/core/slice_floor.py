"""A confidence floor for liver components of single 2D slices (issue 14, item 5).

A slice without liver (or with only a small tip) can come back with a few
hundred to a few thousand pixels of liver: components the model is not sure
of.  :func:`confidence_floor_2d` removes, on one slice, every liver component
(label >= 1, 8-connected) whose mean liver-or-tumour probability is below
``min_mean_prob`` or whose area is below ``min_area_fraction`` of the slice.
Volumes do not need it (the 3D post-processing keeps the largest liver
component); the defaults are tuned on validation people only (see
``scripts/measure_liver_free_fp.py``), never on case 117 or the test volumes.
"""

from __future__ import annotations

import numpy as np

#: Measured defaults (scripts/measure_liver_free_fp.py); 0 disables each criterion.
DEFAULT_MIN_MEAN_PROB = 0.0
DEFAULT_MIN_AREA_FRACTION = 0.0


def confidence_floor_2d(
    labels: np.ndarray,
    liver_prob: np.ndarray,
    *,
    min_mean_prob: float = DEFAULT_MIN_MEAN_PROB,
    min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION,
) -> tuple[np.ndarray, int]:
    """``labels`` (y, x) uint8 and ``liver_prob`` (y, x) = P(liver) + P(tumour):
    the labels with unsure or tiny liver components set to background, and how many were removed."""
    from scipy import ndimage

    lab = np.asarray(labels)
    if lab.ndim != 2 or np.asarray(liver_prob).shape != lab.shape:
        raise ValueError(f"one slice expected: labels {lab.shape}, probabilities {np.shape(liver_prob)}")
    if min_mean_prob <= 0 and min_area_fraction <= 0:
        return lab, 0
    comp, n = ndimage.label(lab >= 1, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return lab, 0
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones(lab.shape, dtype=np.float32), comp, index)
    mean_p = ndimage.mean(np.asarray(liver_prob, dtype=np.float32), comp, index)
    drop = (mean_p < min_mean_prob) | (area < min_area_fraction * lab.size)
    if not drop.any():
        return lab, 0
    out = lab.copy()
    out[np.isin(comp, index[drop])] = 0
    return out, int(drop.sum())
