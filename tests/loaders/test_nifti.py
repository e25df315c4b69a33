"""NIfTI volumes: data.T, affine kept, refusals."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from helpers.phantom import make_phantom, write_nifti
from liverseg_studio.core.errors import LoaderError
from liverseg_studio.plugins.registry import LoadOptions


def test_round_trip(nifti_phantom, loaders):
    ph = nifti_phantom.phantom
    v = loaders.load(nifti_phantom.path)
    assert v.loader == "nifti"
    np.testing.assert_array_equal(v.array, ph.hu)
    np.testing.assert_allclose(v.affine, ph.affine)
    assert v.spacing == pytest.approx(ph.spacing)


def test_mask_written_back_matches_input(nifti_phantom, loaders, tmp_path):
    v = loaders.load(nifti_phantom.path)
    out = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image((v.array > 30).astype(np.uint8).T, v.affine), out)
    src, back = nib.load(nifti_phantom.path), nib.load(out)
    assert back.shape == src.shape
    np.testing.assert_allclose(back.affine, src.affine)


def test_plain_nii_and_scaling(tmp_path, loaders):
    ph = make_phantom(shape=(3, 16, 16))
    img = nib.Nifti1Image(((ph.hu + 1024) / 2).astype(np.int16).T, ph.affine)
    img.header.set_slope_inter(2.0, -1024.0)
    nib.save(img, tmp_path / "scaled.nii")
    v = loaders.load(tmp_path / "scaled.nii")
    np.testing.assert_allclose(v.array, ph.hu, atol=2)


def test_4d_with_one_volume_accepted(tmp_path, loaders):
    ph = make_phantom(shape=(3, 16, 16))
    nib.save(nib.Nifti1Image(ph.hu.T[..., None], ph.affine), tmp_path / "t1.nii.gz")
    np.testing.assert_array_equal(loaders.load(tmp_path / "t1.nii.gz").array, ph.hu)


def test_4d_refused(tmp_path, loaders):
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 3, 4), np.float32), np.eye(4)), tmp_path / "fmri.nii.gz")
    with pytest.raises(LoaderError) as exc:
        loaders.load(tmp_path / "fmri.nii.gz")
    assert "fmri.nii.gz" in str(exc.value) and "4D" in str(exc.value)


def test_2d_nifti_is_one_slice(tmp_path, loaders):
    nib.save(nib.Nifti1Image(np.arange(16 * 20, dtype=np.float32).reshape(16, 20), np.eye(4)), tmp_path / "2d.nii")
    v = loaders.load(tmp_path / "2d.nii")
    assert v.shape == (1, 20, 16)


def test_broken_header_refused(tmp_path, loaders):
    write_nifti(tmp_path / "ok.nii", np.zeros((4, 16, 16)), np.eye(4), dtype="int16")
    raw = bytearray((tmp_path / "ok.nii").read_bytes())
    raw[0:4] = b"\x07\x00\x00\x00"  # sizeof_hdr
    raw[40:56] = b"\xff" * 16  # dims
    (tmp_path / "broken.nii").write_bytes(bytes(raw))
    with pytest.raises(LoaderError) as exc:
        loaders.load(tmp_path / "broken.nii")
    assert "broken.nii" in str(exc.value)


def test_negative_dims_refused(tmp_path, loaders):
    write_nifti(tmp_path / "ok.nii", np.zeros((4, 16, 16)), np.eye(4), dtype="int16")
    raw = bytearray((tmp_path / "ok.nii").read_bytes())
    raw[42:44] = (-5).to_bytes(2, "little", signed=True)
    (tmp_path / "neg.nii").write_bytes(bytes(raw))
    with pytest.raises(LoaderError, match="neg.nii"):
        loaders.load(tmp_path / "neg.nii")


def test_truncated_nii_refused(tmp_path, loaders):
    write_nifti(tmp_path / "ok.nii", np.zeros((8, 32, 32)), np.eye(4), dtype="int16")
    raw = (tmp_path / "ok.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(LoaderError, match="truncated"):
        loaders.load(tmp_path / "cut.nii")


def test_truncated_gz_refused(tmp_path, loaders):
    rng = np.random.default_rng(0)
    write_nifti(tmp_path / "ok.nii.gz", rng.normal(size=(8, 32, 32)), np.eye(4), dtype="float32")
    raw = (tmp_path / "ok.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(LoaderError, match="cut.nii.gz"):
        loaders.load(tmp_path / "cut.nii.gz")


def test_huge_dims_in_tiny_gz_refused(tmp_path, loaders):
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((2000, 2000, 400))
    hdr.set_data_dtype(np.int16)
    raw = hdr.binaryblock + b"\0\0\0\0" + b"\0" * 100
    (tmp_path / "bomb.nii.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(LoaderError, match="memory|cannot hold|truncated"):
        loaders.load(tmp_path / "bomb.nii.gz", LoadOptions(max_bytes=16 * 1024**3))


def test_nan_voxels_replaced(tmp_path, loaders):
    a = np.zeros((2, 16, 16), np.float32)
    a[0, 0, 0] = np.nan
    write_nifti(tmp_path / "nan.nii", a, np.eye(4))
    v = loaders.load(tmp_path / "nan.nii")
    assert np.isfinite(v.array).all() and v.meta["nonfinite_voxels"] == 1


def test_zero_voxel_size_means_unknown_spacing(tmp_path, loaders):
    import struct

    write_nifti(tmp_path / "ok.nii", np.zeros((2, 16, 16)), np.eye(4))
    raw = bytearray((tmp_path / "ok.nii").read_bytes())
    raw[80:84] = struct.pack("<f", 0.0)  # pixdim[1] = 0
    raw[252:256] = b"\0\0\0\0"  # qform_code = sform_code = 0
    (tmp_path / "z.nii").write_bytes(bytes(raw))
    v = loaders.load(tmp_path / "z.nii")
    assert not v.spacing_known
