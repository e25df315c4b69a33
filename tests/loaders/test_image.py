"""JPG/PNG/BMP/TIFF slices: grey, windowed RGB, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.volume import Intensity
from liverseg_studio.plugins.registry import LoadOptions


def _grey(n: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    return ((yy * 3 + xx * 2) % 256).astype(np.uint8)


def _windowed(n: int = 64) -> np.ndarray:
    g = _grey(n).astype(np.float32)
    return np.stack([g, np.clip(g * 0.6 + 40, 0, 255), 255 - g], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("ext", ["png", "bmp", "tif"])
def test_grey_lossless_formats(tmp_path, loaders, ext):
    path = tmp_path / f"slice.{ext}"
    Image.fromarray(_grey()).save(path)
    v = loaders.load(path)
    assert v.loader == "image"
    assert v.intensity is Intensity.DISPLAY8
    assert v.shape == (1, 64, 64) and v.array.dtype == np.uint8
    np.testing.assert_array_equal(v.array[0], _grey())
    assert v.hu_range == (0.0, 255.0)
    assert not v.spacing_known and np.array_equal(v.affine, np.eye(4))


def test_input_window_sets_hu_range(tmp_path, loaders):
    path = tmp_path / "slice.png"
    Image.fromarray(_grey()).save(path)
    v = loaders.load(path, LoadOptions(input_window=(-200.0, 300.0)))
    assert v.hu_range == (-200.0, 300.0)
    np.testing.assert_allclose(v.hu_slice(0), -200 + _grey().astype(np.float64) * 500 / 255, atol=1e-3)


def test_windowed_rgb_detected(tmp_path, loaders):
    path = tmp_path / "paper.png"
    Image.fromarray(_windowed()).save(path)
    v = loaders.load(path)
    assert v.intensity is Intensity.WINDOWED_RGB
    assert v.array.shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(v.array[0], _windowed())


def test_windowed_rgb_jpeg_detected(tmp_path, loaders):
    path = tmp_path / "paper.jpg"
    Image.fromarray(_windowed(96)).save(path, quality=95)
    assert loaders.load(path).intensity is Intensity.WINDOWED_RGB


def test_rgb_with_equal_channels_is_grey(tmp_path, loaders):
    g = _grey()
    path = tmp_path / "grey_as_rgb.jpg"
    Image.fromarray(np.stack([g] * 3, axis=-1)).save(path, quality=95)
    v = loaders.load(path)
    assert v.intensity is Intensity.DISPLAY8
    assert v.array.shape == (1, 64, 64)
    assert np.abs(v.array[0].astype(int) - g).mean() < 8  # JPEG loss only


def test_real_training_slice_is_grey(loaders):
    from pathlib import Path

    data = Path("/work/shared/data/lits-msd/images")
    files = sorted(data.glob("*.jpg"))[:3] if data.is_dir() else []
    if not files:
        pytest.skip("shared data not available")
    for f in files:
        v = loaders.load(f)
        assert v.intensity is Intensity.DISPLAY8 and v.shape[1:] == (256, 256)


def test_one_pixel_image_refused(tmp_path, loaders):
    path = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(path)
    with pytest.raises(LoaderError) as exc:
        loaders.load(path)
    assert "dot.png" in str(exc.value) and "1x1" in str(exc.value)


def test_zero_byte_refused(tmp_path, loaders):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(LoaderError, match=r"empty\.jpg: file is empty"):
        loaders.load(path)


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_truncated_image_refused(tmp_path, loaders, ext):
    rng = np.random.default_rng(0)
    full = tmp_path / f"full.{ext}"
    Image.fromarray(rng.integers(0, 255, (128, 128), dtype=np.uint8)).save(full)
    data = full.read_bytes()
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoaderError) as exc:
        loaders.load(path)
    assert f"cut.{ext}" in str(exc.value)
    assert "truncated" in str(exc.value) or "corrupt" in str(exc.value)


def test_garbage_with_image_extension_refused(tmp_path, loaders):
    path = tmp_path / "noise.png"
    path.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(LoaderError, match="noise.png"):
        loaders.load(path)


def test_16bit_png_refused(tmp_path, loaders):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((32, 32), 1000, np.uint16)).save(path)
    with pytest.raises(LoaderError, match="16-bit"):
        loaders.load(path)


def test_multipage_tiff_refused(tmp_path, loaders):
    path = tmp_path / "stack.tif"
    frames = [Image.fromarray(_grey()), Image.fromarray(_grey()[::-1])]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(LoaderError, match="multi-page"):
        loaders.load(path)


def test_memory_limit_refused_before_decoding(tmp_path, loaders):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((512, 512), np.uint8)).save(path)
    with pytest.raises(LoaderError, match="memory"):
        loaders.load(path, LoadOptions(max_bytes=10_000))
