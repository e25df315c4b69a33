"""THE preprocessing function: windows per channel, equalisation, pass-through, 8-bit mapping."""

from __future__ import annotations

import numpy as np
import pytest

from liverseg_studio.core.preprocess import (
    DEFAULT_SPEC,
    PreprocessSpec,
    apply_window,
    freqhist_equalise,
    model_input,
    windowed_rgb,
)
from liverseg_studio.core.volume import Intensity, Volume


def _ramp(lo: float = -200.0, hi: float = 300.0, n: int = 64) -> np.ndarray:
    return np.tile(np.linspace(lo, hi, n, dtype=np.float32), (n, 1))


def test_channels_follow_their_windows():
    spec = PreprocessSpec(clamp_hu=None)
    hu = _ramp()
    out = windowed_rgb(hu, spec, as_float=True)
    assert out.shape == (64, 64, 3) and out.dtype == np.float32
    for c, (width, level) in enumerate(spec.windows):
        expected = np.clip((hu - (level - width / 2)) / width, 0, 1)
        np.testing.assert_allclose(out[..., c], expected, atol=1e-6)
    # W150/L30 saturates at 105 HU, W200/L60 only at 160 HU
    col_130 = int(np.argmin(np.abs(hu[0] - 130)))
    assert out[0, col_130, 0] == 1.0 and out[0, col_130, 1] < 1.0


def test_specific_window_values():
    hu = np.array([[-45.0, 30.0, 105.0, -40.0, 60.0, 160.0]], dtype=np.float32)
    out = windowed_rgb(hu, PreprocessSpec(clamp_hu=None), as_float=True)
    np.testing.assert_allclose(out[0, :3, 0], [0.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 3:, 1], [0.0, 0.5, 1.0], atol=1e-6)


def test_clamp_makes_hu_look_like_training_data():
    hu = _ramp(-1000, 1000)
    clamped = windowed_rgb(np.clip(hu, 0, 255), DEFAULT_SPEC)
    np.testing.assert_array_equal(windowed_rgb(hu, DEFAULT_SPEC), clamped)


def test_equalisation_is_monotone_and_in_unit_range():
    rng = np.random.default_rng(0)
    hu = rng.normal(50, 80, size=(48, 48)).astype(np.float32)
    eq = freqhist_equalise(hu)
    assert eq.min() >= 0 and eq.max() <= 1
    order = np.argsort(hu.ravel())
    assert np.all(np.diff(eq.ravel()[order]) >= -1e-6)
    # equalised: roughly uniform distribution of outputs
    assert 0.35 < float(np.median(eq)) < 0.65


def test_equalisation_is_per_slice_and_constant_slices_are_zero():
    a = _ramp()
    stack = np.stack([a, a * 0 + 7, a + 1000])
    eq = freqhist_equalise(stack)
    np.testing.assert_allclose(eq[0], freqhist_equalise(a), atol=1e-6)
    assert not eq[1].any()
    np.testing.assert_allclose(eq[2], eq[0], atol=1e-5)  # shift-invariant per slice


def test_uint8_output_rounds_float_output():
    hu = _ramp()
    f = windowed_rgb(hu, as_float=True)
    u = windowed_rgb(hu)
    assert u.dtype == np.uint8
    assert np.abs(u.astype(np.float32) - f * 255).max() <= 0.5 + 1e-4


def test_windowed_rgb_rejects_1d():
    with pytest.raises(ValueError):
        windowed_rgb(np.zeros(5))


def test_three_channel_input_passes_through_unchanged():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)
    v = Volume(rgb, intensity=Intensity.WINDOWED_RGB)
    np.testing.assert_array_equal(model_input(v), rgb)
    np.testing.assert_allclose(model_input(v, [1], as_float=True), rgb[1:2] / 255.0)


def test_8bit_input_is_mapped_through_its_input_window():
    grey = np.tile(np.arange(256, dtype=np.uint8), (16, 1))[None]
    lo, hi = -160.0, 240.0
    v = Volume(grey, intensity=Intensity.DISPLAY8, hu_range=(lo, hi))
    hu = lo + grey[0].astype(np.float32) * (hi - lo) / 255.0
    np.testing.assert_allclose(model_input(v, as_float=True), windowed_rgb(hu, as_float=True)[None], atol=1e-5)
    # the default window (0, 255) means grey == HU
    v0 = Volume(grey, intensity=Intensity.DISPLAY8)
    np.testing.assert_array_equal(model_input(v0), windowed_rgb(grey[0].astype(np.float32))[None])
    assert not np.array_equal(model_input(v0), model_input(v))


