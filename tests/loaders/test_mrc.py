"""MRC volumes: LiTS case 117 orientation and voxel size, synthetic files."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from liverseg_studio.core.errors import LoaderError

CASE = Path(__import__("sysconfig").get_paths()["purelib"]) / "liver_ct_segmentation_package" / "data"


@pytest.fixture(scope="module")
def case117(loaders):
    img, lab = CASE / "img_117.mrc", CASE / "lab_117.mrc"
    if not img.exists():
        pytest.skip("liver-ct-segmentation-package not installed")
    return loaders.load(img), loaders.load(lab)


def test_case117_geometry(case117):
    v, lab = case117
    assert v.loader == "mrc"
    assert v.shape == (128, 128, 128)
    assert not v.spacing_known and np.array_equal(v.affine, np.eye(4))
    assert set(np.unique(lab.array).astype(int)) == {0, 1, 2}


def test_case117_is_axial_and_aligned(case117):
    """Axial slices as a radiologist sees them: spine at the bottom, liver on the image left."""
    v, lab = case117
    liver = lab.array >= 1
    assert 80 < float(v.array[liver].mean()) < 160  # labels line up with liver HU
    bone = v.array > 300
    _, by, _ = np.nonzero(bone)
    _, ly, lx = np.nonzero(liver)
    assert by.mean() / 128 > 0.65  # vertebrae posterior = bottom rows
    assert lx.mean() / 128 < 0.42  # liver = patient right = image left
    assert by.mean() > ly.mean()


def test_synthetic_mrc_with_voxel_size(tmp_path, loaders):
    data = np.arange(10 * 12 * 16, dtype=np.float32).reshape(10, 12, 16)  # (sections, rows, cols)
    path = tmp_path / "vol.mrc"
    with mrcfile.new(str(path)) as m:
        m.set_data(data)
        m.voxel_size = (2.0, 0.5, 0.75)  # x, y, z
    v = loaders.load(path)
    np.testing.assert_array_equal(v.array, data.T)
    assert v.spacing_known
    assert v.spacing == pytest.approx((2.0, 0.5, 0.75))  # z = file x, x = file z


def test_truncated_mrc_refused(tmp_path, loaders):
    path = tmp_path / "vol.mrc"
    with mrcfile.new(str(path)) as m:
        m.set_data(np.zeros((16, 16, 16), np.float32))
    raw = path.read_bytes()
    (tmp_path / "cut.mrc").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(LoaderError, match="cut.mrc.*truncated"):
        loaders.load(tmp_path / "cut.mrc")


def test_header_only_mrc_refused(tmp_path, loaders):
    path = tmp_path / "vol.mrc"
    with mrcfile.new(str(path)) as m:
        m.set_data(np.zeros((16, 16, 16), np.float32))
    (tmp_path / "head.mrc").write_bytes(path.read_bytes()[:500])
    with pytest.raises(LoaderError, match="head.mrc"):
        loaders.load(tmp_path / "head.mrc")
