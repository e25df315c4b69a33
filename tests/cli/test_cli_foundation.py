"""``liverseg plugins`` and ``liverseg info``; bad input exits 2 with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from helpers.phantom import ct_dataset, make_phantom, write_ct_series
from liverseg_studio.cli import main

CT_SMALL = get_testdata_file("CT_small.dcm")
MR_SMALL = get_testdata_file("MR_small.dcm")


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "liverseg_studio.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_plugins_lists_loaders_and_backends_ok():
    out = _run("plugins")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    lines = {ln.split()[1]: ln for ln in text.splitlines() if ln.strip().startswith(("loader", "backend"))}
    for name in ("image", "dicom", "dicom-series", "nifti", "mrc", "onnx", "fastai", "threshold"):
        assert name in lines, f"{name} missing from:\n{text}"
    assert ".jpg" in lines["image"] and ".png" in lines["image"]
    for header in (ln for ln in text.splitlines() if not ln.startswith(" ")):
        assert "[ok]" in header, header


def test_plugins_json(capsys):
    import json

    assert main(["plugins", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["builtin_loaders"]["loaders"] == ["image", "dicom", "dicomdir", "dicom-series", "nifti", "mrc"]
    assert "threshold" in records["threshold"]["backends"]
    assert all(r["status"] == "ok" for r in records.values())


def test_plugins_reports_disabled(monkeypatch, capsys):
    from liverseg_studio.plugins import manager

    monkeypatch.setenv("LIVERSEG_DISABLED_PLUGINS", "threshold")
    monkeypatch.setattr(manager, "_default", None)
    try:
        assert main(["plugins"]) == 0
        out = capsys.readouterr().out
        assert "threshold  [disabled]" in out
    finally:
        manager._default = None


def test_info_ct_small():
    out = _run("info", CT_SMALL)
    assert out.returncode == 0, out.stderr
    assert "loader:     dicom" in out.stdout
    assert "1 slices x 128 rows x 128 columns" in out.stdout
    assert "5.000 x 0.661 x 0.661 mm" in out.stdout
    assert "HU range:   -896.0 .. 1167.0" in out.stdout
    assert out.stderr == ""


def test_info_series_and_8bit_window(dicom_series_phantom, tmp_path, capsys):
    assert main(["info", str(dicom_series_phantom.path)]) == 0
    out = capsys.readouterr().out
    assert "dicom-series" in out and "12 slices x 64 rows x 64 columns" in out and "2.500 x 0.800 x 0.800" in out
    png = tmp_path / "slice.png"
    Image.fromarray(np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)).save(png)
    assert main(["info", str(png), "--input-window=-100,400"]) == 0
    out = capsys.readouterr().out
    assert "display8" in out and "-100.0 .. 400.0" in out and "spacing:    unknown" in out


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, text the one-line error must contain)."""
    cases: dict[str, tuple[Path, str]] = {}
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    cases["zero-byte"] = (p, "empty")
    rng = np.random.default_rng(0)
    for ext in ("jpg", "png"):
        full = tmp_path / f"full.{ext}"
        Image.fromarray(rng.integers(0, 255, (96, 96), dtype=np.uint8)).save(full)
        cut = tmp_path / f"truncated.{ext}"
        cut.write_bytes(full.read_bytes()[:300])
        cases[f"truncated-{ext}"] = (cut, "truncated")
    ds = ct_dataset(np.zeros((16, 16)))
    del ds.PixelData
    p = tmp_path / "nopixels.dcm"
    ds.save_as(str(p), enforce_file_format=True)
    cases["dicom-no-pixels"] = (p, "no pixel data")
    cases["non-ct"] = (Path(MR_SMALL), "not CT")
    p = tmp_path / "broken.nii"
    p.write_bytes(b"\x5c\x01\x00\x00" + b"\xff" * 400)
    cases["nifti-broken-header"] = (p, "NIfTI")
    p = tmp_path / "fmri.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 4, 3), np.int16), np.eye(4)), p)
    cases["nifti-4d"] = (p, "4D")
    d = tmp_path / "no_images"
    d.mkdir()
    (d / "readme.txt").write_text("x")
    cases["folder-no-images"] = (d, "no DICOM images")
    p = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(p)
    cases["one-pixel"] = (p, "1x1")
    cases["missing"] = (tmp_path / "does_not_exist.nii", "no such file")
    ph = make_phantom(shape=(2, 16, 16))
    write_ct_series(tmp_path / "two" / "a", ph.hu, ph.affine)
    write_ct_series(tmp_path / "two" / "b", ph.hu, ph.affine)
    cases["several-series"] = (tmp_path / "two", "--series")
    return cases


