"""DICOM series folders: ordering, geometry, several series, refusals."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from helpers.phantom import ct_dataset, make_phantom, write_ct_series
from liverseg_studio.core.errors import LoaderError, MultipleSeriesError
from liverseg_studio.plugins.registry import LoadOptions


def test_series_round_trip(dicom_series_phantom, loaders):
    ph = dicom_series_phantom.phantom
    v = loaders.load(dicom_series_phantom.path)
    assert v.loader == "dicom-series"
    assert v.shape == ph.shape
    np.testing.assert_array_equal(v.array, ph.hu)
    np.testing.assert_allclose(v.affine, ph.affine, atol=1e-6)
    assert v.spacing == pytest.approx(ph.spacing)
    assert v.spacing_known


def test_slices_sorted_by_position_not_name(dicom_series_phantom, loaders):
    v = loaders.load(dicom_series_phantom.path)
    files = v.meta["files"]
    assert files != sorted(files), "fixture should shuffle names"
    z = [float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in files]
    assert z == sorted(z)
    uids = [str(pydicom.dcmread(f).SOPInstanceUID) for f in files]
    assert v.meta["sop_instance_uids"] == uids
    assert v.meta["series_uid"] == str(pydicom.dcmread(files[0]).SeriesInstanceUID)


def test_sorting_ignores_instance_number(tmp_path, loaders):
    ph = make_phantom(shape=(6, 32, 32))
    paths = write_ct_series(tmp_path / "s", ph.hu, ph.affine, shuffle_names=False)
    for k, p in enumerate(paths):  # scramble InstanceNumber
        ds = pydicom.dcmread(p)
        ds.InstanceNumber = (k * 4) % 7 + 1
        ds.save_as(p)
    np.testing.assert_array_equal(loaders.load(tmp_path / "s").array, ph.hu)


def test_oblique_series_affine(tmp_path, loaders):
    theta = np.deg2rad(20)
    rot = np.array([[np.cos(theta), 0, np.sin(theta)], [0, 1, 0], [-np.sin(theta), 0, np.cos(theta)]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.7, 0.7, 3.0]) * np.array([-1, -1, 1])[:, None]
    affine[:3, 3] = (50, -20, 10)
    ph = make_phantom(shape=(5, 32, 32), affine=affine)
    write_ct_series(tmp_path / "s", ph.hu, affine, seed=3)
    v = loaders.load(tmp_path / "s")
    np.testing.assert_allclose(v.affine, affine, atol=1e-5)
    np.testing.assert_array_equal(v.array, ph.hu)


def test_reversed_slice_order_in_space(tmp_path, loaders):
    """Slices written head-to-feet: the loader still returns them along +normal."""
    ph = make_phantom(shape=(5, 32, 32))
    affine = ph.affine.copy()
    affine[:3, 2] *= -1
    write_ct_series(tmp_path / "s", ph.hu, affine)
    v = loaders.load(tmp_path / "s")
    np.testing.assert_array_equal(v.array, ph.hu[::-1])
    # same world position for the same tissue voxel
    np.testing.assert_allclose(v.index_to_world(4, 3, 2), (affine @ [2, 3, 0, 1])[:3], atol=1e-6)


def test_several_series_ask_which(tmp_path, loaders):
    """Two series the study rule cannot tell apart (same geometry, neither portal venous): ask."""
    ph = make_phantom(shape=(3, 16, 16))
    write_ct_series(tmp_path / "a", ph.hu, ph.affine, series_uid="1.2.3.1", series_description="arterial")
    write_ct_series(tmp_path / "b", ph.hu + 5, ph.affine, series_uid="1.2.3.2", series_description="delayed")
    with pytest.raises(MultipleSeriesError) as exc:
        loaders.load(tmp_path)
    assert {s[0] for s in exc.value.series} == {"1.2.3.1", "1.2.3.2"}
    assert "--series" in str(exc.value)
    v = loaders.load(tmp_path, LoadOptions(series_uid="1.2.3.2"))
    np.testing.assert_array_equal(v.array, ph.hu + 5)
    assert v.meta["series_description"] == "delayed"
    with pytest.raises(LoaderError, match="no series '9.9'"):
        loaders.load(tmp_path, LoadOptions(series_uid="9.9"))


def test_non_ct_series_ignored_when_ct_present(tmp_path, loaders):
    ph = make_phantom(shape=(3, 16, 16))
    write_ct_series(tmp_path / "ct", ph.hu, ph.affine)
    write_ct_series(tmp_path / "mr", ph.hu, ph.affine, modality="MR")
    assert loaders.load(tmp_path).meta["modality"] == "CT"


def test_only_non_ct_refused(tmp_path, loaders):
    ph = make_phantom(shape=(3, 16, 16))
    write_ct_series(tmp_path / "mr", ph.hu, ph.affine, modality="MR")
    with pytest.raises(LoaderError, match="no CT series"):
        loaders.load(tmp_path)


def test_folder_without_images_refused(tmp_path, loaders):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoaderError) as exc:
        loaders.load(tmp_path)
    assert str(tmp_path) in str(exc.value) and "no DICOM images" in str(exc.value)


def test_duplicate_position_refused(tmp_path, loaders):
    ph = make_phantom(shape=(4, 16, 16))
    paths = write_ct_series(tmp_path / "s", ph.hu, ph.affine)
    ds = pydicom.dcmread(paths[2])
    ds.ImagePositionPatient = pydicom.dcmread(paths[1]).ImagePositionPatient
    ds.save_as(paths[2])
    with pytest.raises(LoaderError, match="same position"):
        loaders.load(tmp_path / "s")


def test_missing_slice_refused(tmp_path, loaders):
    ph = make_phantom(shape=(6, 16, 16))
    paths = write_ct_series(tmp_path / "s", ph.hu, ph.affine, shuffle_names=False)
    paths[3].unlink()
    with pytest.raises(LoaderError, match="uneven slice spacing"):
        loaders.load(tmp_path / "s")


def test_mixed_sizes_refused(tmp_path, loaders):
    ph = make_phantom(shape=(3, 16, 16))
    paths = write_ct_series(tmp_path / "s", ph.hu, ph.affine, series_uid="1.2.3")
    ds = ct_dataset(np.zeros((32, 32)), series_uid="1.2.3", position_lps=(0, 0, 99))
    ds.save_as(str(tmp_path / "s" / "odd.dcm"), enforce_file_format=True)
    with pytest.raises(LoaderError, match="slice size differs"):
        loaders.load(tmp_path / "s")


def test_unrelated_files_are_skipped(dicom_series_phantom, loaders):
    folder = dicom_series_phantom.path
    (folder / "README.txt").write_text("scanner export")
    (folder / "DICOMDIR").write_bytes(b"\0" * 200)
    v = loaders.load(folder)
    assert v.shape == dicom_series_phantom.phantom.shape


def test_nested_folder_found(dicom_series_phantom, tmp_path, loaders):
    outer = tmp_path / "export"
    shutil.copytree(dicom_series_phantom.path, outer / "patient" / "study")
    assert loaders.load(outer).shape == dicom_series_phantom.phantom.shape


def test_series_memory_limit(dicom_series_phantom, loaders):
    with pytest.raises(LoaderError, match="memory"):
        loaders.load(dicom_series_phantom.path, LoadOptions(max_bytes=100_000))


def test_single_file_series(tmp_path, loaders):
    ph = make_phantom(shape=(1, 16, 16))
    write_ct_series(tmp_path / "s", ph.hu, ph.affine)
    v = loaders.load(tmp_path / "s")
    assert v.shape == (1, 16, 16)
    assert v.spacing[1:] == pytest.approx(ph.spacing[1:])


def test_gantry_tilt_refused(tmp_path, loaders):
    """Slices stepping off their normal (a tilted gantry) would be segmented sheared: refused in one line."""
    ph = make_phantom(shape=(5, 16, 16))
    aff = ph.affine.copy()
    aff[1, 2] = 0.5 * aff[2, 2]  # each slice 0.5 x its spacing further in y: ~27 degrees
    write_ct_series(tmp_path / "s", ph.hu, aff)
    with pytest.raises(LoaderError, match="gantry tilt") as exc:
        loaders.load(tmp_path / "s")
    assert "\n" not in str(exc.value)


def test_gantry_tilt_tag_refused(tmp_path, loaders):
    ph = make_phantom(shape=(4, 16, 16))
    paths = write_ct_series(tmp_path / "s", ph.hu, ph.affine)
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.GantryDetectorTilt = 15
        ds.save_as(p)
    with pytest.raises(LoaderError, match="gantry tilt of 15 degrees"):
        loaders.load(tmp_path / "s")
