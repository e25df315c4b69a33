"""``liverseg segment`` end to end, in-process with a ground-truth backend."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from segment_helpers import LIVER_HU, TRUTH_BACKEND, analytic_volumes_ml, make_phantom, tumour_diameter_mm

from liverseg_studio import cli
from liverseg_studio.core.io import TEMP_PREFIX


def _run(*args: str) -> int:
    return cli.main(["segment", *args])


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_nifti_phantom_report_mask_and_montage(plugin_manager, analytic_nifti, analytic_phantom, tmp_path, capsys):
    out = tmp_path / "out"
    rc = _run(str(analytic_nifti), "--out", str(out), "--backend", TRUTH_BACKEND, "--threads", "2")
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert _files(out) == {"abdomen_mask.nii.gz", "abdomen_montage.png", "abdomen_report.json"}
    assert "slices/s" in captured.out and "throughput" in captured.out

    report = json.loads((out / "abdomen_report.json").read_text())
    liver_ml, tumour_ml = analytic_volumes_ml()
    assert report["liver_ml"] == pytest.approx(liver_ml, rel=0.01)
    assert report["tumour_ml"] == pytest.approx(tumour_ml, rel=0.01)
    assert report["tumour_burden_percent"] == pytest.approx(100 * tumour_ml / liver_ml, rel=0.015)
    assert len(report["lesions"]) == 1
    lesion = report["lesions"][0]
    assert lesion["volume_ml"] == pytest.approx(tumour_ml, rel=0.01)
    assert lesion["longest_axial_diameter_mm"] == pytest.approx(tumour_diameter_mm(), abs=1.0)
    assert lesion["centroid_slice"] in (19, 20)
    centre = analytic_phantom.affine @ np.array([0.36 * 128 - 0.5, 0.47 * 128 - 0.5, 0.5 * 40 - 0.5, 1.0])
    np.testing.assert_allclose(lesion["centroid_ras_mm"], centre[:3], atol=0.5)
    assert report["input"]["loader"] == "nifti"
    assert report["input"]["shape_zyx"] == [40, 128, 128]
    assert report["input"]["spacing_mm_zyx"] == pytest.approx([2.0, 0.9, 0.9])
    assert report["model"]["name"] == "truth-model" and report["model"]["version"] == "9.9.9"
    assert report["model"]["sha256"] == "ab" * 32
    assert report["software"]["version"]
    for key in ("load", "inference", "postprocess"):
        assert report["timings_s"][key] is not None and report["timings_s"][key] >= 0

    img = nib.load(str(out / "abdomen_mask.nii.gz"))
    src = nib.load(str(analytic_nifti))
    assert img.shape == src.shape
    np.testing.assert_allclose(img.affine, src.affine, atol=1e-5)
    assert img.get_data_dtype() == np.uint8
    mask = np.asarray(img.dataobj).T
    np.testing.assert_array_equal(mask, analytic_phantom.labels)
    ext = [e for e in img.header.extensions if e.get_code() == 6]
    assert ext and json.loads(ext[0].get_content())["labels"] == {"0": "Background", "1": "Liver", "2": "Liver tumour"}
    assert plugin_manager.backends.get(TRUTH_BACKEND).plugin == "truth-test-plugin"


def test_dicom_series_seg_reads_back_at_the_same_positions(plugin_manager, analytic_series, tmp_path, capsys):
    import highdicom as hd

    folder, ph, paths = analytic_series
    out = tmp_path / "out"
    rc = _run(str(folder), "--out", str(out), "--backend", TRUTH_BACKEND)
    assert rc == 0, capsys.readouterr().err
    assert _files(out) == {"series_a_mask.nii.gz", "series_a_seg.dcm", "series_a_montage.png", "series_a_report.json"}
    report = json.loads((out / "series_a_report.json").read_text())
    liver_ml, tumour_ml = analytic_volumes_ml()
    assert report["liver_ml"] == pytest.approx(liver_ml, rel=0.01)
    assert report["tumour_ml"] == pytest.approx(tumour_ml, rel=0.01)
    assert report["input"]["loader"] == "dicom-series"

    # NIfTI of a DICOM input: the series affine (RAS), the input's shape
    img = nib.load(str(out / "series_a_mask.nii.gz"))
    np.testing.assert_allclose(img.affine, ph.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj).T, ph.labels)

    seg = hd.seg.segread(str(out / "series_a_seg.dcm"))
    assert seg.SegmentationType == "BINARY"
    descs = {int(d.SegmentNumber): d for d in seg.SegmentSequence}
    assert descs[1].SegmentLabel == "Liver"
    assert descs[1].SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"
    assert descs[1].SegmentedPropertyCategoryCodeSequence[0].CodeValue == "123037004"
    assert descs[2].SegmentLabel == "Liver tumour"
    assert descs[2].SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"
    assert descs[2].SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    for d in descs.values():
        assert d.SegmentAlgorithmType == "AUTOMATIC"
        assert d.SegmentAlgorithmName == "truth-model"
        assert d.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == "9.9.9"
    sources = [pydicom.dcmread(str(p), stop_before_pixels=True) for p in paths]
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    referenced = {
        r.ReferencedSOPInstanceUID
        for s in seg.ReferencedSeriesSequence
        for r in s.ReferencedInstanceSequence
    }
    assert referenced == {s.SOPInstanceUID for s in sources}
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[s.SOPInstanceUID for s in sources], combine_segments=True, skip_overlap_checks=True
    )
    # paths are in slice order: the k-th source sits at phantom slice k
    np.testing.assert_array_equal(pixels, ph.labels)
    # and the SEG's own frame positions agree with the source positions
    pos_by_uid = {s.SOPInstanceUID: [float(v) for v in s.ImagePositionPatient] for s in sources}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        seg_pos = [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(seg_pos, pos_by_uid[uid], atol=1e-3)


def test_batch_reports_and_skips_bad_inputs_then_exits_2(plugin_manager, analytic_nifti, tmp_path, capsys):
    folder = analytic_nifti.parent
    (folder / "broken.nii.gz").write_bytes(b"\x1f\x8b this is not gzip at all")
    (folder / "notes.txt").write_text("not an image\n")
    (folder / ".hidden").write_text("ignored\n")
    (folder / "old_report.json").write_text("{}\n")  # an earlier run's output: skipped, not a failure
    out = tmp_path / "out"
    rc = _run(str(folder), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", "report")
    captured = capsys.readouterr()
    assert rc == 2
    assert _files(out) == {"abdomen_report.json"}
    assert "broken.nii.gz" in captured.err and "notes.txt" in captured.err
    assert ".hidden" not in captured.err + captured.out
    assert "skipping" in captured.err and "old_report.json" in captured.err
    assert "segmented 1 of 3 input(s)" in captured.out


def test_missing_input_among_good_ones(plugin_manager, analytic_nifti, tmp_path, capsys):
    out = tmp_path / "out"
    missing = str(tmp_path / "nope.nii.gz")
    rc = _run(missing, str(analytic_nifti), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", "mask")
    assert rc == 2
    assert _files(out) == {"abdomen_mask.nii.gz"}
    assert "nope.nii.gz" in capsys.readouterr().err


def test_no_overwrite_without_flag(plugin_manager, analytic_nifti, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "abdomen_report.json"
    existing.write_text("user data\n")
    rc = _run(str(analytic_nifti), "--out", str(out), "--backend", TRUTH_BACKEND)
    assert rc == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err
    assert "slices/s" not in err  # refused before segmenting, not after
    assert existing.read_text() == "user data\n"
    assert _files(out) == {"abdomen_report.json"}  # nothing else written for that input

    rc = _run(str(analytic_nifti), "--out", str(out), "--backend", TRUTH_BACKEND, "--overwrite")
    assert rc == 0
    assert json.loads(existing.read_text())["liver_voxels"] > 0
    assert _files(out) == {"abdomen_report.json", "abdomen_mask.nii.gz", "abdomen_montage.png"}


def test_input_is_never_modified(plugin_manager, analytic_nifti, tmp_path):
    before = analytic_nifti.read_bytes()
    mtime = analytic_nifti.stat().st_mtime_ns
    assert _run(str(analytic_nifti), "--out", str(analytic_nifti.parent), "--backend", TRUTH_BACKEND) == 0
    assert analytic_nifti.read_bytes() == before and analytic_nifti.stat().st_mtime_ns == mtime


def test_interrupt_during_export_leaves_no_partial_files(plugin_manager, analytic_nifti, tmp_path, monkeypatch, capsys):
    from liverseg_studio.segment import exporters

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(exporters, "montage_image", boom)  # the NIfTI is already written to its temp by then
    out = tmp_path / "out"
    rc = _run(str(analytic_nifti), "--out", str(out), "--backend", TRUTH_BACKEND)
    assert rc == 130
    assert _files(out) == set()


def test_interrupt_during_inference_leaves_nothing(plugin_manager, analytic_nifti, tmp_path, monkeypatch):
    from segment_helpers import TruthBackend

    def predict(self, volume, *, progress=None, is_cancelled=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(TruthBackend, "predict", predict)
    out = tmp_path / "out"
    assert _run(str(analytic_nifti), "--out", str(out), "--backend", TRUTH_BACKEND) == 130
    assert not any(p.name.startswith(TEMP_PREFIX) for p in out.iterdir())
    assert _files(out) == set()


def test_sigterm_becomes_keyboard_interrupt():
    # in a fresh interpreter: in the full suite, native threads of earlier tests (engines, Qt) made this
    # process die with SIGSEGV on SIGTERM (twice); the behaviour under test is the handler's
    import subprocess
    import sys

    code = (
        "import os, signal\n"
        "from liverseg_studio.core.signals import sigterm_as_interrupt\n"
        "before = signal.getsignal(signal.SIGTERM)\n"
        "try:\n"
        "    with sigterm_as_interrupt():\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        for _ in range(100000): pass\n"
        "    print('no interrupt')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupt', signal.getsignal(signal.SIGTERM) == before)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "interrupt True"


def test_unknown_backend_and_bad_export_are_clear_errors(plugin_manager, analytic_nifti, tmp_path, capsys):
    assert _run(str(analytic_nifti), "--out", str(tmp_path / "o"), "--backend", "nope") == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        _run(str(analytic_nifti), "--out", str(tmp_path / "o"), "--export", "mask,gif")
    assert exc.value.code == 2
    assert "unknown export format 'gif'" in capsys.readouterr().err


def test_no_postprocess_keeps_islands(plugin_manager, tmp_path, analytic_phantom):
    from segment_helpers import LIVER_HU, write_nifti

    hu = analytic_phantom.hu.copy()
    hu[2:4, 100:104, 100:104] = LIVER_HU  # a distant "liver" island of 32 voxels
    path = write_nifti(tmp_path / "island.nii.gz", hu, analytic_phantom.affine, dtype="int16")
    out1, out2 = tmp_path / "pp", tmp_path / "raw"
    assert _run(str(path), "--out", str(out1), "--backend", TRUTH_BACKEND, "--export", "mask,report") == 0
    args = ["--backend", TRUTH_BACKEND, "--export", "mask,report"]
    assert _run(str(path), "--out", str(out2), *args, "--no-postprocess") == 0
    pp = np.asarray(nib.load(str(out1 / "island_mask.nii.gz")).dataobj).T
    raw = np.asarray(nib.load(str(out2 / "island_mask.nii.gz")).dataobj).T
    assert raw[2:4, 100:104, 100:104].all() and not pp[2:4, 100:104, 100:104].any()
    changes = json.loads((out1 / "island_report.json").read_text())["postprocessing"]["changes"]
    assert changes["removed_liver_islands"] == 1
    assert json.loads((out2 / "island_report.json").read_text())["postprocessing"]["enabled"] is False


def test_png_slice_gets_png_mask_and_overlay(plugin_manager, tmp_path):
    from PIL import Image

    from segment_helpers import LIVER_HU, TUMOUR_HU

    grey = np.full((70, 90), 100, dtype=np.uint8)
    grey[20:50, 10:60] = LIVER_HU
    grey[30:40, 20:30] = TUMOUR_HU
    Image.fromarray(grey).save(tmp_path / "slice.png")
    out = tmp_path / "out"
    assert _run(str(tmp_path / "slice.png"), "--out", str(out), "--backend", TRUTH_BACKEND) == 0
    assert _files(out) == {"slice_mask.png", "slice_overlay.png", "slice_montage.png", "slice_report.json"}
    mask = np.asarray(Image.open(out / "slice_mask.png"))
    assert mask.shape == (70, 90) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1, 2}
    assert np.count_nonzero(mask == 2) == 100 and np.count_nonzero(mask >= 1) == 1500
    overlay = np.asarray(Image.open(out / "slice_overlay.png"))
    assert overlay.shape == (70, 90, 3)
    report = json.loads((out / "slice_report.json").read_text())
    assert report["liver_ml"] is None and report["liver_area_px"] == 1500
    assert "spacing unknown" in " ".join(report["notes"])


def test_sample_case_with_threshold_backend(plugin_manager, tmp_path, capsys):
    from liverseg_studio.sample import sample_image

    sample = sample_image()
    if sample is None:
        pytest.skip("sample case (liver-ct-segmentation-package) not installed")
    if "threshold" not in plugin_manager.backends:
        pytest.skip("threshold backend plugin not installed")
    out = tmp_path / "out"
    rc = _run(str(sample), "--out", str(out), "--backend", "threshold")
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert _files(out) == {"img_117_mask.nii.gz", "img_117_montage.png", "img_117_report.json"}
    assert "slices/s" in captured.out
    report = json.loads((out / "img_117_report.json").read_text())
    assert report["input"]["shape_zyx"] == [128, 128, 128]
    assert report["liver_ml"] is None and report["liver_voxels"] > 0  # spacing unknown (voxel size 0)
    assert report["volumetry"]["note"]


def test_single_dicom_slice_gets_png_nifti_and_seg(plugin_manager, tmp_path, capsys):
    import highdicom as hd
    from helpers.phantom import ct_dataset
    from PIL import Image

    ph = make_phantom((12, 64, 64))
    k = 6
    ds = ct_dataset(ph.hu[k], position_lps=(-50.0, -40.0, 12.5), pixel_spacing=(0.8, 0.8), slice_thickness=2.5)
    path = tmp_path / "one.dcm"
    ds.save_as(str(path), enforce_file_format=True)
    out = tmp_path / "out"
    rc = _run(str(path), "--out", str(out), "--backend", TRUTH_BACKEND, "--no-postprocess")
    assert rc == 0, capsys.readouterr().err
    assert _files(out) == {
        "one_mask.png", "one_overlay.png", "one_mask.nii.gz", "one_seg.dcm", "one_montage.png", "one_report.json"
    }
    mask = np.asarray(Image.open(out / "one_mask.png"))
    np.testing.assert_array_equal(mask, ph.labels[k])
    seg = hd.seg.segread(str(out / "one_seg.dcm"))
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[ds.SOPInstanceUID], combine_segments=True, skip_overlap_checks=True
    )
    np.testing.assert_array_equal(pixels[0], ph.labels[k])
    report = json.loads((out / "one_report.json").read_text())
    assert report["liver_ml"] == pytest.approx(np.count_nonzero(ph.labels[k]) * 0.8 * 0.8 * 2.5 / 1000, rel=1e-3)


def test_input_window_reaches_the_loader(plugin_manager, tmp_path):
    from PIL import Image

    grey = np.full((40, 40), 100, dtype=np.uint8)
    grey[10:30, 10:30] = LIVER_HU + 100  # grey 160 is 60 HU with --input-window -100,155
    Image.fromarray(grey).save(tmp_path / "w.png")
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    assert _run(str(tmp_path / "w.png"), "--out", str(out1), "--backend", TRUTH_BACKEND, "--export", "report") == 0
    assert _run(
        str(tmp_path / "w.png"), "--out", str(out2), "--backend", TRUTH_BACKEND, "--export", "report",
        "--input-window=-100,155",
    ) == 0
    assert json.loads((out1 / "w_report.json").read_text())["liver_voxels"] == 0
    assert json.loads((out2 / "w_report.json").read_text())["liver_voxels"] == 400


def test_folder_batch_of_a_nifti_and_a_dicom_series_folder(plugin_manager, analytic_nifti, analytic_series, tmp_path):
    series_folder, _, _ = analytic_series
    batch = analytic_nifti.parent
    (batch / "series_b").symlink_to(series_folder, target_is_directory=True)
    out = tmp_path / "out"
    rc = _run(str(batch), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", "report,seg")
    assert rc == 0
    assert _files(out) == {"abdomen_report.json", "series_b_report.json", "series_b_seg.dcm"}
    report = json.loads((out / "abdomen_report.json").read_text())
    assert "seg not written: the input is not DICOM" in report["notes"]


def test_full_disk_is_a_clear_error_and_leaves_no_partial_files(plugin_manager, analytic_nifti, tmp_path, monkeypatch, capsys):
    """A disk that fills up while the mask is written: one clear line, exit 2, nothing half-written."""
    import errno

    real_save = nib.save

    def full_disk(img, filename, *a, **k):
        real_save(img, filename, *a, **k)  # bytes reach the temporary file, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filename))

    monkeypatch.setattr(nib, "save", full_disk)  # the exporters import nibabel lazily
    out = tmp_path / "out"
    rc = _run(str(analytic_nifti), "--out", str(out), "--backend", TRUTH_BACKEND)
    err = capsys.readouterr().err
    assert rc == 2
    assert "No space left on device" in err
    assert "Traceback" not in err
    assert not any(name.startswith(TEMP_PREFIX) for name in _files(out))
    assert not any(name.endswith(".nii.gz") for name in _files(out))


def test_old_export_names_work_with_a_deprecation_note(plugin_manager, analytic_nifti, tmp_path, capsys):
    """Issue 14 item 4: the old names still work, each with one note naming the new one."""
    out = tmp_path / "out"
    assert _run(str(analytic_nifti), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", "nifti,json") == 0
    assert _files(out) == {"abdomen_mask.nii.gz", "abdomen_report.json"}
    err = capsys.readouterr().err
    assert "'nifti' is deprecated: use 'mask'" in err and "'json' is deprecated: use 'report'" in err


def test_slice_exports_are_named_after_their_files(plugin_manager, tmp_path):
    """``mask`` writes the slice's mask PNG, ``overlay`` its overlay, ``montage`` only the montage."""
    from PIL import Image

    grey = np.full((40, 40), 100, dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "s.png")
    for fmt, expected in (
        ("mask", {"s_mask.png"}),
        ("overlay", {"s_overlay.png"}),
        ("montage", {"s_montage.png"}),
        ("report", {"s_report.json"}),
    ):
        out = tmp_path / fmt
        assert _run(str(tmp_path / "s.png"), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", fmt) == 0
        assert _files(out) == expected, fmt


def test_a_failed_seg_keeps_the_other_exports_and_exits_2(plugin_manager, analytic_series, tmp_path, monkeypatch, capsys):
    """Issue 14 item 3: with a SEG failure (as highdicom raised it before the source headers were
    mended) the mask, montage and report are still written; one line says what failed; exit 2."""
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.segment import seg_sources

    def refuse(*a, **k):
        raise LiversegError("cannot make a DICOM SEG: Source images have no Frame Of Reference UID")

    monkeypatch.setattr(seg_sources, "mend_sources", refuse)
    series_folder, _, _ = analytic_series
    out = tmp_path / "out"
    rc = _run(str(series_folder), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", "mask,seg,montage,report")
    captured = capsys.readouterr()
    assert rc == 2
    name = series_folder.name
    assert _files(out) == {f"{name}_mask.nii.gz", f"{name}_montage.png", f"{name}_report.json"}
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "seg not written" in errors[0] and "Frame Of Reference" in errors[0], captured.err
    assert "segmented 1 of 1 input(s); 1 export(s) failed" in captured.out and "Traceback" not in captured.err
    report = json.loads((out / f"{name}_report.json").read_text())
    assert "dicom_seg" not in report["outputs"] and any("seg not written" in n for n in report["notes"])
