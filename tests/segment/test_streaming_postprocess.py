"""Streaming post-processing (crop + in-place rewrite) equals ``postprocess_labels`` bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from liverseg_studio.core.components import liver_components
from liverseg_studio.core.postprocess import postprocess_labels
from liverseg_studio.segment.streaming import postprocess_in_place


def _random_labels(rng: np.random.Generator, shape=(40, 48, 56)) -> np.ndarray:
    """A liver-ish blob, islands of liver and tumour, tumour-only blobs, some touching slab borders."""
    z, y, x = shape
    lab = np.zeros(shape, np.uint8)
    zz, yy, xx = np.ogrid[:z, :y, :x]
    cz, cy, cx = rng.uniform(0.3, 0.7) * z, rng.uniform(0.3, 0.7) * y, rng.uniform(0.3, 0.7) * x
    r = rng.uniform(0.15, 0.3)
    liver = ((zz - cz) / (r * z)) ** 2 + ((yy - cy) / (r * y)) ** 2 + ((xx - cx) / (r * x)) ** 2 <= 1
    lab[liver] = 1
    for _ in range(rng.integers(0, 4)):  # tumours inside the liver
        tz, ty, tx = (int(v) for v in np.argwhere(liver)[rng.integers(0, liver.sum())])
        rr = rng.integers(1, 4)
        lab[max(0, tz - rr) : tz + rr, max(0, ty - rr) : ty + rr, max(0, tx - rr) : tx + rr] = 2
    noise = rng.random(shape)
    lab[noise < rng.uniform(0.0, 0.01)] = 1  # speckle islands
    lab[noise > 1 - rng.uniform(0.0, 0.004)] = 2  # tumour-only specks
    for _ in range(rng.integers(0, 4)):  # blocks (some as big as the liver: ties, tumour-only winners)
        a = [int(rng.integers(0, s - 4)) for s in shape]
        d = [int(rng.integers(2, max(3, s // 3))) for s in shape]
        lab[a[0] : a[0] + d[0], a[1] : a[1] + d[1], a[2] : a[2] + d[2]] = rng.choice([1, 2])
    return lab


def _check(lab: np.ndarray, spacing, min_mm3: float) -> None:
    expected, report = postprocess_labels(lab, spacing, min_component_mm3=min_mm3, return_report=True)
    work = lab.copy()
    raw, report2 = postprocess_in_place(work, spacing, min_component_mm3=min_mm3)
    np.testing.assert_array_equal(work, expected)
    assert report2 == report
    np.testing.assert_array_equal(np.asarray(raw), lab)
    for k in (0, lab.shape[0] // 2, lab.shape[0] - 1):
        np.testing.assert_array_equal(raw[k], lab[k])


@pytest.mark.parametrize("seed", range(40))
def test_streaming_postprocess_matches_whole_volume(seed):
    rng = np.random.default_rng(seed)
    lab = _random_labels(rng)
    spacing = None if seed % 3 == 0 else (float(rng.uniform(0.5, 3)), 0.7, 0.7)
    _check(lab, spacing, float(rng.choice([0.0, 5.0, 100.0, 2000.0])))


def test_equal_sized_components_keep_the_first_in_raster_order():
    lab = np.zeros((30, 20, 20), np.uint8)
    lab[20:24, 2:6, 2:6] = 1  # later in z
    lab[2:6, 10:14, 10:14] = 1  # first in raster order: kept
    lab[3, 12, 12] = 2
    _check(lab, None, 0.0)
    work = lab.copy()
    postprocess_in_place(work, None, min_component_mm3=0.0)
    assert work[2:6].any() and not work[20:24].any()


def test_tumour_only_largest_component_loses_to_liver():
    lab = np.zeros((30, 20, 20), np.uint8)
    lab[1:20, 1:10, 1:10] = 2  # the largest, tumour only
    lab[25:28, 12:15, 12:15] = 1
    _check(lab, None, 0.0)


def test_component_joined_across_many_slabs_and_empty_volume():
    lab = np.zeros((50, 16, 16), np.uint8)
    lab[:, 8, 8] = 1  # one thin component through every slab
    lab[::7, 2, 2] = 1  # islands in several slabs
    _check(lab, None, 0.0)
    _check(np.zeros((5, 16, 16), np.uint8), None, 100.0)


@pytest.mark.parametrize("seed", range(10))
def test_components_count_and_kept_size_match_scipy(seed):
    rng = np.random.default_rng(100 + seed)
    lab = _random_labels(rng, shape=(33, 30, 31))
    comp, n = ndimage.label(lab >= 1, structure=ndimage.generate_binary_structure(3, 1))
    for slab in (1, 3, 8, 64):
        s = liver_components(lab, slab=slab)
        assert s is not None and s.n_components == n
        assert s.foreground_voxels == int(np.count_nonzero(lab))
        sizes = np.bincount(comp.ravel())[1:]
        assert s.kept_voxels in set(sizes.tolist())


def test_memory_is_slabs_and_the_liver_crop_not_the_volume():
    """Islands all over a long volume, the liver in a small box: no whole-volume temporaries."""
    import tracemalloc

    rng = np.random.default_rng(7)
    lab = np.zeros((600, 64, 64), np.uint8)
    lab[rng.random(lab.shape) < 0.0003] = 1  # false-positive islands everywhere
    lab[270:290, 20:40, 20:40] = 1
    lab[275:280, 25:30, 25:30] = 2
    expected = postprocess_labels(lab, None, min_component_mm3=0.0)
    work = lab.copy()
    tracemalloc.start()
    raw, _ = postprocess_in_place(work, None, min_component_mm3=0.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(work, expected)
    np.testing.assert_array_equal(np.asarray(raw), lab)
    # whole-volume post-processing needs several label volumes (uint8 copy, int32 labels ...)
    assert peak < 0.5 * lab.nbytes, f"peak {peak} bytes for a {lab.nbytes}-byte label volume"


@pytest.mark.parametrize("seed", range(12))
def test_dense_speckle_diagonal_contacts_across_slab_borders(seed):
    """Dense random liver/tumour voxels: many components joined (or flagged) only diagonally
    across the slab borders of the streaming passes (every 8 slices)."""
    rng = np.random.default_rng(1000 + seed)
    shape = (int(rng.integers(9, 34)), 12, 13)
    r = rng.random(shape)
    lab = np.zeros(shape, np.uint8)
    p_liver, p_tumour = rng.uniform(0.05, 0.3), rng.uniform(0.02, 0.2)
    lab[r < p_liver] = 1
    lab[(r >= p_liver) & (r < p_liver + p_tumour)] = 2
    _check(lab, None, float(rng.choice([0.0, 2.0, 4.0, 30.0])))
