"""Unsigned DICOM CT without RescaleIntercept: corrected, with the warning on the terminal and in the
report (issue 29 case 2); a 0..1 NIfTI: refused before inference (case 1)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
from segment_helpers import TRUTH_BACKEND, make_phantom, write_ct_series

from liverseg_studio import cli


@pytest.fixture(autouse=True)
def _only_segment(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("segment",))


def test_unsigned_dicom_is_corrected_and_says_so(tmp_path, plugin_manager, capsys):
    ph = make_phantom((8, 64, 64))
    for p in write_ct_series(tmp_path / "series", ph.hu, ph.affine):
        ds = pydicom.dcmread(p)
        stored = ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept) + 1024
        ds.PixelRepresentation = 0
        ds.PixelData = stored.astype(np.uint16).tobytes()
        del ds.RescaleIntercept
        del ds.RescaleSlope
        ds.save_as(p)
    out = tmp_path / "out"
    assert cli.main(["segment", str(tmp_path / "series"), "--out", str(out), "--backend", TRUTH_BACKEND,
                     "--export", "mask,report"]) == 0
    err = capsys.readouterr().err
    assert "without RescaleIntercept" in err and "1024 was subtracted" in err
    report = json.loads((out / "series_report.json").read_text())
    assert any("without RescaleIntercept" in n for n in report["notes"])
    mask = np.asarray(nib.load(str(out / "series_mask.nii.gz")).dataobj).T
    np.testing.assert_array_equal(mask, ph.labels)  # the truth backend finds the liver only in HU


def test_scaled_nifti_is_refused_before_inference(tmp_path, plugin_manager, capsys, monkeypatch):
    import segment_helpers

    monkeypatch.setattr(segment_helpers.TruthBackend, "predict", lambda *a, **k: pytest.fail("inference ran"))
    ph = make_phantom((8, 64, 64))
    path = tmp_path / "scaled.nii.gz"
    nib.save(nib.Nifti1Image(((ph.hu + 1024) / 3000).astype(np.float32).T, ph.affine), path)
    assert cli.main(["segment", str(path), "--out", str(tmp_path / "out"), "--backend", TRUTH_BACKEND]) == 2
    err = capsys.readouterr().err
    assert "do not look like CT in HU" in err and "--intensity hu" in err and "Traceback" not in err
    assert not list((tmp_path / "out").glob("*"))
