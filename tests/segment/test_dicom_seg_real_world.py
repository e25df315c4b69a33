"""DICOM SEG from messy real-world series (issue 14, item 2).

Each fixture reproduces one failure found on real archives: pydicom's test file
and the phantom series with SpecificCharacterSet emptied, with the Study/Series/
SOP Class UIDs emptied (an anonymised export), without FrameOfReferenceUID (an
old GDCM export, like ``../shared/data/volumes/ircad-1.01/ct``).  Expected: a SEG
that dciodvfy reports with 0 errors, that highdicom reads back with its frames
on the source slices, and a note saying what was generated or defaulted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers.dciodvfy import requires_dciodvfy, run_dciodvfy
from pydicom.data import get_testdata_file
from segment_helpers import TruthBackend, make_phantom, write_ct_series

from liverseg_studio.backends.base import Prediction
from liverseg_studio.core.errors import LiversegError
from liverseg_studio.plugins.manager import get_plugin_manager
from liverseg_studio.plugins.registry import LoadOptions
from liverseg_studio.segment import exporters as ex
from liverseg_studio.segment import segment_volume
from liverseg_studio.segment.seg_sources import DEFAULT_CHARACTER_SET, mend_sources

IRCAD_CT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "volumes" / "ircad-1.01" / "ct"


def _empty_charset(ds):
    ds.SpecificCharacterSet = ""


def _empty_uids(ds):
    ds.StudyInstanceUID = ""
    ds.SeriesInstanceUID = ""
    ds.SOPClassUID = ""


def _no_frame_of_reference(ds):
    del ds.FrameOfReferenceUID


MUTATIONS = {
    "empty SpecificCharacterSet": (_empty_charset, "SpecificCharacterSet"),
    "empty Study/Series/SOPClass UIDs": (_empty_uids, "Series Instance UID"),
    "no FrameOfReferenceUID": (_no_frame_of_reference, "Frame of Reference UID"),
}


def _mutate(paths, mutate):
    for p in paths:
        ds = pydicom.dcmread(str(p))
        mutate(ds)
        ds.save_as(str(p))


class BoxBackend:
    """Liver in a box (tumour in its centre) on the middle slices: real CT has no truth here."""

    name = "box"

    def predict(self, volume, *, progress=None, is_cancelled=None):
        nz, ny, nx = volume.shape[:3]
        lab = np.zeros((nz, ny, nx), dtype=np.uint8)
        z0, z1 = (nz // 3, max(nz // 3 + 1, 2 * nz // 3)) if nz > 1 else (0, 1)
        lab[z0:z1, ny // 4 : ny // 2, nx // 4 : nx // 2] = 1
        lab[z0:z1, 3 * ny // 8 : 3 * ny // 8 + 4, 3 * nx // 8 : 3 * nx // 8 + 4] = 2
        return Prediction(labels=lab)


def _load(path: Path):
    return get_plugin_manager().loaders.load(path, LoadOptions())


def _check_seg(seg_path: Path, source_paths: list[Path], expected: np.ndarray) -> None:
    """dciodvfy: 0 errors; highdicom reads it back with each frame on its source slice."""
    import highdicom as hd

    n_errors, output = run_dciodvfy(seg_path)
    assert n_errors == 0, output
    seg = hd.seg.segread(str(seg_path))
    uids = [pydicom.dcmread(str(p), stop_before_pixels=True).SOPInstanceUID for p in source_paths]
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, combine_segments=True, skip_overlap_checks=True
    )
    np.testing.assert_array_equal(pixels, expected)


@requires_dciodvfy
@pytest.mark.parametrize("case", list(MUTATIONS))
def test_messy_series_makes_a_valid_seg(case, tmp_path):
    mutate, said = MUTATIONS[case]
    ph = make_phantom((6, 32, 32))
    paths = write_ct_series(tmp_path / "series", ph.hu, ph.affine)
    _mutate(paths, mutate)
    vol = _load(tmp_path / "series")
    res = segment_volume(vol, TruthBackend(), postprocess=False)
    out = tmp_path / "out"
    out.mkdir()
    warnings: list[str] = []
    written = ex.export_result(res, out, "s", ("seg", "report"), warnings=warnings)
    _check_seg(written["dicom_seg"], paths, ph.labels)
    report = json.loads(written["report"].read_text())
    assert any(said in n for n in report["notes"]), report["notes"]
    assert any(said in w for w in warnings), warnings


@requires_dciodvfy
@pytest.mark.parametrize("case", list(MUTATIONS))
def test_messy_pydicom_file_makes_a_valid_seg(case, tmp_path):
    mutate, said = MUTATIONS[case]
    path = tmp_path / "CT_small.dcm"
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    mutate(ds)
    ds.save_as(str(path))
    res = segment_volume(_load(path), BoxBackend(), postprocess=False)
    repairs: list[str] = []
    seg_path = ex.write_dicom_seg(res, tmp_path / "seg.dcm", repairs=repairs)
    _check_seg(seg_path, [path], res.labels)
    assert any(said in r for r in repairs), repairs
    seg = pydicom.dcmread(str(seg_path))
    if case == "empty SpecificCharacterSet":
        assert seg.SpecificCharacterSet == DEFAULT_CHARACTER_SET
    if case == "empty Study/Series/SOPClass UIDs":
        ref = seg.ReferencedSeriesSequence[0]
        assert ref.ReferencedInstanceSequence[0].ReferencedSOPClassUID == pydicom.uid.CTImageStorage
        assert seg.StudyInstanceUID and ref.SeriesInstanceUID


def test_generated_uids_are_stable_and_the_source_is_not_touched(tmp_path):
    path = tmp_path / "CT_small.dcm"
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    _empty_uids(ds)
    ds.save_as(str(path))
    before = path.read_bytes()
    src = pydicom.dcmread(str(path), stop_before_pixels=True)
    first, notes = mend_sources([src])
    again, _ = mend_sources([pydicom.dcmread(str(path), stop_before_pixels=True)])
    assert first[0].SeriesInstanceUID == again[0].SeriesInstanceUID != ""
    assert first[0].StudyInstanceUID == again[0].StudyInstanceUID != ""
    assert src.SeriesInstanceUID == ""  # a copy was mended
    assert path.read_bytes() == before
    assert len(notes) == 3


def test_series_without_pixel_geometry_is_refused_in_one_line(tmp_path):
    ph = make_phantom((4, 16, 16))
    paths = write_ct_series(tmp_path / "series", ph.hu, ph.affine)
    sources = [pydicom.dcmread(str(p), stop_before_pixels=True) for p in paths]
    for ds in sources:
        del ds.ImagePositionPatient
    with pytest.raises(LiversegError, match="no pixel geometry") as info:
        mend_sources(sources, label="series")
    assert "\n" not in str(info.value) and str(info.value).startswith("series: 4 of 4 source image(s)")


def test_image_without_pixel_geometry_is_refused_in_one_line(tmp_path):
    """The one thing that cannot be mended; the other exports are still written."""
    path = tmp_path / "CT_small.dcm"
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient"):
        delattr(ds, keyword)
    ds.save_as(str(path))
    res = segment_volume(_load(path), BoxBackend(), postprocess=False)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ex.ExportError) as info:
        ex.export_result(res, out, "s", ("mask", "seg", "report"))
    assert set(info.value.failures) == {"seg"} and "no pixel geometry" in info.value.failures["seg"]
    assert "\n" not in str(info.value)
    assert {"mask_png", "report"} <= set(info.value.written) and "dicom_seg" not in info.value.written
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in info.value.written.values())
    report = json.loads(info.value.written["report"].read_text())
    assert "dicom_seg" not in report["outputs"] and any("no pixel geometry" in n for n in report["notes"])


@requires_dciodvfy
@pytest.mark.skipif(not IRCAD_CT.is_dir(), reason=f"real series not here: {IRCAD_CT} (shared data)")
def test_real_series_without_frame_of_reference(tmp_path):
    """3D-IRCADb 1.01 (an old GDCM export without FrameOfReferenceUID): the failure as found."""
    vol = _load(IRCAD_CT)
    res = segment_volume(vol, BoxBackend(), postprocess=False)
    repairs: list[str] = []
    seg_path = ex.write_dicom_seg(res, tmp_path / "seg.dcm", repairs=repairs)
    assert any("Frame of Reference UID" in r for r in repairs), repairs
    files = [Path(f) for f in vol.meta["files"]]
    _check_seg(seg_path, files, res.labels)
