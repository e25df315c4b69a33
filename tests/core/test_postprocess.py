"""3D post-processing: largest liver component, tumour only in/at the liver, small components."""

from __future__ import annotations

import time

import numpy as np
import pytest

from liverseg_studio.core.postprocess import postprocess_labels


def _liver_block(shape=(20, 64, 64)) -> np.ndarray:
    lab = np.zeros(shape, dtype=np.uint8)
    lab[4:16, 10:40, 10:40] = 1
    return lab


def test_removes_distant_liver_island_and_keeps_the_liver():
    lab = _liver_block()
    lab[8:12, 20:26, 20:26] = 2  # tumour inside
    lab[1:3, 55:60, 55:60] = 1  # distant island (50 voxels)
    out, rep = postprocess_labels(lab, (1.0, 1.0, 1.0), min_component_mm3=10, return_report=True)
    assert not out[1:3, 55:60, 55:60].any()
    np.testing.assert_array_equal(out[4:16, 10:40, 10:40], lab[4:16, 10:40, 10:40])
    assert rep.removed_liver_islands == 1 and rep.removed_island_voxels == 50


def test_island_made_of_liver_and_tumour_is_removed_as_a_whole():
    lab = _liver_block()
    lab[1:3, 50:60, 50:60] = 1
    lab[1:3, 54:56, 54:56] = 2
    out = postprocess_labels(lab, (1.0, 1.0, 1.0), min_component_mm3=1)
    assert not out[1:3, 50:60, 50:60].any()


def test_tumour_outside_the_liver_is_removed_but_touching_tumour_kept():
    lab = _liver_block()
    lab[8:12, 40:46, 20:26] = 2  # just outside the liver (which ends at y=39): touching it
    lab[8:12, 20:26, 42:46] = 2  # one voxel gap (x=40, 41 empty): not touching
    lab[0:2, 55:62, 55:62] = 2  # a tumour blob far away, no liver near it
    out, rep = postprocess_labels(lab, (1.0, 1.0, 1.0), min_component_mm3=1, return_report=True)
    assert (out[8:12, 40:46, 20:26] == 2).all()
    assert not out[8:12, 20:26, 42:46].any()
    assert not out[0:2, 55:62, 55:62].any()
    np.testing.assert_array_equal(out[4:16, 10:40, 10:40], 1)


def test_the_kept_component_is_the_largest_one_holding_liver():
    lab = np.zeros((10, 30, 30), dtype=np.uint8)
    lab[2:8, 2:12, 2:12] = 2  # a big tumour-only blob
    lab[2:6, 20:26, 20:26] = 1  # a smaller liver: the liver wins because it holds liver
    out, rep = postprocess_labels(lab, None, min_component_mm3=0, return_report=True)
    assert not (out == 2).any()
    assert (out[2:6, 20:26, 20:26] == 1).all()
    assert rep.removed_liver_islands == 1


def test_small_tumours_become_liver_large_ones_stay():
    lab = _liver_block()
    lab[6:8, 12:14, 12:14] = 2  # 8 voxels of 2 mm^3 = 16 mm^3
    lab[8:14, 20:30, 20:30] = 2  # 600 voxels
    out, rep = postprocess_labels(lab, (2.0, 1.0, 1.0), min_component_mm3=100, return_report=True)
    assert (out[6:8, 12:14, 12:14] == 1).all()
    assert (out[8:14, 20:30, 20:30] == 2).all()
    assert rep.small_tumours_relabelled == 1 and rep.small_tumour_voxels_relabelled == 8


def test_threshold_is_voxels_when_spacing_unknown():
    lab = _liver_block()
    lab[6:8, 12:14, 12:14] = 2  # 8 voxels
    kept = postprocess_labels(lab, None, min_component_mm3=8)
    dropped = postprocess_labels(lab, None, min_component_mm3=9)
    assert (kept[6:8, 12:14, 12:14] == 2).all()
    assert (dropped[6:8, 12:14, 12:14] == 1).all()
    # with a real spacing of 0.1 mm^3 per voxel, 8 voxels are only 0.8 mm^3
    tiny = postprocess_labels(lab, (0.1, 1.0, 1.0), min_component_mm3=8)
    assert (tiny[6:8, 12:14, 12:14] == 1).all()


def test_liver_smaller_than_threshold_leaves_nothing():
    lab = np.zeros((5, 10, 10), dtype=np.uint8)
    lab[2, 4:6, 4:6] = 1
    assert not postprocess_labels(lab, (1.0, 1.0, 1.0), min_component_mm3=5).any()
    assert postprocess_labels(lab, (1.0, 1.0, 1.0), min_component_mm3=4).sum() == 4


def test_input_is_not_modified_and_empty_is_fine():
    lab = _liver_block()
    lab[0:2, 60:63, 60:63] = 1
    before = lab.copy()
    out = postprocess_labels(lab, (1.0, 1.0, 1.0), min_component_mm3=1)
    np.testing.assert_array_equal(lab, before)
    assert out is not lab and out.dtype == np.uint8
    empty = np.zeros((3, 4, 5), dtype=np.uint8)
    np.testing.assert_array_equal(postprocess_labels(empty), empty)


