"""Volumetry: mL, tumour burden, lesion table; voxel counts when the spacing is unknown."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liverseg_studio.core.volume import Volume
from liverseg_studio.core.volumetry import compute_stats, longest_axial_diameter


def _volume(labels: np.ndarray, spacing=(2.0, 0.5, 0.8), known=True) -> Volume:
    dz, dy, dx = spacing
    affine = np.diag([-dx, -dy, dz, 1.0])
    affine[:3, 3] = (10.0, -20.0, 30.0)
    return Volume(array=np.zeros(labels.shape, dtype=np.int16), affine=affine, spacing_known=known)


def test_box_volumes_and_burden():
    lab = np.zeros((10, 40, 50), dtype=np.uint8)
    lab[2:8, 5:35, 5:45] = 1  # 6 * 30 * 40 = 7200 voxels
    lab[3:5, 10:20, 10:20] = 2  # 200 voxels inside
    st = compute_stats(lab, _volume(lab))
    vox = 2.0 * 0.5 * 0.8
    assert st.liver_voxels == 7200 and st.tumour_voxels == 200
    assert st.liver_ml == pytest.approx(7200 * vox / 1000)
    assert st.tumour_ml == pytest.approx(200 * vox / 1000)
    assert st.tumour_burden_percent == pytest.approx(100 * 200 / 7200)
    assert st.liver_slices == 6
    assert st.n_lesions == 1
    les = st.lesions[0]
    assert les.voxels == 200 and les.volume_ml == pytest.approx(200 * vox / 1000)
    assert les.centroid_slice in (3, 4) and les.centroid_zyx[1] == pytest.approx(14.5)
    # 10 rows x 0.5 mm by 10 columns x 0.8 mm: within a pixel of the 5 mm x 8 mm diagonal
    assert les.longest_axial_diameter_mm == pytest.approx(_rect_diameter(10, 10, 0.5, 0.8), rel=1e-9)
    assert abs(les.longest_axial_diameter_mm - np.hypot(5.0, 8.0)) < 0.8
    assert st.note == ""
    json.dumps(st.to_json())  # JSON-ready


def test_lesions_are_26_connected_sorted_by_volume():
    lab = np.zeros((12, 40, 40), dtype=np.uint8)
    lab[:, 2:38, 2:38] = 1
    lab[1:3, 5:7, 5:7] = 2  # lesion A, 8 voxels
    lab[3, 7, 7] = 2  # touches A by a corner only: still A (26-connectivity)
    lab[6:10, 20:30, 20:30] = 2  # lesion B, 400 voxels
    st = compute_stats(lab, _volume(lab, (1.0, 1.0, 1.0)))
    assert [les.voxels for les in st.lesions] == [400, 9]
    assert [les.id for les in st.lesions] == [1, 2]
    assert st.lesions[0].centroid_slice in (7, 8)
    assert st.lesions[0].longest_axial_diameter_mm == pytest.approx(_rect_diameter(10, 10, 1.0, 1.0))


def test_disc_diameter_matches_within_a_pixel():
    r_mm, dy, dx = 12.0, 0.7, 0.7
    n = 80
    yy, xx = np.mgrid[:n, :n]
    disc = ((yy - 40) * dy) ** 2 + ((xx - 40) * dx) ** 2 <= r_mm**2
    mask = np.zeros((3, n, n), dtype=bool)
    mask[1] = disc
    mm, px, k = longest_axial_diameter(mask, (dy, dx))
    assert k == 1
    assert mm == pytest.approx(2 * r_mm, abs=dx)
    assert px == pytest.approx(mm / dx)


def test_single_pixel_is_one_pixel_across():
    mask = np.zeros((1, 5, 5), dtype=bool)
    mask[0, 2, 2] = True
    mm, px, _ = longest_axial_diameter(mask, (0.5, 0.5))
    assert px == pytest.approx(1.0) and mm == pytest.approx(0.5)


def _rect_diameter(h: int, w: int, dy: float, dx: float) -> float:
    """Edge-midpoint diameter of an h x w pixel rectangle: corner pixel edge midpoints."""
    return max(np.hypot(h * dy, (w - 1) * dx), np.hypot((h - 1) * dy, w * dx))


def test_unknown_spacing_reports_voxels_only():
    lab = np.zeros((1, 30, 30), dtype=np.uint8)
    lab[0, 5:25, 5:25] = 1
    lab[0, 10:14, 10:16] = 2
    vol = Volume(array=np.zeros((1, 30, 30), dtype=np.uint8), intensity="display8", spacing_known=False)
    st = compute_stats(lab, vol)
    assert st.liver_ml is None and st.tumour_ml is None
    assert st.liver_voxels == 400 and st.tumour_voxels == 24
    assert st.tumour_burden_percent == pytest.approx(6.0)
    assert st.lesions[0].volume_ml is None and st.lesions[0].longest_axial_diameter_mm is None
    assert st.lesions[0].longest_axial_diameter_px == pytest.approx(_rect_diameter(4, 6, 1.0, 1.0))
    assert "pixel areas" in st.note and "mL" in st.note
    d = st.to_json()
    assert d["liver_ml"] is None and d["spacing_mm_zyx"] is None


def test_no_liver_no_burden_and_shape_checks():
    lab = np.zeros((2, 4, 4), dtype=np.uint8)
    st = compute_stats(lab, _volume(lab))
    assert st.liver_ml == 0.0 and st.tumour_burden_percent is None and st.lesions == ()
    with pytest.raises(ValueError):
        compute_stats(np.zeros((2, 4, 5), dtype=np.uint8), _volume(lab))
    with pytest.raises(ValueError):
        compute_stats(np.zeros((4, 5), dtype=np.uint8))


def test_spacing_argument_without_volume():
    lab = np.ones((2, 10, 10), dtype=np.uint8)
    assert compute_stats(lab, spacing=(5.0, 1.0, 1.0)).liver_ml == pytest.approx(1.0)
    assert compute_stats(lab).liver_ml is None


# -- issue 13: fast diameters give the same results as the exhaustive search --------------
def _reference_diameter(mask_zyx, pixel_spacing_yx=(1.0, 1.0)):
    """The previous implementation: every boundary pixel's four edge midpoints, every slice."""
    from scipy import ndimage
    from scipy.spatial import ConvexHull

    mids = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, -0.5], [0.0, 0.5]])
    scale = np.array(pixel_spacing_yx, dtype=float)
    best = (0.0, 0.0, 0)
    for k in range(mask_zyx.shape[0]):
        sl = np.asarray(mask_zyx[k], dtype=bool)
        if not sl.any():
            continue
        yx = np.argwhere(sl & ~ndimage.binary_erosion(sl)).astype(np.float64)
        pts = np.unique((yx[:, None, :] + mids[None]).reshape(-1, 2) * scale, axis=0)
        if len(pts) > 8:
            try:
                pts = pts[ConvexHull(pts).vertices]
            except Exception:  # noqa: BLE001
                pass
        d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
        d = float(np.sqrt(d2[i, j]))
        if d > best[0]:
            best = (d, float(np.linalg.norm((pts[i] - pts[j]) / scale)), k)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_fast_diameter_equals_exhaustive_search(seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 6)), int(rng.integers(3, 60)), int(rng.integers(3, 60)))
    # blobby random lesions (smoothed noise), holes and several pieces included
    noise = ndimage.gaussian_filter(rng.normal(size=shape), sigma=(0.5, 3.0, 3.0))
    mask = noise > np.quantile(noise, rng.uniform(0.5, 0.97))
    spacing = (1.0, 1.0) if seed % 3 == 0 else (float(rng.uniform(0.4, 2.0)), float(rng.uniform(0.4, 2.0)))
    mm, px, k = longest_axial_diameter(mask, spacing)
    rmm, rpx, rk = _reference_diameter(mask, spacing)
    assert mm == pytest.approx(rmm, rel=1e-12, abs=1e-12)
    assert px == pytest.approx(rpx, rel=1e-9)
    assert k == rk


