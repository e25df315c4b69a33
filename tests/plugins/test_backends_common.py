"""The shared slice loop (``backends.common``) with fake ``run_batch`` callbacks: no model needed."""

from __future__ import annotations

import numpy as np
import pytest

from liverseg_studio.backends.common import (
    check_logits,
    physical_cores,
    predict_volume,
    resize_chw,
    resize_matrix,
    resolve_model_dir,
)
from liverseg_studio.core.errors import BackendError, CancelledError
from liverseg_studio.core.volume import Volume

S = 32


def volume(z: int = 10, y: int = 48, x: int = 40) -> Volume:
    rng = np.random.default_rng(0)
    return Volume(array=rng.uniform(-100, 200, size=(z, y, x)).astype(np.float32))


def threshold_model(x: np.ndarray) -> np.ndarray:
    """Logits that pick liver where channel 0 > 0.5, else background; never tumour."""
    c0 = x[:, 0]
    return np.stack([0.5 - c0, c0 - 0.5, np.full_like(c0, -10.0)], axis=1) * 20


def test_labels_follow_the_model():
    hu = np.full((10, 48, 40), -100.0, np.float32)
    hu[:, 10:30, 8:25] = 150.0  # a bright block: liver for the threshold model
    v = Volume(array=hu)
    p = predict_volume(v, threshold_model, input_size=S, want_probabilities=True)
    assert p.labels.shape == v.shape and p.labels.dtype == np.uint8
    assert set(np.unique(p.labels)) <= {0, 1}
    assert p.probabilities.shape == (10, 3, 48, 40) and p.probabilities.dtype == np.float32
    np.testing.assert_allclose(p.probabilities.sum(axis=1), 1.0, atol=1e-5)
    # liver where the liver window is bright (HU > 30): mostly right, up to resampling
    from liverseg_studio.core.preprocess import model_input

    bright = model_input(v, None, as_float=True)[..., 0] > 0.5
    assert np.mean((p.labels == 1) == bright) > 0.97
    assert (p.labels[:, 12:28, 10:23] == 1).all() and (p.labels[:, 35:, 30:] == 0).all()


