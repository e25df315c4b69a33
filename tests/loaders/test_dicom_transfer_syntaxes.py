"""Every common transfer syntax reads through pydicom's pixel-data plugins (issue 28).

Fixtures are made at test time from 6 slices of 3D-IRCADb 1.01 (``helpers.dicom_forms``) with dcmtk
and pydicom's encoders.  Lossless forms must give exactly the voxels and affine of the uncompressed
series; lossy forms stay close (their liver Dice is measured with the model, see the README).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from helpers.dicom_forms import (
    LOSSLESS_DCMTK,
    base_series,
    dcmtk_form,
    pydicom_form,
    requires_dcmtk,
    requires_ircad,
)

pytestmark = [requires_ircad]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plain") / "series"
    base_series(folder)
    return folder


@pytest.fixture(scope="module")
def reference(plain, loaders):
    v = loaders.load(plain)
    return np.asarray(v.array), v.affine


def _ts(folder):
    return pydicom.dcmread(next(iter(sorted(folder.iterdir()))), stop_before_pixels=True).file_meta.TransferSyntaxUID


@requires_dcmtk
@pytest.mark.parametrize("form", sorted(LOSSLESS_DCMTK))
def test_lossless_dcmtk_forms_give_identical_voxels(form, plain, reference, loaders, tmp_path):
    folder = dcmtk_form(plain, tmp_path / form, LOSSLESS_DCMTK[form])
    assert _ts(folder) != _ts(plain), f"{form}: dcmtk did not change the transfer syntax"
    v = loaders.load(folder)
    assert v.loader == "dicom-series"
    np.testing.assert_array_equal(np.asarray(v.array), reference[0])
    np.testing.assert_array_equal(v.affine, reference[1])


@pytest.mark.parametrize("uid_name", ["JPEG2000Lossless", "RLELossless"])
def test_lossless_pydicom_encoded_forms_give_identical_voxels(uid_name, plain, reference, loaders, tmp_path):
    import pydicom.uid

    uid = getattr(pydicom.uid, uid_name)
    folder = pydicom_form(plain, tmp_path / uid_name, uid)
    assert _ts(folder) == uid
    v = loaders.load(folder)
    np.testing.assert_array_equal(np.asarray(v.array), reference[0])
    np.testing.assert_array_equal(v.affine, reference[1])


def test_single_compressed_file_reads_as_the_slice(plain, reference, loaders, tmp_path):
    from pydicom.uid import JPEG2000Lossless

    folder = pydicom_form(plain, tmp_path / "j2k", JPEG2000Lossless)
    v = loaders.load(sorted(folder.iterdir())[0])
    assert v.loader == "dicom"
    np.testing.assert_array_equal(np.asarray(v.array)[0], reference[0][0])


def _hu_error(v, reference):
    arr = np.asarray(v.array)
    assert arr.shape == reference[0].shape
    np.testing.assert_allclose(v.affine, reference[1], atol=1e-6)
    return np.abs(arr - reference[0])


def test_lossy_jpeg2000_is_close(plain, reference, loaders, tmp_path):
    from pydicom.uid import JPEG2000

    folder = pydicom_form(plain, tmp_path / "j2k-lossy", JPEG2000, j2k_cr=[10])
    assert _ts(folder) == JPEG2000
    err = _hu_error(loaders.load(folder), reference)
    assert 0 < err.mean() < 10, "lossy JPEG 2000 should differ a little, not a lot"


@requires_dcmtk
def test_jpeg_extended_12_bit_is_close(tmp_path, reference, loaders):
    twelve = tmp_path / "twelve"
    base_series(twelve, twelve_bit=True)
    folder = dcmtk_form(twelve, tmp_path / "jpeg-ext", ["dcmcjpeg", "+ee", "+q", "95"])
    assert _ts(folder) == pydicom.uid.JPEGExtended12Bit
    v = loaders.load(folder)
    err = _hu_error(v, reference)
    assert 0 < err.mean() < 10
    # the 12-bit form itself (before JPEG) is the same HU: the loss is JPEG's alone
    np.testing.assert_array_equal(np.asarray(loaders.load(twelve).array), reference[0])


@requires_dcmtk
def test_lossless_series_gives_the_same_mask(plain, reference, loaders, tmp_path):
    """End to end: the threshold example backend segments JPEG Lossless SV1 exactly as the plain series."""
    threshold = pytest.importorskip("liverseg_threshold_backend")
    from liverseg_studio.segment.pipeline import segment_volume

    backend = threshold.ThresholdBackend()
    backend.load(None)
    folder = dcmtk_form(plain, tmp_path / "sv1", LOSSLESS_DCMTK["jpeg-lossless-sv1"])
    a = segment_volume(loaders.load(plain), backend)
    b = segment_volume(loaders.load(folder), backend)
    assert np.asarray(a.labels).any()
    np.testing.assert_array_equal(np.asarray(a.labels), np.asarray(b.labels))
