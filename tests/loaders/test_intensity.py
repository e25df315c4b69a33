"""The intensity policy of every loaded volume (loaders.intensity, issue 29 cases 1 and 2)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest

from helpers.phantom import make_phantom, write_ct_series
from liverseg_studio.core.errors import LoaderError
from liverseg_studio.plugins.registry import LoadOptions


@pytest.fixture(scope="module")
def ph():
    return make_phantom(shape=(6, 96, 96), noise=8.0)


def test_nifti_scaled_0_1_is_refused_with_one_clear_line(ph, tmp_path, loaders):
    scaled = ((ph.hu + 1024) / 3000).astype(np.float32)
    path = tmp_path / "scaled.nii.gz"
    nib.save(nib.Nifti1Image(scaled.T, ph.affine), path)
    with pytest.raises(LoaderError) as exc:
        loaders.load(path)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg
    assert "do not look like CT in HU" in msg and "values 0" in msg and "--intensity hu" in msg
    # the user says the values are HU: loaded unchecked
    v = loaders.load(path, LoadOptions(intensity="hu"))
    np.testing.assert_allclose(np.asarray(v.array), scaled)


def test_nifti_plus_1024_refused_unless_asked(ph, tmp_path, loaders):
    path = tmp_path / "u.nii"
    nib.save(nib.Nifti1Image((ph.hu + 1024).astype(np.uint16).T, ph.affine), path)
    with pytest.raises(LoaderError, match=r"--intensity hu\+1024"):
        loaders.load(path)
    v = loaders.load(path, LoadOptions(intensity="hu+1024"))
    np.testing.assert_allclose(np.asarray(v.array), ph.hu)
    assert "1024" in v.meta["warning"]


def test_nifti_in_hu_and_label_maps_pass(ph, tmp_path, loaders):
    nib.save(nib.Nifti1Image(ph.hu.astype(np.int16).T, ph.affine), tmp_path / "ct.nii")
    nib.save(nib.Nifti1Image(ph.labels.T, ph.affine), tmp_path / "labels.nii.gz")
    assert loaders.load(tmp_path / "ct.nii").meta["intensity_check"] == "hu"
    lab = loaders.load(tmp_path / "labels.nii.gz")
    assert lab.meta["intensity_check"] == "labels"
    np.testing.assert_array_equal(np.asarray(lab.array), ph.labels)


def _unsigned_without_intercept(folder, hu, affine, *, keep_intercept=False):
    paths = write_ct_series(folder, hu, affine)
    for p in paths:
        ds = pydicom.dcmread(p)
        stored = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept) + 1024
        ds.PixelRepresentation = 0
        ds.PixelData = stored.astype(np.uint16).tobytes()
        if keep_intercept:
            ds.RescaleIntercept = -1024
        else:
            del ds.RescaleIntercept
            del ds.RescaleSlope
        ds.save_as(p)
    return paths


def test_unsigned_dicom_without_intercept_is_corrected_with_a_warning(ph, tmp_path, loaders):
    _unsigned_without_intercept(tmp_path / "series", ph.hu, ph.affine)
    v = loaders.load(tmp_path / "series")
    np.testing.assert_allclose(np.asarray(v.array), ph.hu)
    assert "without RescaleIntercept" in v.meta["warning"] and "1024" in v.meta["warning"]
    assert v.meta["intensity_correction"] == "-1024 HU"
    # --intensity hu keeps the stored values
    raw = loaders.load(tmp_path / "series", LoadOptions(intensity="hu"))
    np.testing.assert_allclose(np.asarray(raw.array), ph.hu + 1024)


def test_unsigned_dicom_with_intercept_is_left_alone(ph, tmp_path, loaders):
    _unsigned_without_intercept(tmp_path / "series", ph.hu, ph.affine, keep_intercept=True)
    v = loaders.load(tmp_path / "series")
    np.testing.assert_allclose(np.asarray(v.array), ph.hu)
    assert "warning" not in v.meta


def test_info_refuses_scaled_nifti_with_exit_2(ph, tmp_path, capsys, monkeypatch):
    from liverseg_studio import cli
    from liverseg_studio.cli import main

    monkeypatch.setattr(cli, "COMMANDS", ("info",))  # only the command under test

    path = tmp_path / "scaled.nii.gz"
    nib.save(nib.Nifti1Image(((ph.hu + 1024) / 3000).astype(np.float32).T, ph.affine), path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "do not look like CT in HU" in lines[0] and "Traceback" not in err
    assert main(["info", str(path), "--intensity", "hu"]) == 0
