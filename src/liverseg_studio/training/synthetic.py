"""Synthetic liver tumours painted into real CT slices (training augmentation).

The idea follows Hu et al., "Label-Free Liver Tumor Segmentation" (CVPR 2023):
realistic hypo-attenuating lesions are painted into healthy-looking liver and
labelled as tumour, which teaches the tumour class without tumour masks.  Here,
per 2D slice in Hounsfield units:

* shape: an ellipse with random axes and angle whose border is deformed by a
  smooth random field (elastic edges), cropped to the liver;
* intensity: the lesion is ``delta`` HU darker than the surrounding liver,
  ``delta`` uniform in 20..80 HU, with smooth texture noise on top and a soft
  edge; the slice's own noise is kept (the lesion is a subtraction);
* an optional enhancing rim (brighter ring), as in many metastases;
* only pixels inside the liver (``labels >= 1``) change; lesion pixels get
  label 2.

Pure numpy/scipy (no torch): called from the training dataset's workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass(frozen=True)
class TumourConfig:
    """Parameters of the lesion painter (pixel sizes refer to a 256-pixel slice)."""

    max_lesions: int = 3
    min_radius: float = 3.0  #: pixels at 256
    max_radius: float = 28.0  #: pixels at 256
    darker_hu: tuple[float, float] = (20.0, 80.0)
    texture_hu: tuple[float, float] = (3.0, 12.0)
    rim_probability: float = 0.3
    rim_hu: tuple[float, float] = (10.0, 30.0)
    edge_irregularity: float = 0.35
    min_liver_pixels: int = 150  #: at 256; smaller livers are left alone


@dataclass(frozen=True)
class Lesion:
    """What was painted (for tests and debugging)."""

    centre: tuple[int, int]
    radii: tuple[float, float]
    darker_hu: float
    rim: bool
    pixels: int


def _smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std smooth random field."""
    f = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=max(sigma, 0.5))
    s = float(f.std())
    return f / s if s > 0 else f


def paint_tumours(
    hu: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    config: TumourConfig = TumourConfig(),
    n_lesions: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Lesion]]:
    """Paint 1..``max_lesions`` synthetic lesions into the liver of one slice.

    ``hu`` float (y, x) in HU, ``labels`` uint8 (y, x) (0 bg, >= 1 liver,
    2 tumour).  Returns new ``(hu, labels, lesions)``; the inputs are not
    modified.  Slices with too little liver come back unchanged with no lesion.
    """
    hu = np.asarray(hu, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.uint8)
    if hu.shape != labels.shape or hu.ndim != 2:
        raise ValueError(f"hu {hu.shape} and labels {labels.shape} must be the same 2D shape")
    scale = min(hu.shape) / 256.0
    liver = labels >= 1
    if liver.sum() < config.min_liver_pixels * scale * scale:
        return hu.copy(), labels.copy(), []
    dist = ndi.distance_transform_edt(liver)
    out_hu = hu.copy()
    out_lab = labels.copy()
    lesions: list[Lesion] = []
    n = int(n_lesions) if n_lesions is not None else int(rng.integers(1, config.max_lesions + 1))
    min_r = config.min_radius * scale
    H, W = hu.shape
    for _ in range(n):
        # centre: inside the liver, at least min_r from its border when possible
        cand = np.flatnonzero(dist.ravel() >= min_r)
        if cand.size == 0:
            cand = np.flatnonzero(liver.ravel())
        c = int(cand[rng.integers(cand.size)])
        cy, cx = divmod(c, W)
        r_cap = max(min_r, min(config.max_radius * scale, 1.3 * float(dist[cy, cx]) + min_r))
        r = float(rng.uniform(min_r, r_cap))
        ry, rx = r * float(rng.uniform(0.7, 1.3)), r * float(rng.uniform(0.7, 1.3))
        theta = float(rng.uniform(0, np.pi))
        # work in a box around the lesion (elastic edges stay within ~1.4 radii)
        half = int(np.ceil(1.3 * max(ry, rx) * (1.0 + config.edge_irregularity) + 3))
        y0, y1 = max(cy - half, 0), min(cy + half + 1, H)
        x0, x1 = max(cx - half, 0), min(cx + half + 1, W)
        box = (slice(y0, y1), slice(x0, x1))
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        ct, st = np.cos(theta), np.sin(theta)
        dy, dx = yy - cy, xx - cx
        u = (ct * dx + st * dy) / rx
        v = (-st * dx + ct * dy) / ry
        d = np.sqrt(u * u + v * v)
        shape = d.shape
        # elastic edge: deform the normalised radius with a smooth field
        d = d * (1.0 + config.edge_irregularity * _smooth_noise(shape, max(r / 2.5, 1.0), rng) * 0.5)
        edge = 0.15
        liv = liver[box]
        w = np.clip((1.0 - d) / edge + 0.5, 0.0, 1.0) * liv  # soft edge, liver only
        core = (w >= 0.5) & liv
        if core.sum() < 4:
            continue
        delta = float(rng.uniform(*config.darker_hu))
        tex = _smooth_noise(shape, max(r / 6.0, 0.8), rng) * float(rng.uniform(*config.texture_hu))
        out_hu[box] -= w * (delta + tex)
        rim = bool(rng.random() < config.rim_probability)
        if rim:
            ring = np.exp(-(((d - 1.0) / 0.12) ** 2)) * liv
            out_hu[box] += ring * float(rng.uniform(*config.rim_hu))
            core = core | ((ring > 0.5) & liv)  # the enhancing rim belongs to the lesion
        out_lab[box][core] = 2
        lesions.append(Lesion((cy, cx), (ry, rx), delta, rim, int(core.sum())))
    return out_hu, out_lab, lesions
