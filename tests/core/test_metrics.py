"""core.metrics: overlap and surface metrics, cross-checked against brute-force point-set distances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from liverseg_studio.core import metrics as M


def _surface_points_bruteforce(mask: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Surface voxels by explicit neighbour checks (no erosion), as mm coordinates."""
    m = np.pad(mask.astype(bool), 1, constant_values=False)
    core = m[tuple(slice(1, -1) for _ in range(mask.ndim))]
    border = np.zeros_like(core)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            sl = [slice(1, -1)] * mask.ndim
            sl[axis] = slice(1 + step, m.shape[axis] - 1 + step)
            border |= core & ~m[tuple(sl)]
    return np.argwhere(border) * np.asarray(spacing)


def _reference(pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...]) -> tuple[float, float]:
    """(HD95, ASSD) from k-d tree nearest neighbours between surface point sets (independent implementation)."""
    ps, ts = _surface_points_bruteforce(pred, spacing), _surface_points_bruteforce(truth, spacing)
    d_pt = cKDTree(ts).query(ps)[0]
    d_tp = cKDTree(ps).query(ts)[0]
    hd = max(np.percentile(d_pt, 95), np.percentile(d_tp, 95))
    return float(hd), float((d_pt.mean() + d_tp.mean()) / 2)


def _blobs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    from scipy import ndimage as ndi

    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma=2.0)
    return f > np.percentile(f, 70)


@pytest.mark.parametrize("seed", range(6))
def test_surface_distances_match_kdtree_reference_2d_and_3d(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (9, 30, 34) if seed % 2 else (48, 40)
    spacing = (2.5, 0.7, 0.9) if len(shape) == 3 else (0.8, 1.3)
    pred, truth = _blobs(rng, shape), _blobs(rng, shape)
    hd_ref, assd_ref = _reference(pred, truth, spacing)
    assert M.hd95(pred, truth, spacing) == pytest.approx(hd_ref, rel=1e-9, abs=1e-9)
    assert M.assd(pred, truth, spacing) == pytest.approx(assd_ref, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_overlap_metrics_match_set_definitions(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    pred = rng.random((20, 25)) < 0.4
    truth = rng.random((20, 25)) < 0.3
    P = {tuple(i) for i in np.argwhere(pred)}
    T = {tuple(i) for i in np.argwhere(truth)}
    inter, union = len(P & T), len(P | T)
    assert M.dice(pred, truth) == pytest.approx(2 * inter / (len(P) + len(T)))
    assert M.jaccard(pred, truth) == pytest.approx(inter / union)
    assert M.precision(pred, truth) == pytest.approx(inter / len(P))
    assert M.recall(pred, truth) == pytest.approx(inter / len(T))
    assert M.f1(pred, truth) == pytest.approx(M.dice(pred, truth))  # F1 equals Dice for binary masks
    assert M.rvd(pred, truth) == pytest.approx((len(P) - len(T)) / len(T))
    assert M.pixel_accuracy(pred, truth) == pytest.approx(float((pred == truth).mean()))
    row = M.binary_metrics(pred, truth, (1.0, 1.0))
    assert row["dice"] == pytest.approx(M.dice(pred, truth))
    assert row["hd95"] == pytest.approx(M.hd95(pred, truth))


def test_perfect_prediction() -> None:
    rng = np.random.default_rng(3)
    truth = _blobs(rng, (6, 32, 32))
    row = M.binary_metrics(truth.copy(), truth, (3.0, 0.7, 0.7))
    assert row["dice"] == 1.0 and row["jaccard"] == 1.0
    assert row["hd95"] == 0.0 and row["assd"] == 0.0
    assert row["rvd"] == 0.0 and row["pixel_accuracy"] == 1.0


@pytest.mark.parametrize("k,dy", [(1, 1.0), (3, 1.0), (4, 0.7)])
def test_known_shift_gives_the_analytic_hd95(k: int, dy: float) -> None:
    # a slab spanning the whole width, shifted by k rows: every surface point of the
    # shifted edges lies exactly k rows from the other mask's edge, so HD95 = k * dy
    truth = np.zeros((60, 200), dtype=bool)
    truth[20:35] = True
    pred = np.roll(truth, k, axis=0)
    assert M.hd95(pred, truth, (dy, 1.0)) == pytest.approx(k * dy)
    assert M.hd95(pred, truth) == pytest.approx(float(k))
    # and the reference agrees
    assert _reference(pred, truth, (dy, 1.0))[0] == pytest.approx(k * dy)
    assert M.dice(pred, truth) == pytest.approx((15 - k) / 15)


def test_empty_mask_convention() -> None:
    z = np.zeros((8, 8), bool)
    one = z.copy()
    one[2:4, 2:4] = True
    both_empty = M.binary_metrics(z, z)
    assert all(both_empty[k] is None for k in ("dice", "jaccard", "precision", "recall", "f1", "rvd", "assd", "hd95"))
    assert both_empty["pixel_accuracy"] == 1.0
    missed = M.binary_metrics(z, one)  # nothing predicted
    assert missed["dice"] == 0.0 and missed["recall"] == 0.0 and missed["precision"] is None
    assert missed["hd95"] is None and missed["rvd"] == -1.0
    false_pos = M.binary_metrics(one, z)  # truth empty
    assert false_pos["dice"] == 0.0 and false_pos["recall"] is None and false_pos["rvd"] is None
    assert "undefined" in M.EMPTY_CONVENTION


def test_shape_and_spacing_errors() -> None:
    with pytest.raises(ValueError):
        M.dice(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError):
        M.hd95(np.ones((3, 3)), np.ones((3, 3)), (1.0,))
    with pytest.raises(ValueError):
        M.hd95(np.ones((3, 3)), np.ones((3, 3)), (1.0, 0.0))
