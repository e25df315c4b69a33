"""Enhanced / legacy-converted multi-frame CT (issue 28): geometry from functional groups, frames sorted."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from helpers.dicom_forms import base_series, multiframe, requires_ircad
from liverseg_studio.core.errors import LoaderError

pytestmark = [requires_ircad]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mf") / "series"
    base_series(folder)
    return folder


@pytest.fixture(scope="module")
def reference(plain, loaders):
    v = loaders.load(plain)
    return np.asarray(v.array), v.affine


@pytest.mark.parametrize("reverse", [False, True])
def test_multiframe_file_gives_the_series_voxels(plain, reference, loaders, tmp_path, reverse):
    path = multiframe(plain, tmp_path / "ct.dcm", reverse=reverse)
    v = loaders.load(path)
    assert v.loader == "dicom-multiframe"
    assert v.meta["n_frames"] == 6 and sorted(v.meta["frame_numbers"]) == list(range(1, 7))
    np.testing.assert_array_equal(np.asarray(v.array), reference[0])
    np.testing.assert_allclose(v.affine, reference[1], atol=1e-6)
    assert v.is_lazy


def test_folder_with_one_multiframe_file(plain, reference, loaders, tmp_path):
    multiframe(plain, tmp_path / "study" / "ct.dcm")
    v = loaders.load(tmp_path / "study")
    assert v.loader == "dicom-multiframe"
    np.testing.assert_array_equal(np.asarray(v.array), reference[0])


def test_compressed_multiframe(plain, reference, loaders, tmp_path):
    from pydicom.uid import JPEG2000Lossless

    path = multiframe(plain, tmp_path / "ct.dcm")
    ds = pydicom.dcmread(path)
    ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
    v = loaders.load(path)
    np.testing.assert_array_equal(np.asarray(v.array), reference[0])


def _rewrite(path, change):
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


def test_missing_frame_refused(plain, loaders, tmp_path):
    path = multiframe(plain, tmp_path / "ct.dcm")

    def drop_position(ds):  # frame 3 placed 2 slices further: a gap
        item = ds.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence[0]
        pos = [float(v) for v in item.ImagePositionPatient]
        z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in ds.PerFrameFunctionalGroupsSequence]
        item.ImagePositionPatient = [pos[0], pos[1], max(z) + 3.2]

    _rewrite(path, drop_position)
    with pytest.raises(LoaderError, match="uneven slice spacing"):
        loaders.load(path)


def test_gantry_tilt_refused(plain, loaders, tmp_path):
    path = multiframe(plain, tmp_path / "ct.dcm")

    def shear(ds):  # each frame shifted 0.5 mm in y per 1.6 mm in z: ~17 degrees of tilt
        for item in ds.PerFrameFunctionalGroupsSequence:
            pos = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
            item.PlanePositionSequence[0].ImagePositionPatient = [pos[0], pos[1] + pos[2] * 0.3, pos[2]]

    _rewrite(path, shear)
    with pytest.raises(LoaderError, match="gantry tilt"):
        loaders.load(path)


def test_frame_with_other_orientation_refused(plain, loaders, tmp_path):
    path = multiframe(plain, tmp_path / "ct.dcm")

    def tilt_one(ds):
        from pydicom.dataset import Dataset

        item = Dataset()
        item.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.PerFrameFunctionalGroupsSequence[1].PlaneOrientationSequence = [item]

    _rewrite(path, tilt_one)
    with pytest.raises(LoaderError, match="frame 2 has another ImageOrientationPatient"):
        loaders.load(path)
