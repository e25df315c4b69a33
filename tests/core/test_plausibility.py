"""core.plausibility: does a sample of voxels look like CT in HU?"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.phantom import make_phantom
from liverseg_studio.core.plausibility import check_ct_intensities, sample_voxels


@pytest.fixture(scope="module")
def ct() -> np.ndarray:
    hu = make_phantom(shape=(8, 96, 96), noise=10.0).hu.copy()
    hu[:, 44:52, 44:52] = 700.0  # a spine: bone above 300 HU
    return hu


def test_ct_in_hu_is_plausible(ct):
    check = check_ct_intensities(sample_voxels(ct))
    assert check.verdict == "hu" and check.plausible
    assert check.air_fraction > 0.1 and check.soft_fraction > 0.3 and check.bone_fraction > 0.0


def test_scaled_0_to_1_is_not_hu(ct):
    scaled = (ct - ct.min()) / (ct.max() - ct.min())
    check = check_ct_intensities(sample_voxels(scaled))
    assert check.verdict == "not_hu" and not check.plausible
    assert "values 0 .. 1" in check.describe()


def test_z_scored_is_not_hu(ct):
    assert check_ct_intensities((ct - ct.mean()) / ct.std()).verdict == "not_hu"


def test_eight_bit_grey_is_not_hu(ct):
    grey = np.clip((ct + 160) / 400 * 255, 0, 255).round()
    grey[grey == 0] = 1  # not a label map: many values
    assert check_ct_intensities(grey).verdict == "not_hu"


def test_unsigned_plus_1024_is_recognised(ct):
    check = check_ct_intensities(ct + 1024)
    assert check.verdict == "offset_1024" and not check.plausible
    assert "1024" in check.describe()


def test_label_map_and_small_or_constant_samples_are_not_judged(ct):
    labels = make_phantom(shape=(8, 96, 96)).labels
    assert check_ct_intensities(labels).verdict == "labels"
    assert check_ct_intensities(np.zeros((4, 96, 96))).verdict == "unknown"
    assert check_ct_intensities(np.linspace(0, 1, 300)).verdict == "unknown"


def test_sample_reads_only_a_few_slices():
    from liverseg_studio.core.slices import ArraySource, LazyArray

    src = ArraySource(np.zeros((100, 512, 512), np.float32))
    values = sample_voxels(LazyArray(src), n_slices=12, step=4)
    assert src.slices_read == 12 and values.size == 12 * 128 * 128
