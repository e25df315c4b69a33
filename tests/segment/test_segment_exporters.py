"""Exporters: names, plans, NIfTI geometry, DICOM SEG checks, montage, atomic export of all files."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from segment_helpers import TruthBackend, make_phantom, oblique_affine, write_ct_series

from liverseg_studio.core.colours import LIVER_COLOUR, TUMOUR_COLOUR
from liverseg_studio.core.errors import LiversegError
from liverseg_studio.core.io import OutputExistsError
from liverseg_studio.core.volume import Volume
from liverseg_studio.segment import segment_volume
from liverseg_studio.segment import exporters as ex


@pytest.fixture(scope="module")
def result():
    ph = make_phantom((12, 48, 56), (2.5, 0.8, 0.7), affine=oblique_affine((2.5, 0.8, 0.7)))
    return segment_volume(ph.volume(source="/data/scan.nii.gz", loader="nifti"), TruthBackend())


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_output_names():
    assert ex.output_name("/x/case_01.nii.gz") == "case_01"
    assert ex.output_name("/x/img_117.mrc") == "img_117"
    assert ex.output_name("/x/series folder/") == "series_folder"
    assert ex.output_name("slice.v2.png") == "slice.v2"
    assert ex.output_name(".nii.gz") == "nii"
    assert ex.unique_names(["a/x.nii.gz", "b/x.mrc", "c/X.png", "y.png"]) == ["x", "x-2", "X-3", "y"]


def test_formats():
    assert ex.FORMATS == ("mask", "overlay", "montage", "seg", "report")
    assert ex.normalise_formats("mask, Overlay,montage,seg,report") == ex.FORMATS
    assert ex.normalise_formats(None) == ex.FORMATS
    notes: list[str] = []
    # the old names (issue 14): accepted, each with a deprecation note
    assert ex.normalise_formats("nifti, PNG,dicom-seg,json", notes=notes) == ("mask", "montage", "seg", "report")
    assert len(notes) == 4 and all("deprecated" in n for n in notes)
    assert "use 'mask'" in notes[0] and "use 'montage'" in notes[1]
    with pytest.raises(LiversegError, match="gif"):
        ex.normalise_formats("gif")
    with pytest.raises(LiversegError):
        ex.normalise_formats(" , ")


def test_plans_for_volumes_slices_and_dicom(tmp_path):
    vol3d = Volume(array=np.zeros((3, 4, 4), np.int16))
    plan = ex.planned_outputs(vol3d, "a", tmp_path, ex.FORMATS)
    assert set(plan) == {"mask_nifti", "montage", "report"}
    png = Volume(array=np.zeros((1, 4, 4), np.uint8), intensity="display8", spacing_known=False)
    assert set(ex.planned_outputs(png, "a", tmp_path, ex.FORMATS)) == {"mask_png", "overlay_png", "montage", "report"}
    dcm = Volume(array=np.zeros((1, 4, 4), np.int16), loader="dicom", meta={"files": ["x.dcm"]})
    assert set(ex.planned_outputs(dcm, "a", tmp_path, ex.FORMATS)) == {
        "mask_png", "overlay_png", "mask_nifti", "dicom_seg", "montage", "report"
    }
    assert ex.skipped_formats(vol3d, ["seg"]) == {"seg": "the input is not DICOM"}
    assert ex.skipped_formats(dcm, ["seg"]) == {}
    assert set(ex.skipped_formats(vol3d, ["overlay", "mask"])) == {"overlay"}
    # each name plans its own files
    assert set(ex.planned_outputs(png, "a", tmp_path, ["mask"])) == {"mask_png"}
    assert set(ex.planned_outputs(png, "a", tmp_path, ["overlay"])) == {"overlay_png"}
    assert set(ex.planned_outputs(dcm, "a", tmp_path, ["seg", "report"])) == {"dicom_seg", "report"}


def test_nifti_mask_has_the_input_geometry_and_label_names(result, tmp_path):
    path = ex.write_nifti_mask(result, tmp_path / "m.nii.gz")
    img = nib.load(str(path))
    assert img.shape == (56, 48, 12)
    np.testing.assert_allclose(img.affine, result.volume.affine, atol=1e-5)
    np.testing.assert_allclose(img.get_sform(), result.volume.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(img.dataobj).T, result.labels)
    assert img.header.get_intent()[0] == "label"
    ext = json.loads(img.header.extensions[0].get_content())
    assert ext["labels"]["2"] == "Liver tumour" and ext["model"]["name"] == "truth-model"
    with pytest.raises(OutputExistsError):
        ex.write_nifti_mask(result, path)


def test_radiological_transform():
    assert ex.radiological_transform(np.diag([-0.8, -0.8, 2.5, 1.0])) == (False, False, False)
    assert ex.radiological_transform(np.eye(4)) == (False, True, True)
    swapped = np.array([[0, -0.8, 0, 0], [-0.8, 0, 0, 0], [0, 0, 2.5, 0], [0, 0, 0, 1.0]])
    assert ex.radiological_transform(swapped)[0] is True


def test_montage_picks_liver_slices_and_has_a_legend(result, tmp_path):
    labels = result.labels
    chosen = ex.montage_slices(labels, 4)
    counts = [np.count_nonzero(labels[k]) for k in range(labels.shape[0])]
    assert len(chosen) == 4 and chosen == sorted(chosen)
    assert min(counts[k] for k in chosen) >= sorted(counts)[-4]
    img = ex.montage_image(result, n=4, tile=128, columns=2)
    assert img.shape == (2 * 128 + 56, 2 * 128, 3)
    legend = img[2 * 128 :].reshape(-1, 3)
    for colour in (LIVER_COLOUR, TUMOUR_COLOUR):
        assert np.any(np.all(legend == colour, axis=1)), f"legend swatch {colour} missing"
    tiles = img[: 2 * 128].astype(int)
    # the overlay tints pixels towards the liver colour: greenish pixels exist
    assert np.any((tiles[..., 1] - tiles[..., 0] > 40) & (tiles[..., 1] > 60))
    path = ex.write_montage(result, tmp_path / "m.png")
    assert path.stat().st_size > 1000


def test_dicom_seg_needs_dicom_and_matching_geometry(result, tmp_path):
    with pytest.raises(LiversegError, match="DICOM"):
        ex.write_dicom_seg(result, tmp_path / "s.dcm")
    ph = make_phantom((6, 32, 32))
    paths = write_ct_series(tmp_path / "series", ph.hu, ph.affine)
    shifted = ph.affine.copy()
    shifted[2, 3] += 7.3  # half-way between slices
    vol = ph.volume(affine=shifted, loader="dicom-series", meta={"files": [str(p) for p in paths]})
    res = segment_volume(vol, TruthBackend())
    with pytest.raises(LiversegError, match="geometry"):
        ex.write_dicom_seg(res, tmp_path / "s.dcm")
    assert _names(tmp_path) == {"series"}


def test_dicom_seg_with_reordered_file_list(tmp_path):
    """The SEG places each frame by the source's position, not by the list order."""
    import highdicom as hd
    import pydicom

    ph = make_phantom((6, 32, 32))
    paths = write_ct_series(tmp_path / "series", ph.hu, ph.affine)
    vol = ph.volume(loader="dicom-series", meta={"files": [str(p) for p in reversed(paths)]})
    res = segment_volume(vol, TruthBackend(), postprocess=False)
    out = ex.write_dicom_seg(res, tmp_path / "s.dcm")
    seg = hd.seg.segread(str(out))
    uids = [pydicom.dcmread(str(p), stop_before_pixels=True).SOPInstanceUID for p in paths]
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, combine_segments=True, skip_overlap_checks=True
    )
    np.testing.assert_array_equal(pixels, ph.labels)