def test_model_input_selects_slices():
    hu = np.stack([_ramp(), _ramp() + 50, _ramp() - 50])
    v = Volume(hu)
    out = model_input(v, [2, 0])
    np.testing.assert_array_equal(out[0], windowed_rgb(hu[2]))
    np.testing.assert_array_equal(out[1], windowed_rgb(hu[0]))


def test_spec_json_round_trip():
    spec = PreprocessSpec(windows=((100.0, 40.0), (300.0, 50.0)), clamp_hu=(-100.0, 300.0), hist_bins=50)
    assert PreprocessSpec.from_json(spec.to_json()) == spec
    assert PreprocessSpec.from_json(None) == DEFAULT_SPEC
    assert PreprocessSpec.from_json(PreprocessSpec(clamp_hu=None).to_json()).clamp_hu is None


# -- issue 13: equalisation without a full sort, channels-first output --------------------------
def _freqhist_full_sort(hu, n_bins=100):
    """The previous implementation (a full sort per slice): the reference."""
    x = np.asarray(hu, dtype=np.float32)
    flat = x.reshape(-1, x.shape[-2] * x.shape[-1])
    n = flat.shape[1]
    t = np.concatenate([[0.001], np.arange(n_bins, dtype=np.float64) / n_bins + 0.5 / n_bins, [0.999]])
    idx = np.minimum((n * t).astype(np.int64), n - 1)
    srt = np.sort(flat, axis=1)
    out = np.empty_like(flat)
    for i in range(flat.shape[0]):
        brks = np.unique(srt[i, idx])
        if brks.size < 2:
            out[i] = 0.0
            continue
        out[i] = np.interp(flat[i], brks, np.linspace(0.0, 1.0, brks.size, dtype=np.float32))
    return np.clip(out, 0.0, 1.0).reshape(x.shape)


@pytest.mark.parametrize("kind", ["float", "integer", "clamped", "constant", "tiny"])
def test_equalisation_is_identical_to_the_full_sort(kind):
    rng = np.random.default_rng(7)
    if kind == "float":
        hu = rng.normal(60, 80, size=(3, 64, 80)).astype(np.float32)
    elif kind == "integer":
        hu = np.rint(rng.normal(60, 80, size=(3, 64, 64))).astype(np.float32)
    elif kind == "clamped":
        hu = np.clip(rng.normal(60, 200, size=(2, 50, 50)), 0, 255).astype(np.float32)
    elif kind == "constant":
        hu = np.full((2, 16, 16), 40.0, np.float32)
    else:
        hu = rng.normal(size=(1, 8, 9)).astype(np.float32)
    np.testing.assert_array_equal(freqhist_equalise(hu), _freqhist_full_sort(hu))


def test_channels_first_is_the_same_image():
    hu = np.random.default_rng(3).normal(60, 80, size=(2, 20, 24)).astype(np.float32)
    v = Volume(array=hu)
    a = model_input(v, None, as_float=True)
    b = model_input(v, None, as_float=True, channels_first=True)
    assert b.shape == (2, 3, 20, 24) and b.flags.c_contiguous
    np.testing.assert_array_equal(np.moveaxis(a, -1, 1), b)
    rgb = Volume(array=windowed_rgb(hu), intensity=Intensity.WINDOWED_RGB)
    expected = np.moveaxis(model_input(rgb, None, as_float=True), -1, 1)
    np.testing.assert_array_equal(expected, model_input(rgb, None, as_float=True, channels_first=True))


def test_equalisation_counting_path_handles_negative_and_wide_integer_slices():
    rng = np.random.default_rng(11)
    for lo, hi in ((-1024, 3000), (-5, 5), (0, 70000)):
        hu = rng.integers(lo, hi, size=(2, 40, 30)).astype(np.float32)
        hu[0, :5] = lo  # a run of equal values
        np.testing.assert_array_equal(freqhist_equalise(hu), _freqhist_full_sort(hu))