def test_batches_progress_and_cancel():
    v = volume(z=10)
    calls: list[tuple[int, int]] = []
    seen: list[int] = []

    def run(x):
        seen.append(len(x))
        return threshold_model(x)

    predict_volume(v, run, input_size=S, batch_size=4, progress=lambda d, n: calls.append((d, n)))
    assert seen == [4, 4, 2]
    assert calls == [(4, 10), (8, 10), (10, 10)]

    polls = iter([False, False, True])
    with pytest.raises(CancelledError, match="after 8 of 10"):
        predict_volume(v, threshold_model, input_size=S, batch_size=4, is_cancelled=lambda: next(polls))


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda x: np.full((len(x), 3, S, S), np.nan, np.float32), "non-finite"),
        (lambda x: np.full((len(x), 3, S, S), np.inf, np.float32), "non-finite"),
        (lambda x: np.zeros((len(x), 2, S, S), np.float32), "shape"),
        (lambda x: np.zeros((len(x), 3, S // 2, S // 2), np.float32), "shape"),
        (lambda x: np.zeros((1, 3, S, S), np.float32), "shape"),
        (lambda x: np.zeros((len(x), 3, S, S), np.int64), "floating"),
    ],
)
def test_bad_model_output_is_a_backend_error(bad, match):
    with pytest.raises(BackendError, match=match):
        predict_volume(volume(z=3), bad, input_size=S, batch_size=2)


def test_model_exception_becomes_backend_error():
    def boom(x):
        raise RuntimeError("kernel exploded")

    with pytest.raises(BackendError, match="kernel exploded"):
        predict_volume(volume(z=2), boom, input_size=S)


def test_nan_in_one_pixel_is_caught():
    def one_nan(x):
        out = threshold_model(x)
        out[0, 1, 3, 4] = np.nan
        return out

    with pytest.raises(BackendError, match="1 non-finite"):
        check_logits(one_nan(np.zeros((2, 3, S, S), np.float32)), 2, S)


def test_resize_matrix_area_and_identity():
    rng = np.random.default_rng(1)
    img = rng.random((2, 3, 64, 48)).astype(np.float32)
    half = resize_chw(img, (32, 24))
    block = img.reshape(2, 3, 32, 2, 24, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(half, block, atol=1e-6)
    np.testing.assert_array_equal(resize_chw(img, (64, 48)), img)
    # rows of every matrix sum to one (constants are preserved), also for non-integer factors
    for n_in, n_out in [(512, 256), (500, 256), (256, 512), (100, 37), (37, 100)]:
        np.testing.assert_allclose(resize_matrix(n_in, n_out).sum(axis=1), 1.0, atol=1e-5)


def test_upsampling_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    img = rng.random((1, 3, 16, 20)).astype(np.float32)
    ours = resize_chw(img, (40, 50))
    ref = torch.nn.functional.interpolate(torch.from_numpy(img), size=(40, 50), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-5)


def test_memory_is_bounded_without_probabilities():
    """Without want_probabilities only the uint8 labels are kept (no (z, 3, y, x) float array)."""
    v = volume(z=6)
    p = predict_volume(v, threshold_model, input_size=S, batch_size=2)
    assert p.probabilities is None


def test_physical_cores_and_model_dir(tmp_path, monkeypatch):
    assert 1 <= physical_cores() <= (len(__import__("os").sched_getaffinity(0)))
    with pytest.raises(BackendError, match="does not exist"):
        resolve_model_dir(tmp_path / "missing")
    monkeypatch.setenv("LIVERSEG_MODEL_DIR", str(tmp_path))
    (tmp_path / "model.json").write_text("{}")
    assert resolve_model_dir(None) == tmp_path


# -- issue 13: the slice loop's cheap paths give today's results ----------------------------------
def test_whole_factor_shrink_is_the_matrix_block_mean():
    from liverseg_studio.backends.common import block_mean

    rng = np.random.default_rng(4)
    x = rng.random((2, 3, 64, 96), dtype=np.float32)
    ref = resize_matrix(64, 32) @ x @ resize_matrix(96, 24).T
    np.testing.assert_allclose(resize_chw(x, (32, 24)), ref, rtol=0, atol=2e-6)
    np.testing.assert_allclose(block_mean(x, 2, 4), ref, rtol=0, atol=2e-6)
    # non-whole factors still take the matrices
    np.testing.assert_allclose(resize_chw(x, (40, 50)), resize_matrix(64, 40) @ x @ resize_matrix(96, 50).T, atol=1e-6)


def _smooth_probs(rng, n, s, sharp):
    from scipy import ndimage

    from liverseg_studio.backends.common import softmax

    logits = ndimage.gaussian_filter(rng.normal(size=(n, 3, s, s)), sigma=(0, 0, 2, 2)) * sharp
    return softmax(logits.astype(np.float32), axis=1)


@pytest.mark.parametrize(
    "s, out_hw", [(32, (64, 64)), (32, (512 // 8, 512 // 8)), (16, (37, 53)), (24, (24, 70)), (20, (20, 20))]
)
@pytest.mark.parametrize("sharp", [3.0, 40.0])
def test_upsampled_labels_equal_the_argmax_of_resized_probabilities(s, out_hw, sharp):
    from liverseg_studio.backends.common import argmax_classes, upsampled_labels

    rng = np.random.default_rng(int(sharp) + s)
    probs = _smooth_probs(rng, 3, s, sharp)
    ref = argmax_classes(resize_chw(probs, out_hw))
    got = upsampled_labels(probs, out_hw)
    assert got.shape == ref.shape == (3, *out_hw) and got.dtype == np.uint8
    # identical up to float32 rounding at exact ties (none in practice)
    assert np.mean(got == ref) > 0.9999, np.mean(got == ref)


def test_upsampled_labels_shrinking_falls_back_to_resizing():
    from liverseg_studio.backends.common import argmax_classes, upsampled_labels

    probs = _smooth_probs(np.random.default_rng(1), 2, 40, 10.0)
    np.testing.assert_array_equal(upsampled_labels(probs, (30, 50)), argmax_classes(resize_chw(probs, (30, 50))))


def test_predict_volume_labels_match_the_full_probability_path():
    """want_probabilities=True keeps the old full-size path: the cheap labels agree with it."""
    rng = np.random.default_rng(2)

    def model(x):
        from scipy import ndimage

        return (ndimage.gaussian_filter(x, sigma=(0, 0, 2, 2)) - 0.4) * np.array([-8.0, 8.0, 3.0])[None, :, None, None]

    v = Volume(array=rng.uniform(-100, 250, size=(5, 64, 64)).astype(np.float32))
    a = predict_volume(v, model, input_size=S, want_probabilities=True, batch_size=2)
    b = predict_volume(v, model, input_size=S, batch_size=2)
    assert b.probabilities is None
    assert np.mean(a.labels == b.labels) > 0.9999
