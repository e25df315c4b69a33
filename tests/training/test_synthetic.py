"""Synthetic tumour painter: lesions only inside liver, 20-80 HU darker, labelled 2."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from liverseg_studio.training.synthetic import TumourConfig, paint_tumours


def _slice(seed: int = 0, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((size, size))
    hu = np.full((size, size), -1000.0, np.float32)
    lab = np.zeros((size, size), np.uint8)
    body = (yy - size / 2) ** 2 / (0.45 * size) ** 2 + (xx - size / 2) ** 2 / (0.47 * size) ** 2 <= 1
    hu[body] = 0.0
    liver = ((yy - 0.45 * size) / (0.22 * size)) ** 2 + ((xx - 0.38 * size) / (0.2 * size)) ** 2 <= 1
    hu[liver] = 100.0
    lab[liver] = 1
    hu += rng.normal(0, 5, hu.shape).astype(np.float32)
    return hu, lab


@pytest.mark.parametrize("seed", range(12))
def test_lesions_inside_liver_darker_and_labelled(seed: int) -> None:
    hu, lab = _slice(seed)
    hu0, lab0 = hu.copy(), lab.copy()
    cfg = TumourConfig(rim_probability=0.0)
    out_hu, out_lab, lesions = paint_tumours(hu, lab, np.random.default_rng(seed), cfg, n_lesions=1)
    # inputs untouched
    assert np.array_equal(hu, hu0) and np.array_equal(lab, lab0)
    liver = lab >= 1
    changed = out_hu != hu
    assert changed.any()
    assert not (changed & ~liver).any(), "HU changed outside the liver"
    assert not ((out_lab == 2) & ~liver).any(), "tumour label outside the liver"
    assert np.array_equal(out_lab[~liver], lab[~liver])
    assert set(np.unique(out_lab)) <= {0, 1, 2} and (out_lab == 2).any()
    (les,) = lesions
    assert 20.0 <= les.darker_hu <= 80.0
    # the lesion interior (away from the soft edge) is darker than the liver by about delta
    interior = ndi.binary_erosion(out_lab == 2, iterations=2)
    if interior.sum() >= 10:
        drop = np.median((hu - out_hu)[interior])
        assert les.darker_hu - 8 <= drop <= les.darker_hu + 8
        assert 15.0 <= drop <= 88.0


def test_rim_is_part_of_the_lesion_and_stays_in_liver() -> None:
    hu, lab = _slice(3)
    cfg = TumourConfig(rim_probability=1.0)
    out_hu, out_lab, lesions = paint_tumours(hu, lab, np.random.default_rng(1), cfg, n_lesions=2)
    assert lesions and all(l.rim for l in lesions)
    assert not ((out_hu != hu) & (lab == 0)).any()
    assert not ((out_lab == 2) & (lab == 0)).any()
    assert (out_hu > hu + 5).any(), "an enhancing rim brightens some liver pixels"


def test_small_or_missing_liver_is_left_alone() -> None:
    hu, lab = _slice(0)
    empty = np.zeros_like(lab)
    out_hu, out_lab, lesions = paint_tumours(hu, empty, np.random.default_rng(0))
    assert lesions == [] and np.array_equal(out_hu, hu) and not out_lab.any()
    tiny = np.zeros_like(lab)
    tiny[10:14, 10:14] = 1
    assert paint_tumours(hu, tiny, np.random.default_rng(0))[2] == []