def test_components_are_3d_face_connected():
    lab = np.zeros((6, 20, 20), dtype=np.uint8)
    lab[0:3, 2:10, 2:10] = 1  # big part
    lab[3:6, 2:4, 2:4] = 1  # continues through the faces of slice 2 -> 3: same component
    lab[3, 11, 11] = 0
    out = postprocess_labels(lab, (1.0, 1.0, 1.0), min_component_mm3=0)
    np.testing.assert_array_equal(out, lab)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        postprocess_labels(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError):
        postprocess_labels(np.zeros((2, 4, 4), dtype=np.uint8), min_component_mm3=-1)


@pytest.mark.slow
def test_speed_on_a_512x512x200_prediction():
    """Benchmark (prints the time; asserts correctness only)."""
    rng = np.random.default_rng(0)
    lab = np.zeros((200, 512, 512), dtype=np.uint8)
    z, y, x = np.ogrid[:200, :512, :512]
    liver = ((z - 100) / 70.0) ** 2 + ((y - 250) / 150.0) ** 2 + ((x - 200) / 130.0) ** 2 <= 1
    lab[liver] = 1
    tum = ((z - 100) / 12.0) ** 2 + ((y - 250) / 30.0) ** 2 + ((x - 200) / 30.0) ** 2 <= 1
    lab[tum] = 2
    # speckle: isolated false-positive liver voxels far from the liver (x >= 400)
    # and isolated tumour voxels inside the liver, away from the tumour
    zs, ys, xs = rng.integers(0, 200, 5000), rng.integers(0, 512, 5000), rng.integers(400, 512, 5000)
    lab[zs, ys, xs] = 1
    zt, yt, xt = rng.integers(80, 120, 300), rng.integers(200, 300, 300), rng.integers(100, 160, 300)
    inside = liver[zt, yt, xt] & ~tum[zt, yt, xt]
    lab[zt[inside], yt[inside], xt[inside]] = 2
    t0 = time.perf_counter()
    out = postprocess_labels(lab, (1.0, 0.8, 0.8), min_component_mm3=100)
    elapsed = time.perf_counter() - t0
    print(f"\npostprocess 512x512x200: {elapsed:.2f} s")
    np.testing.assert_array_equal(out >= 1, liver | tum)
    np.testing.assert_array_equal(out == 2, tum)


def test_properties_on_random_label_maps():
    """Invariants on random blobs: nothing is added, one component is left, every
    tumour touches liver, and post-processing is idempotent."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
    from scipy import ndimage

    full = np.ones((3, 3, 3), dtype=bool)

    @settings(max_examples=60, deadline=None)
    @given(
        arrays(np.uint8, (4, 9, 9), elements=st.sampled_from([0, 0, 0, 1, 1, 2])),
        st.sampled_from([0.0, 2.0, 6.0]),
    )
    def check(lab, threshold):
        out = postprocess_labels(lab, None, min_component_mm3=threshold)
        assert np.all((out >= 1) <= (lab >= 1))  # nothing added
        assert np.all((out == 2) <= (lab == 2))  # no new tumour
        _, n = ndimage.label(out >= 1, structure=ndimage.generate_binary_structure(3, 1))
        assert n <= 1
        tcomp, tn = ndimage.label(out == 2, structure=full)
        near_liver = ndimage.binary_dilation(out == 1, structure=full)
        for i in range(1, tn + 1):
            assert np.any(near_liver & (tcomp == i))
            assert np.count_nonzero(tcomp == i) >= threshold
        np.testing.assert_array_equal(postprocess_labels(out, None, min_component_mm3=threshold), out)

    check()


def test_tumour_decisions_equal_a_per_component_brute_force():
    """Issue 13: one maximum filter decides "touches liver" for all tumours; the same as dilating each."""
    from scipy import ndimage

    full = np.ones((3, 3, 3), dtype=bool)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        lab = np.zeros((12, 40, 40), dtype=np.uint8)
        lab[2:10, 8:30, 8:30] = 1  # one liver component
        blobs = ndimage.gaussian_filter(rng.normal(size=lab.shape), 1.2) > 0.12
        lab[blobs & (lab == 1)] = 2  # tumours inside
        # tumours attached by a face outside the liver, and others a voxel away (separate components)
        lab[4:6, 30, 10:14] = 2
        lab[5, 32:34, 20:23] = 2
        lab[6:8, 8:30, 31:33] = 0
        for threshold in (0.0, 3.0, 20.0):
            out = postprocess_labels(lab, None, min_component_mm3=threshold)
            expected = lab.copy()
            comp6, n6 = ndimage.label(lab >= 1, structure=ndimage.generate_binary_structure(3, 1))
            sizes = np.bincount(comp6.ravel())
            sizes[0] = 0
            expected[comp6 != int(np.argmax(sizes))] = 0
            tcomp, tn = ndimage.label(expected == 2, structure=full)
            for i in range(1, tn + 1):
                m = tcomp == i
                if not np.any(ndimage.binary_dilation(m, structure=full) & (expected == 1)):
                    expected[m] = 0
                elif np.count_nonzero(m) < threshold:
                    expected[m] = 1
            np.testing.assert_array_equal(out, expected)