def test_export_result_is_all_or_nothing(result, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ex, "report_dict", broken)  # the last writer fails
    with pytest.raises(RuntimeError):
        ex.export_result(result, tmp_path, "scan")
    assert _names(tmp_path) == set()


def test_export_result_and_report(result, tmp_path):
    written = ex.export_result(result, tmp_path, "scan", input_path="/data/scan.nii.gz", load_seconds=0.25)
    assert _names(tmp_path) == {"scan_mask.nii.gz", "scan_montage.png", "scan_report.json"}
    report = json.loads(written["report"].read_text())
    assert report["input"]["path"] == "/data/scan.nii.gz"
    assert report["timings_s"]["load"] == 0.25
    assert report["outputs"] == {
        "mask_nifti": "scan_mask.nii.gz", "montage": "scan_montage.png", "report": "scan_report.json"
    }
    assert report["liver_voxels"] == int(np.count_nonzero(result.labels >= 1))
    assert report["labels"] == {"0": "Background", "1": "Liver", "2": "Liver tumour"}
    with pytest.raises(OutputExistsError):
        ex.export_result(result, tmp_path, "scan")
    ex.export_result(result, tmp_path, "scan", overwrite=True)
    assert _names(tmp_path) == {"scan_mask.nii.gz", "scan_montage.png", "scan_report.json"}