def test_each_bad_input_exits_2_with_one_line(tmp_path, capsys):
    cases = _bad_inputs(tmp_path)
    for name, (path, text) in cases.items():
        code = main(["info", str(path)])
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert code == 2, f"{name}: exit {code}, stderr {err!r}"
        assert len(err.splitlines()) == 1, f"{name}: {err!r}"
        assert err.startswith("liverseg info: error: "), f"{name}: {err!r}"
        assert path.name in err and text in err, f"{name}: {err!r}"
        assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize("case", ["truncated-jpg", "nifti-4d", "dicom-no-pixels"])
def test_bad_input_in_subprocess_has_no_traceback(tmp_path, case):
    path, text = _bad_inputs(tmp_path)[case]
    out = _run("info", str(path))
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and text in out.stderr
    assert "Traceback" not in out.stderr


def test_internal_error_exits_1_with_one_line(monkeypatch, capsys, nifti_phantom):
    from liverseg_studio.commands import info

    def boom(args):
        raise RuntimeError("unexpected\nbug")

    monkeypatch.setattr(info, "run", boom)
    assert main(["info", str(nifti_phantom.path)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "internal error: RuntimeError: unexpected bug" in err


def test_bad_input_window_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["info", CT_SMALL, "--input-window", "300,100"])
    assert exc.value.code == 2


def test_info_series_option_picks_one(tmp_path, capsys):
    ph = make_phantom(shape=(3, 16, 16))
    write_ct_series(tmp_path / "a", ph.hu, ph.affine, series_uid="1.2.826.0.1.1")
    write_ct_series(tmp_path / "b", ph.hu, ph.affine, series_uid="1.2.826.0.1.2")
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "1.2.826.0.1.1" in err and "1.2.826.0.1.2" in err
    assert main(["info", str(tmp_path), "--series", "1.2.826.0.1.2"]) == 0
    assert "series_uid: 1.2.826.0.1.2" in capsys.readouterr().out


def test_info_case117_has_unknown_spacing(capsys):
    case = Path(__import__("sysconfig").get_paths()["purelib"]) / "liver_ct_segmentation_package" / "data" / "img_117.mrc"
    if not case.exists():
        pytest.skip("liver-ct-segmentation-package not installed")
    assert main(["info", str(case)]) == 0
    out = capsys.readouterr().out
    assert "loader:     mrc" in out and "128 slices x 128 rows x 128 columns" in out
    assert "spacing:    unknown" in out


def test_max_input_gb_limits_memory(nifti_phantom, capsys):
    assert main(["info", str(nifti_phantom.path), "--max-input-gb", "0.00001"]) == 2
    err = capsys.readouterr().err
    assert "memory" in err and "limit" in err and len(err.strip().splitlines()) == 1
    assert main(["info", str(nifti_phantom.path), "--max-input-gb", "1"]) == 0


def test_missing_train_extra_is_a_clear_set_up_error(monkeypatch, capsys):
    """In the offline executable (no PyTorch) torch-only commands say what is missing, exit 2."""
    import argparse

    from liverseg_studio import cli

    def needs_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    parser = argparse.ArgumentParser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(func=needs_torch, command="train")
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "needs torch" in err and "train" in err and "Traceback" not in err
