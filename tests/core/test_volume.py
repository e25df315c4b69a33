"""Volume invariants, spacing from the affine, Label, HU mapping."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.phantom import make_phantom
from liverseg_studio.core.volume import (
    DEFAULT_HU_RANGE,
    Intensity,
    Label,
    Volume,
    empty_label_map,
    hu_from,
)


def test_label_values_and_names():
    assert [int(label) for label in Label] == [0, 1, 2]
    assert Label(2) is Label.TUMOUR
    assert Label.LIVER.display_name == "Liver"
    assert Label.TUMOUR.display_name == "Liver tumour"


def test_volume_shape_and_spacing_from_affine():
    ph = make_phantom(shape=(5, 32, 40), spacing=(3.0, 0.7, 0.9))
    v = ph.volume()
    assert v.shape == (5, 32, 40)
    assert v.n_slices == 5 and not v.is_2d
    assert v.spacing == pytest.approx((3.0, 0.7, 0.9))
    assert v.voxel_volume_mm3 == pytest.approx(3.0 * 0.7 * 0.9)


def test_spacing_of_rotated_affine_is_column_norms():
    theta = np.deg2rad(30)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.5, 0.8, 2.0])  # columns x, y, z
    v = Volume(np.zeros((2, 10, 10), np.float32), affine=affine)
    assert v.spacing == pytest.approx((2.0, 0.8, 0.5))


def test_index_to_world_uses_x_y_z_order():
    ph = make_phantom()
    v = ph.volume()
    z, y, x = 3, 5, 7
    expected = ph.affine @ np.array([x, y, z, 1.0])
    np.testing.assert_allclose(v.index_to_world(z, y, x), expected[:3])


@pytest.mark.parametrize(
    "array, intensity",
    [
        (np.zeros((4, 4)), Intensity.HU),  # 2D: must be (z, y, x)
        (np.zeros((1, 4, 4)), Intensity.WINDOWED_RGB),  # no channel axis
        (np.zeros((1, 4, 4, 4)), Intensity.WINDOWED_RGB),  # 4 channels
        (np.zeros((0, 4, 4)), Intensity.HU),  # empty
    ],
)
def test_volume_rejects_bad_shapes(array, intensity):
    with pytest.raises(ValueError):
        Volume(array, intensity=intensity)


def test_volume_rejects_bad_affine_and_range():
    with pytest.raises(ValueError):
        Volume(np.zeros((1, 4, 4)), affine=np.eye(3))
    bad = np.eye(4)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        Volume(np.zeros((1, 4, 4)), affine=bad)
    with pytest.raises(ValueError):
        Volume(np.zeros((1, 4, 4), np.uint8), intensity=Intensity.DISPLAY8, hu_range=(100, 100))


def test_volume_is_frozen_and_copies_meta():
    meta = {"a": 1}
    v = Volume(np.zeros((1, 4, 4)), meta=meta)
    meta["a"] = 2
    assert v.meta["a"] == 1
    with pytest.raises(AttributeError):
        v.array = np.ones((1, 4, 4))  # type: ignore[misc]


def test_display8_defaults_hu_range_and_maps_grey():
    grey = np.array([[[0, 128, 255]]], dtype=np.uint8)
    v = Volume(grey, intensity="display8")
    assert v.intensity is Intensity.DISPLAY8
    assert v.hu_range == DEFAULT_HU_RANGE
    np.testing.assert_allclose(v.hu_slice(0), [[0, 128, 255]])
    w = v.with_array(grey, hu_range=(-100, 410))
    np.testing.assert_allclose(w.hu_slice(0), [[-100, 156, 410]], atol=1e-4)
    assert w.hu_slice(0).dtype == np.float32


def test_windowed_rgb_has_no_hu():
    v = Volume(np.zeros((1, 4, 4, 3), np.uint8), intensity=Intensity.WINDOWED_RGB)
    assert v.shape == (1, 4, 4)
    with pytest.raises(ValueError):
        v.hu_slice(0)
    with pytest.raises(ValueError):
        hu_from(np.zeros((4, 4, 3)), "windowed_rgb", None)


def test_empty_label_map_matches_volume():
    v = make_phantom(shape=(3, 16, 20)).volume()
    lm = empty_label_map(v)
    assert lm.shape == (3, 16, 20) and lm.dtype == np.uint8 and not lm.any()


def test_phantom_labels_are_inside_body():
    ph = make_phantom(noise=3.0)
    assert set(np.unique(ph.labels)) == {0, 1, 2}
    assert not np.allclose(ph.affine, np.eye(4))
    liver_hu = ph.hu[ph.labels == 1].mean()
    tumour_hu = ph.hu[ph.labels == 2].mean()
    assert 50 < liver_hu < 70 and 10 < tumour_hu < 30