def test_windowed_rgb_slice_overlay_keeps_the_input_size(tmp_path):
    from PIL import Image

    from liverseg_studio.backends.base import Prediction

    rgb = np.zeros((1, 30, 40, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    labels = np.zeros((1, 30, 40), dtype=np.uint8)
    labels[0, 5:25, 5:30] = 1
    labels[0, 10:15, 10:15] = 2

    class Fixed:
        name = "fixed"

        def predict(self, volume, *, progress=None, is_cancelled=None):
            return Prediction(labels=labels.copy())

    vol = Volume(array=rgb, intensity="windowed_rgb", spacing_known=False, source="/x/slice.jpg", loader="image")
    res = segment_volume(vol, Fixed(), postprocess=False)
    written = ex.export_result(res, tmp_path, "slice")
    assert set(written) == {"mask_png", "overlay_png", "montage", "report"}
    mask = np.asarray(Image.open(written["mask_png"]))
    np.testing.assert_array_equal(mask, labels[0])
    overlay = np.asarray(Image.open(written["overlay_png"]))
    assert overlay.shape == (30, 40, 3)
    np.testing.assert_array_equal(overlay[0, 0], [200, 0, 0])  # background untouched
    assert not np.array_equal(overlay[12, 12], [200, 0, 0])  # tumour tinted
    report = json.loads(written["report"].read_text())
    assert report["liver_area_px"] == 500 and report["tumour_area_px"] == 25 and report["liver_ml"] is None


def test_failing_dicom_seg_is_skipped_only_when_optional(tmp_path):
    ph = make_phantom((6, 32, 32))
    paths = write_ct_series(tmp_path / "series", ph.hu, ph.affine)
    shifted = ph.affine.copy()
    shifted[2, 3] += 7.3  # the SEG cannot place the frames: a LiversegError
    vol = ph.volume(affine=shifted, loader="dicom-series", meta={"files": [str(p) for p in paths]})
    res = segment_volume(vol, TruthBackend())
    out = tmp_path / "out"
    out.mkdir()
    skipped: dict[str, str] = {}
    written = ex.export_result(res, out, "s", ("mask", "seg", "report"), optional=("seg",), skipped=skipped)
    assert set(written) == {"mask_nifti", "report"} and "geometry" in skipped["seg"]
    report = json.loads(written["report"].read_text())
    assert any(n.startswith("seg not written") for n in report["notes"])
    assert "dicom_seg" not in report["outputs"]


def test_one_failed_export_keeps_the_others(tmp_path):
    """Issue 14 item 3: every requested format is attempted; the failure is one line."""
    ph = make_phantom((6, 32, 32))
    paths = write_ct_series(tmp_path / "series", ph.hu, ph.affine)
    shifted = ph.affine.copy()
    shifted[2, 3] += 7.3  # the SEG cannot place the frames
    vol = ph.volume(affine=shifted, loader="dicom-series", meta={"files": [str(p) for p in paths]})
    res = segment_volume(vol, TruthBackend())
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ex.ExportError, match="geometry") as info:
        ex.export_result(res, out, "s", ("mask", "seg", "montage", "report"))
    assert set(info.value.failures) == {"seg"} and "\n" not in info.value.failures["seg"]
    assert set(info.value.written) == {"mask_nifti", "montage", "report"}
    assert _names(out) == {"s_mask.nii.gz", "s_montage.png", "s_report.json"}
    report = json.loads((out / "s_report.json").read_text())
    assert set(report["outputs"]) == {"mask_nifti", "montage", "report"}
    assert any(n.startswith("seg not written") for n in report["notes"])


def test_a_failing_writer_does_not_stop_the_next(result, tmp_path, monkeypatch):
    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ex, "montage_image", full_disk)
    with pytest.raises(ex.ExportError, match="No space left") as info:
        ex.export_result(result, tmp_path, "scan")
    assert set(info.value.failures) == {"montage"}
    assert _names(tmp_path) == {"scan_mask.nii.gz", "scan_report.json"}  # no temporary file left
