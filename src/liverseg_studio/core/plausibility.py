"""Does a volume look like CT in Hounsfield units?  One function: :func:`check_ct_intensities`.

A CT of the abdomen in HU has air near -1000 HU (outside the body, the bowel,
the lungs), soft tissue between 0 and 100 HU, fat around -100 HU and bone
above 300 HU.  Data that has been rescaled (0..1, z-scores, 8-bit grey) or is
stored unsigned without its offset (HU + 1024, a DICOM without
RescaleIntercept) does not, and a model trained on HU paints nonsense on it.

The check looks at a sample of the voxels (a few slices spread over the
volume, every 4th row and column), so it reads little of a lazy volume:

* fewer than :data:`MIN_SAMPLE` voxels, or a constant volume: ``unknown``
  (nothing to judge; the volume is used as it is);
* at most :data:`MAX_LABELS` distinct whole numbers in 0..255: ``labels`` (a
  label map loaded by ``prepare``/``evaluate``; not judged);
* values spanning less than :data:`MIN_SPAN_HU` (central 99.8 %): ``not_hu``
  (CT noise alone spans more than that; 0..1 or z-scored data does not);
* no negative values at all, but ``value - 1024`` has air and soft tissue in
  sensible fractions: ``offset_1024`` (unsigned HU + 1024);
* no air or fat at all (nothing below -50 HU) and nothing above 300 HU:
  ``not_hu`` (8-bit grey 0..255 and the like);
* otherwise ``hu``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Voxels a sample needs before the check judges anything.
MIN_SAMPLE = 4096
#: The central 99.8 % of the values of a CT spans at least this many HU.
MIN_SPAN_HU = 50.0
#: Air below this (HU).
AIR_HU = -900.0
#: Soft tissue range (HU) used for the fractions.
SOFT_HU = (-100.0, 200.0)
#: Bone above this (HU).
BONE_HU = 300.0
#: A sample of at most this many distinct whole numbers in 0..255 is a label map, not judged.
MAX_LABELS = 16
#: The offset of unsigned CT stored without RescaleIntercept.
UNSIGNED_OFFSET = 1024.0


@dataclass(frozen=True)
class IntensityCheck:
    """What :func:`check_ct_intensities` saw."""

    #: ``hu``, ``offset_1024``, ``not_hu`` or ``unknown``
    verdict: str
    low: float
    high: float
    air_fraction: float
    soft_fraction: float
    bone_fraction: float
    n_sampled: int

    @property
    def plausible(self) -> bool:
        return self.verdict in ("hu", "unknown", "labels")

    def describe(self) -> str:
        """One clause: what was seen, e.g. ``values 0 .. 1 (no air near -1000 HU, ...)``."""
        seen = f"values {self.low:.4g} .. {self.high:.4g}"
        if self.verdict == "offset_1024":
            return (
                f"{seen}, nothing below 0: looks like HU + 1024 stored unsigned without its intercept "
                f"(minus 1024 it has {self.air_fraction:.0%} air, {self.soft_fraction:.0%} soft tissue)"
            )
        return (
            f"{seen}: {self.air_fraction:.0%} air near -1000 HU, {self.soft_fraction:.0%} soft tissue, "
            f"{self.bone_fraction:.0%} bone above {BONE_HU:g} HU"
        )


def _fractions(values: np.ndarray) -> tuple[float, float, float]:
    n = max(1, values.size)
    air = float(np.count_nonzero(values < AIR_HU)) / n
    soft = float(np.count_nonzero((values >= SOFT_HU[0]) & (values <= SOFT_HU[1]))) / n
    bone = float(np.count_nonzero(values > BONE_HU)) / n
    return air, soft, bone


def sample_voxels(array: Any, n_slices: int = 12, step: int = 4) -> np.ndarray:
    """Up to ``n_slices`` slices spread over ``array`` (z, y, x), every ``step``-th row and column, as float32."""
    nz = int(array.shape[0])
    ny, nx = int(array.shape[1]), int(array.shape[2])
    step = max(1, min(step, min(ny, nx) // 128))  # every 4th row of a 512 x 512 slice, all of a small one
    picks = sorted({int(round(k)) for k in np.linspace(0, nz - 1, min(nz, n_slices))})
    parts = [np.asarray(array[k], dtype=np.float32)[::step, ::step].ravel() for k in picks]
    values = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return values[np.isfinite(values)]


def check_ct_intensities(values: Any) -> IntensityCheck:
    """Judge whether ``values`` (a sample of voxels, or a whole (z, y, x) array) look like CT in HU."""
    v = np.asarray(values, dtype=np.float32).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return IntensityCheck("unknown", 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    low, high = (float(x) for x in np.percentile(v, [0.1, 99.9]))
    air, soft, bone = _fractions(v)
    if v.size < MIN_SAMPLE or float(v.min()) == float(v.max()):
        return IntensityCheck("unknown", low, high, air, soft, bone, int(v.size))
    if float(v.min()) >= 0.0 and float(v.max()) <= 255.0 and np.array_equal(v, np.rint(v)):
        if np.unique(v).size <= MAX_LABELS:
            return IntensityCheck("labels", low, high, air, soft, bone, int(v.size))
    if high - low < MIN_SPAN_HU:
        return IntensityCheck("not_hu", low, high, air, soft, bone, int(v.size))
    if float(np.percentile(v, 0.5)) >= 0.0 and high >= 900.0:
        s_air, s_soft, s_bone = _fractions(v - UNSIGNED_OFFSET)
        if s_air >= 0.02 and s_soft >= 0.05:
            return IntensityCheck("offset_1024", low, high, s_air, s_soft, s_bone, int(v.size))
    if low >= -50.0 and high <= BONE_HU:
        return IntensityCheck("not_hu", low, high, air, soft, bone, int(v.size))
    return IntensityCheck("hu", low, high, air, soft, bone, int(v.size))