def test_diameter_ties_go_to_the_first_slice_and_lines_work():
    mask = np.zeros((4, 20, 20), dtype=bool)
    mask[1, 5:9, 5:9] = True
    mask[3, 5:9, 5:9] = True  # the same square again: slice 1 wins
    mask[2, 10, 2:6] = True  # a 4-pixel line (collinear row ends)
    assert longest_axial_diameter(mask)[2] == 1
    line = np.zeros((1, 9, 9), dtype=bool)
    line[0, 2:7, 4] = True  # vertical line of 5 pixels: 5 pixels across
    mm, px, _ = longest_axial_diameter(line, (2.0, 1.0))
    assert mm == pytest.approx(10.0) and px == pytest.approx(5.0)


def test_lesion_table_of_many_large_lesions_takes_milliseconds():
    """Measured, not a timed assertion: prints the time for 40 lesions of ~30 slices on 512 x 512."""
    import time

    lab = np.zeros((60, 512, 512), dtype=np.uint8)
    lab[:, 20:500, 20:500] = 1
    zz, yy, xx = np.mgrid[:60, :512, :512]
    rng = np.random.default_rng(0)
    for _ in range(40):
        cz, cy, cx = rng.integers(10, 50), rng.integers(60, 450), rng.integers(60, 450)
        r = rng.uniform(5, 25)
        lab[((zz - cz) * 2.0) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 2
    del zz, yy, xx
    t = time.perf_counter()
    st = compute_stats(lab, spacing=(2.0, 0.7, 0.7))
    dt = time.perf_counter() - t
    print(f"\nvolumetry of {st.n_lesions} lesions on 60x512x512: {dt * 1000:.0f} ms")
    assert st.n_lesions >= 1 and all(les.longest_axial_diameter_mm > 0 for les in st.lesions)


def test_lesion_centroids_equal_scipy_center_of_mass():
    from scipy import ndimage

    rng = np.random.default_rng(5)
    lab = np.zeros((8, 50, 60), dtype=np.uint8)
    lab[:, 5:45, 5:55] = 1
    lab[ndimage.gaussian_filter(rng.normal(size=lab.shape), 1.5) > 0.15] = 2
    st = compute_stats(lab, spacing=(2.0, 1.0, 1.0))
    comp, n = ndimage.label(lab == 2, structure=np.ones((3, 3, 3), bool))
    expected = sorted((tuple(ndimage.center_of_mass(comp == i)) for i in range(1, n + 1)))
    got = sorted(les.centroid_zyx for les in st.lesions)
    assert len(got) == n > 1
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=0, atol=1e-9)


def test_convex_hull_keeps_the_farthest_pair_of_any_point_set():
    from liverseg_studio.core.volumetry import _farthest_pair, convex_hull_2d

    rng = np.random.default_rng(3)
    for n in (3, 9, 50, 400):
        for _ in range(20):
            pts = rng.normal(size=(n, 2)) * rng.uniform(0.5, 20.0, size=2)
            if rng.random() < 0.3:
                pts = np.round(pts)  # duplicates and collinear runs, as pixel edges give
            hull = convex_hull_2d(pts)
            # every point lies inside or on the hull (counter-clockwise: cross products >= 0)
            a, b = hull, np.roll(hull, -1, axis=0)
            cross = (b[:, 0] - a[:, 0])[:, None] * (pts[None, :, 1] - a[:, None, 1]) - (b[:, 1] - a[:, 1])[:, None] * (
                pts[None, :, 0] - a[:, None, 0]
            )
            assert (cross >= -1e-9).all()
            d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
            assert _farthest_pair(pts)[0] == pytest.approx(float(np.sqrt(d2.max())))
    line = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]] * 3)
    assert _farthest_pair(line)[0] == pytest.approx(np.sqrt(18.0))
