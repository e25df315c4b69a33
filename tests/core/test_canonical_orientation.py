"""core.orientation: every stored axis order and direction reaches the canonical display and comes back exactly."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from liverseg_studio.core.orientation import (
    CANONICAL_AXCODES,
    assumed_reorientation,
    canonical_volume,
    reorientation,
    reorientation_from_affine,
)
from liverseg_studio.core.slices import ArraySource, LazyArray
from liverseg_studio.core.volume import Volume


def _stored(canon: np.ndarray, perm: tuple[int, int, int], flips: tuple[bool, bool, bool]):
    """Store a canonical LPS (z, y, x) array in another axis order/direction, with the affine that says so."""
    spacing = np.array([0.7, 0.8, 2.5])  # x, y, z of the canonical grid
    canon_aff = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])  # LPS index axes in RAS world
    arr = canon
    # canonical index (z, y, x) -> stored index: flip then permute
    m = np.eye(4)
    for ax, f in enumerate(flips):
        if f:
            arr = np.flip(arr, axis=ax)
            f_m = np.eye(4)
            f_m[ax, ax] = -1
            f_m[ax, 3] = canon.shape[ax] - 1
            m = f_m @ m
    arr = np.transpose(arr, perm)
    p_m = np.zeros((4, 4))
    p_m[3, 3] = 1
    for new, old in enumerate(perm):
        p_m[new, old] = 1
    m = p_m @ m  # canonical zyx -> stored zyx
    rev = np.zeros((4, 4))
    rev[0, 2] = rev[1, 1] = rev[2, 0] = rev[3, 3] = 1
    # stored (x, y, z) -> world = canon_aff @ rev @ inv(m) @ rev
    aff = canon_aff @ rev @ np.linalg.inv(m) @ rev
    return np.ascontiguousarray(arr), aff, canon_aff


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("flips", [(False, False, False), (True, False, True), (False, True, False), (True, True, True)])
def test_every_axis_order_reaches_canonical_and_back(perm, flips):
    rng = np.random.default_rng(0)
    canon = rng.integers(-1000, 1000, size=(5, 7, 9)).astype(np.int16)
    stored, aff, canon_aff = _stored(canon, perm, flips)
    vol = Volume(stored, affine=aff, loader="nifti")
    r = reorientation(vol)
    assert not r.assumed
    np.testing.assert_array_equal(r.to_canonical(stored), canon)
    np.testing.assert_array_equal(r.from_canonical(canon), stored)
    np.testing.assert_allclose(r.canonical_affine(aff), canon_aff, atol=1e-9)
    assert nib.aff2axcodes(r.canonical_affine(aff)) == CANONICAL_AXCODES
    cv, _ = canonical_volume(vol, r)
    np.testing.assert_array_equal(np.asarray(cv.array), canon)
    # the same world point before and after
    z, y, x = 1, 2, 3
    sz, sy, sx = np.argwhere(stored == canon[z, y, x])[0] if np.sum(stored == canon[z, y, x]) == 1 else (None,) * 3
    if sz is not None:
        np.testing.assert_allclose(vol.index_to_world(sz, sy, sx), cv.index_to_world(z, y, x), atol=1e-9)


@pytest.mark.parametrize("flips", [(False, False, False), (True, True, False), (False, False, True), (True, True, True)])
@pytest.mark.parametrize("transpose", [False, True])
def test_lazy_volume_stays_lazy_when_the_slice_axis_is_kept(flips, transpose):
    rng = np.random.default_rng(1)
    canon = rng.integers(-1000, 1000, size=(6, 5, 8)).astype(np.int16)
    perm = (0, 2, 1) if transpose else (0, 1, 2)
    stored, aff, _ = _stored(canon, perm, flips)
    vol = Volume(LazyArray(ArraySource(stored)), affine=aff, loader="dicom-series")
    cv, r = canonical_volume(vol)
    assert r.keeps_slice_axis
    assert isinstance(cv.array, LazyArray)
    np.testing.assert_array_equal(np.asarray(cv.array), canon)
    np.testing.assert_array_equal(cv.array[2:4], canon[2:4])
    for k in range(canon.shape[0]):
        np.testing.assert_array_equal(r.slice_to_canonical(stored[r.canonical_index(k)]), canon[k])


def test_oblique_affine_maps_to_the_nearest_axes():
    a = np.radians(12)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([-0.8, -0.8, 2.0])  # LPS, rotated 12 degrees in-plane
    r = reorientation_from_affine(aff, (4, 6, 6))
    assert r.is_identity
    aff2 = aff.copy()
    aff2[:3, 0] *= -1  # x now runs to the right: mirrored
    r2 = reorientation_from_affine(aff2, (4, 6, 6))
    assert r2.flip == (False, False, True) and r2.perm == (0, 1, 2)


def test_images_without_an_affine_are_assumed_radiological_unless_stated():
    img = np.arange(3 * 4).reshape(1, 3, 4).astype(np.uint8)
    vol = Volume(img, intensity="display8", loader="image", spacing_known=False)
    r = reorientation(vol)
    assert r.assumed and r.is_identity
    r2 = reorientation(vol, assume="neurological")
    np.testing.assert_array_equal(r2.to_canonical(img), img[:, :, ::-1])
    np.testing.assert_array_equal(r2.from_canonical(r2.to_canonical(img)), img)
    with pytest.raises(ValueError, match="unknown display"):
        assumed_reorientation((1, 3, 4), "sideways")


def test_ras_nifti_is_flipped_in_plane_only():
    aff = np.diag([0.8, 0.8, 2.0, 1.0])  # RAS index axes: columns run to the right, rows to anterior
    r = reorientation(Volume(np.zeros((3, 4, 5), np.int16), affine=aff, loader="nifti"))
    assert r.perm == (0, 1, 2) and r.flip == (False, True, True)
