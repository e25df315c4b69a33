"""The ONE preprocessing function: CT slices -> the paper's 3-channel image.

Training (``liverseg prepare``), evaluation and every backend call
:func:`windowed_rgb` (through :func:`model_input` for volumes); nothing else
may window CT for the model.

Channels, as in the paper:

0. liver window W150 / L30  (HU -45 .. 105)
1. wider window  W200 / L60 (HU -40 .. 160)
2. histogram-equalised slice (fastai ``freqhist_bins`` + ``hist_scaled``)

Before windowing, HU are clamped to ``PreprocessSpec.clamp_hu``.  The default
(0, 255) is the HU range that every training set shares: the largest set
(LiTS/MSD) is stored as HU clipped to [0, 255], so clamping makes a real DICOM
or NIfTI input look exactly like the training data.  The spec is written into
each model card and read back by the backends.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from liverseg_studio.core.volume import Intensity, Volume, hu_from


@dataclass(frozen=True)
class PreprocessSpec:
    """Parameters of the 3-channel windowing (stored in ``model.json``)."""

    windows: tuple[tuple[float, float], ...] = ((150.0, 30.0), (200.0, 60.0))  # (width, level)
    clamp_hu: tuple[float, float] | None = (0.0, 255.0)
    hist_bins: int = 100

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = [list(w) for w in self.windows]
        d["clamp_hu"] = list(self.clamp_hu) if self.clamp_hu is not None else None
        d["channels"] = ["window W150/L30", "window W200/L60", "histogram-equalised (freqhist)"]
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "PreprocessSpec":
        if not data:
            return cls()
        windows = tuple((float(w), float(l)) for w, l in data.get("windows", cls.windows))
        clamp = data.get("clamp_hu", cls.clamp_hu)
        return cls(
            windows=windows,
            clamp_hu=None if clamp is None else (float(clamp[0]), float(clamp[1])),
            hist_bins=int(data.get("hist_bins", cls.hist_bins)),
        )


DEFAULT_SPEC = PreprocessSpec()


def apply_window(hu: np.ndarray, width: float, level: float) -> np.ndarray:
    """Linear window to [0, 1] (float32): level - width/2 -> 0, level + width/2 -> 1."""
    lo = level - width / 2.0
    out = (np.asarray(hu, dtype=np.float32) - np.float32(lo)) / np.float32(width)
    return np.clip(out, 0.0, 1.0, out=out)


#: Integer-valued slices spanning at most this many values are equalised by counting.
_MAX_COUNT_SPAN = 1 << 16


def _integer_codes(row: np.ndarray) -> tuple[np.ndarray, float, int] | None:
    """(row - min as int32, min, span) when ``row`` holds integers of a small span, else None."""
    lo = float(row.min())
    span = float(row.max()) - lo
    if not np.isfinite(span) or span >= _MAX_COUNT_SPAN:
        return None
    shifted = row - np.float32(lo)
    codes = shifted.astype(np.int32)
    if not np.array_equal(codes, shifted):
        return None
    return codes, lo, int(span)


def freqhist_equalise(hu: np.ndarray, n_bins: int = 100) -> np.ndarray:
    """Histogram equalisation as fastai's medical module does it, per 2D slice.

    ``freqhist_bins``: break points at the 0.1 %, (i + 0.5)/n_bins and 99.9 %
    quantiles of the slice; ``hist_scaled``: piecewise-linear map of those break
    points onto [0, 1].  Works on (..., y, x) and equalises each slice separately.

    Speed without a full sort: CT slices hold integer HU (clamped to 0..255 by
    the default spec), so the order statistics come from a count of each value
    (``np.bincount`` + cumulative sum) and the map is a lookup table over the
    slice's values: the same numbers as sorting, ~10x faster (tested against
    the sort).  Other slices (fractional values, huge spans) are sorted.
    """
    x = np.asarray(hu, dtype=np.float32)
    lead = x.shape[:-2]
    flat = x.reshape(-1, x.shape[-2] * x.shape[-1])
    n = flat.shape[1]
    t = np.concatenate([[0.001], np.arange(n_bins, dtype=np.float64) / n_bins + 0.5 / n_bins, [0.999]])
    idx = np.minimum((n * t).astype(np.int64), n - 1)
    out = np.empty_like(flat)
    for i in range(flat.shape[0]):
        row = flat[i]
        ints = _integer_codes(row) if n else None
        if ints is not None:
            codes, lo, span = ints
            cum = np.cumsum(np.bincount(codes.ravel(), minlength=span + 1))
            # value of rank r in sorted order: the first value whose cumulative count exceeds r
            brks = np.unique((np.searchsorted(cum, idx, side="right") + lo).astype(np.float32))
        else:
            brks = np.unique(np.sort(row)[idx])
        if brks.size < 2:  # constant slice
            out[i] = 0.0
            continue
        ys = np.linspace(0.0, 1.0, brks.size, dtype=np.float32)
        if ints is not None:
            lut = np.interp(np.arange(span + 1, dtype=np.float64) + lo, brks, ys).astype(np.float32)
            out[i] = lut[codes]
        else:
            out[i] = np.interp(row, brks, ys)
    return np.clip(out, 0.0, 1.0).reshape(*lead, x.shape[-2], x.shape[-1])


def windowed_rgb(
    hu: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC, *, as_float: bool = False, channels_first: bool = False
) -> np.ndarray:
    """THE preprocessing function: HU (..., y, x) -> 3-channel image (..., y, x, 3).

    Returns uint8 (0..255) by default, or float32 in [0, 1] with ``as_float``.
    ``channels_first`` stacks the channels as (..., 3, y, x) instead (what the
    models take; the same values without a transposing copy).
    """
    x = np.asarray(hu, dtype=np.float32)
    if x.ndim < 2:
        raise ValueError(f"expected an image (..., y, x), got shape {x.shape}")
    if spec.clamp_hu is not None:
        x = np.clip(x, spec.clamp_hu[0], spec.clamp_hu[1])
    channels = [apply_window(x, w, l) for (w, l) in spec.windows[:2]]
    channels.append(freqhist_equalise(x, spec.hist_bins))
    out = np.stack(channels, axis=-3 if channels_first else -1)
    if as_float:
        return out.astype(np.float32, copy=False)
    return np.rint(out * 255.0).astype(np.uint8)


def model_input(
    volume: Volume,
    indices: Sequence[int] | slice | None = None,
    spec: PreprocessSpec = DEFAULT_SPEC,
    *,
    as_float: bool = False,
    channels_first: bool = False,
) -> np.ndarray:
    """The model's 3-channel input for slices of ``volume``: (n, y, x, 3), or (n, 3, y, x) with ``channels_first``.

    HU and 8-bit (``display8``, mapped to HU through ``volume.hu_range``) inputs
    go through :func:`windowed_rgb`; inputs that already are the paper's
    3-channel windowed images pass through unchanged.
    """
    sel = slice(None) if indices is None else indices
    raw = volume.array[sel]
    if volume.intensity is Intensity.WINDOWED_RGB:
        rgb = np.asarray(raw, dtype=np.uint8)
        if channels_first:
            rgb = np.moveaxis(rgb, -1, -3)
        out = rgb.astype(np.float32) / 255.0 if as_float else rgb
        return np.ascontiguousarray(out) if channels_first else out
    hu = hu_from(raw, volume.intensity, volume.hu_range)
    return windowed_rgb(hu, spec, as_float=as_float, channels_first=channels_first)
