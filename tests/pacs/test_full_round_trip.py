"""The full 3D-IRCADb 1.01 CT series (129 slices) with the default model, through a real Orthanc:
retrieve (C-GET, then WADO-RS), segment, store back; the SEG comes back into Orthanc beside the series
and its voxels equal what `liverseg segment` writes from the folder.  ~1 min of CPU per segmentation."""

from __future__ import annotations

import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from helpers.dicom_forms import IRCAD_CT
from liverseg_studio.cli import main
from pacs_orthanc import start_orthanc

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not IRCAD_CT.is_dir(), reason=f"shared data absent: {IRCAD_CT}")]


@pytest.fixture(scope="module")
def own_orthanc(tmp_path_factory):
    """An Orthanc of its own: the full series shares its study with the session's 6-slice subset."""
    o = start_orthanc(tmp_path_factory.mktemp("orthanc-full"))
    yield o
    o.stop()


@pytest.fixture(scope="module")
def full(own_orthanc, tmp_path_factory):
    files = sorted(p for p in IRCAD_CT.iterdir() if p.is_file())
    own_orthanc.upload(files)
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    ref = tmp_path_factory.mktemp("reference")
    assert main(["segment", str(IRCAD_CT), "--out", str(ref), "--export", "seg,mask"]) == 0
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), ref


@pytest.mark.parametrize("via", ["dimse", "dicomweb"])
def test_full_series_round_trip_equals_segment_from_folder(own_orthanc, full, tmp_path, capsys, via):
    study, series, ref = full
    cfg = own_orthanc.config_toml(tmp_path / "pacs.toml")
    out = tmp_path / "out"
    rc = main(["segment", f"pacs://orthanc/{study}/{series}", "--out", str(out), "--export", "seg,mask",
               "--store-to", "orthanc", "--pacs-via", via, "--pacs-config", str(cfg), "--cache", str(tmp_path / "c")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    ref_mask = np.asarray(nib.load(next(ref.glob("*_mask.nii.gz"))).dataobj)
    got_mask = np.asarray(nib.load(out / f"{series}_mask.nii.gz").dataobj)
    assert ref_mask.shape == got_mask.shape and (ref_mask >= 1).sum() > 100_000
    assert np.array_equal(ref_mask, got_mask)
    ref_seg = pydicom.dcmread(next(ref.glob("*_seg.dcm")))
    sop = str(pydicom.dcmread(out / f"{series}_seg.dcm").SOPInstanceUID)
    hits = [h for h in own_orthanc.rest("POST", "/tools/lookup", data=sop) if h["Type"] == "Instance"]
    assert len(hits) == 1
    stored = pydicom.dcmread(io.BytesIO(own_orthanc.rest_bytes(f"/instances/{hits[0]['ID']}/file")))
    assert stored.StudyInstanceUID == study
    assert stored.ReferencedSeriesSequence[0].SeriesInstanceUID == series
    assert np.array_equal(stored.pixel_array, ref_seg.pixel_array)
    assert len(stored.PerFrameFunctionalGroupsSequence) == len(ref_seg.PerFrameFunctionalGroupsSequence)
