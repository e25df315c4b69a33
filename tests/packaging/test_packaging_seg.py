"""Issue 27: the self-test writes and reads a DICOM SEG, and names the library whose data is missing.

Run unfrozen (seconds); ``make package-test`` runs the same steps in the frozen build.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from liverseg_studio import selftest

ROOT = Path(__file__).resolve().parents[2]


def test_synthetic_series_round_trips_through_the_loader(tmp_path):
    from liverseg_studio.plugins.manager import PluginManager
    from liverseg_studio.plugins.registry import LoadOptions

    volume, _ = selftest.phantom(n_slices=3, size=64)
    files = selftest.write_dicom_series(volume, tmp_path / "ct", rle=True)
    assert len(files) == 3
    import pydicom

    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    loaded = PluginManager().load_entrypoints().loaders.load(tmp_path / "ct", LoadOptions())
    assert loaded.loader == "dicom-series"
    assert loaded.shape == volume.shape
    assert np.allclose(loaded.affine, volume.affine, atol=1e-3)
    assert np.array_equal(np.asarray(loaded.array, np.float32), volume.array)


def test_self_test_writes_and_reads_back_a_seg(capsys):
    assert selftest.run_self_test(backend="threshold") == 0
    out = capsys.readouterr().out
    assert "ok    DICOM series -> DICOM SEG -> highdicom" in out
    assert "read back by highdicom" in out and "pixel-data decoders: " in out
    assert "RLE Lossless: " in out and "RLE Lossless: none" not in out


def test_missing_highdicom_tables_fail_in_one_line_naming_highdicom(capsys, monkeypatch):
    """What the frozen build did before issue 27: highdicom's _standard tables were not collected."""
    import highdicom._standard_utils as su

    bundle = "/opt/liverseg-studio-0.1.0/_internal"
    missing = f"{bundle}/highdicom/_standard/sop_class_iod_map.json"

    def get_data(package, resource):
        raise FileNotFoundError(2, "No such file or directory", missing)

    monkeypatch.setattr(su.pkgutil, "get_data", get_data)
    for fn in (su.get_sop_class_iod_map, su.get_iod_module_map, su.get_module_attribute_map):
        fn.cache_clear()
    monkeypatch.setattr(sys, "_MEIPASS", bundle, raising=False)
    try:
        rc = selftest.run_self_test(backend="threshold")
    finally:
        for fn in (su.get_sop_class_iod_map, su.get_iod_module_map, su.get_module_attribute_map):
            fn.cache_clear()
    out = capsys.readouterr().out
    assert rc == 1
    fail_lines = [line for line in out.splitlines() if line.startswith("FAIL  DICOM series -> DICOM SEG")]
    assert len(fail_lines) == 1, out
    assert fail_lines[0].endswith(
        "highdicom's data file _standard/sop_class_iod_map.json is missing from this build"), fail_lines[0]


def test_missing_library_data_names_modules_and_files():
    err = ModuleNotFoundError("No module named 'pylibjpeg'", name="pylibjpeg")
    assert selftest.missing_library_data(err) == "module 'pylibjpeg' is missing from this build (library pylibjpeg)"
    wrapped = RuntimeError("cannot make a DICOM SEG for x: FileNotFoundError: [Errno 2] No such file or directory: "
                           "'/b/_internal/pydicom/data/urls.json'")
    assert selftest.missing_library_data(wrapped) == "pydicom's data file data/urls.json is missing from this build"
    assert selftest.missing_library_data(ValueError("something else")) is None


def test_studio_opens_a_series_runs_and_exports_a_seg(tmp_path, capsys):
    pytest.importorskip("PySide6")
    volume, _ = selftest.phantom(n_slices=3, size=64)
    selftest.write_dicom_series(volume, tmp_path / "ct", rle=False)
    seg = selftest.studio_export_seg(tmp_path / "ct", tmp_path / "studio_seg.dcm", backend="threshold",
                                     timeout_s=120)
    import highdicom as hd

    assert hd.seg.segread(str(seg)).SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"


def test_compare_outputs_accepts_equal_and_rejects_changed_masks(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import compare_outputs
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    import nibabel as nib

    for which in ("a", "b"):
        d = tmp_path / which
        d.mkdir()
        mask = np.zeros((4, 5, 6), np.uint8)
        mask[1:3, 1:3, 1:3] = 1
        nib.save(nib.Nifti1Image(mask, np.eye(4)), str(d / "x_mask.nii.gz"))
        (d / "x_report.json").write_text('{"liver_ml": 1.5, "timings_s": {"load": %d}}' % (1 if which == "a" else 2))
    assert compare_outputs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    mask[0, 0, 0] = 2
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(tmp_path / "b" / "x_mask.nii.gz"))
    assert compare_outputs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "FAIL x_mask.nii.gz: 1 voxels differ" in capsys.readouterr().out
    (tmp_path / "b" / "extra.obj").write_text("")
    assert compare_outputs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1


def test_frozen_cli_names_the_commands_it_leaves_out():
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import entry_cli
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    for cmd in ("cohort", "train", "export"):
        msg = entry_cli.left_out([cmd, "x"])
        assert msg is not None and msg.startswith(f"liverseg {cmd}: error: not in the offline bundle")
        assert "\n" not in msg
    assert entry_cli.left_out(["segment", "x"]) is None
    assert entry_cli.left_out(["--version"]) is None
