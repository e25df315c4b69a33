"""Single DICOM files: HU, geometry, refusals."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from helpers.phantom import ct_dataset, make_phantom
from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.volume import Intensity
from liverseg_studio.plugins.registry import LoadOptions

CT_SMALL = get_testdata_file("CT_small.dcm")
MR_SMALL = get_testdata_file("MR_small.dcm")


def _save(ds, path):
    ds.save_as(str(path), enforce_file_format=True)
    return path


def test_ct_small_hu_and_geometry(loaders):
    v = loaders.load(CT_SMALL)
    ds = pydicom.dcmread(CT_SMALL)
    assert v.loader == "dicom" and v.intensity is Intensity.HU
    assert v.shape == (1, 128, 128)
    expected = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(v.array[0], expected)
    assert v.spacing == pytest.approx((5.0, 0.661468, 0.661468))
    # LPS -> RAS: first voxel centre at (-x, -y, z) of ImagePositionPatient
    ipp = [float(x) for x in ds.ImagePositionPatient]
    np.testing.assert_allclose(v.index_to_world(0, 0, 0), [-ipp[0], -ipp[1], ipp[2]], atol=1e-6)
    assert v.meta["files"] == [str(CT_SMALL)]
    assert v.meta["sop_instance_uids"] == [str(ds.SOPInstanceUID)]
    assert v.meta["series_uid"] == str(ds.SeriesInstanceUID)


def test_written_slice_round_trips(tmp_path, loaders):
    ph = make_phantom()
    ds = ct_dataset(ph.hu[6], position_lps=(10, 20, 30), pixel_spacing=(0.7, 0.9), slice_thickness=3.0)
    v = loaders.load(_save(ds, tmp_path / "one.dcm"))
    np.testing.assert_array_equal(v.array[0], ph.hu[6])
    assert v.spacing == pytest.approx((3.0, 0.7, 0.9))
    np.testing.assert_allclose(v.affine[:3, 3], [-10, -20, 30])


def test_rescale_slope_and_intercept_applied(tmp_path, loaders):
    hu = np.tile(np.arange(-1000, 1000, 1000 / 32, dtype=np.float32)[:64], (16, 1))
    ds = ct_dataset(hu, slope=2.0, intercept=-2048.0)
    v = loaders.load(_save(ds, tmp_path / "slope.dcm"))
    np.testing.assert_allclose(v.array[0], hu, atol=1.0)


def test_non_ct_refused():
    with pytest.raises(LoaderError) as exc:
        from liverseg_studio.loaders import dicom

        dicom.load(__import__("pathlib").Path(MR_SMALL), LoadOptions())
    assert "MR_small.dcm" in str(exc.value) and "not CT" in str(exc.value)


def test_non_ct_refused_through_registry(loaders):
    with pytest.raises(LoaderError, match="modality is MR"):
        loaders.load(MR_SMALL)


def test_no_pixel_data_refused(tmp_path, loaders):
    ds = ct_dataset(np.zeros((16, 16)))
    del ds.PixelData
    path = _save(ds, tmp_path / "nopix.dcm")
    with pytest.raises(LoaderError) as exc:
        loaders.load(path)
    assert "nopix.dcm" in str(exc.value) and "no pixel data" in str(exc.value)


def test_truncated_pixel_data_refused(tmp_path, loaders):
    ds = ct_dataset(np.zeros((64, 64)))
    ds.PixelData = ds.PixelData[:1000]
    with pytest.raises(LoaderError, match="truncated"):
        loaders.load(_save(ds, tmp_path / "short.dcm"))


def test_truncated_file_refused(tmp_path, loaders):
    data = open(CT_SMALL, "rb").read()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoaderError, match="cut.dcm"):
        loaders.load(path)


def test_odd_bits_allocated_refused(tmp_path, loaders):
    ds = ct_dataset(np.zeros((16, 16)))
    ds.BitsAllocated = 12
    with pytest.raises(LoaderError, match="BitsAllocated=12"):
        loaders.load(_save(ds, tmp_path / "bits.dcm"))


def test_compressed_without_decoder_refused(tmp_path, loaders):
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    ds = ct_dataset(np.zeros((16, 16)))
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([b"\x00\x01garbage-not-j2k" * 4])
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    with pytest.raises(LoaderError, match="compressed"):
        loaders.load(_save(ds, tmp_path / "j2k.dcm"))


def test_missing_pixel_spacing_means_unknown_spacing(tmp_path, loaders):
    ds = ct_dataset(np.zeros((16, 16)))
    del ds.PixelSpacing
    v = loaders.load(_save(ds, tmp_path / "nospacing.dcm"))
    assert not v.spacing_known and np.array_equal(v.affine, np.eye(4))


def test_tiny_image_refused(tmp_path, loaders):
    ds = ct_dataset(np.zeros((1, 1)))
    with pytest.raises(LoaderError, match="1x1"):
        loaders.load(_save(ds, tmp_path / "dot.dcm"))


def test_memory_limit(tmp_path, loaders):
    ds = ct_dataset(np.zeros((64, 64)))
    with pytest.raises(LoaderError, match="memory"):
        loaders.load(_save(ds, tmp_path / "m.dcm"), LoadOptions(max_bytes=1000))


def test_dicom_without_preamble_or_extension_is_found(tmp_path, loaders):
    ds = ct_dataset(np.zeros((16, 16)))
    path = tmp_path / "IM0001"
    ds.save_as(str(path), enforce_file_format=True)
    raw = path.read_bytes()
    if raw[128:132] == b"DICM":  # pydicom wrote a preamble anyway: strip it
        path.write_bytes(raw[132:])
    assert loaders.find(path).name == "dicom"
    assert loaders.load(path).shape == (1, 16, 16)
