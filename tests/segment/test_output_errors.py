"""Every OS error on output is one clear line with exit 2, checked before inference where possible (issue 29 cases 5-6)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from segment_helpers import TRUTH_BACKEND, make_phantom, write_nifti

from liverseg_studio import cli
from liverseg_studio.core import io as core_io


@pytest.fixture(autouse=True)
def _only_segment(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("segment",))


@pytest.fixture
def small_nifti(tmp_path) -> Path:
    ph = make_phantom((6, 64, 64))
    (tmp_path / "in").mkdir()
    return write_nifti(tmp_path / "in" / "case.nii.gz", ph.hu, ph.affine, dtype="int16")


def _segment(*args: str) -> int:
    return cli.main(["segment", *args])


def _no_inference(monkeypatch):
    import segment_helpers

    def boom(*_a, **_k):
        raise AssertionError("inference ran")

    monkeypatch.setattr(segment_helpers.TruthBackend, "predict", boom)


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


def test_out_cannot_be_created_read_only_file_system(plugin_manager, small_nifti, tmp_path, monkeypatch, capsys):
    _no_inference(monkeypatch)
    real_mkdir = Path.mkdir

    def ro_mkdir(self, *a, **k):
        if self.name == "ro":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", ro_mkdir)
    assert _segment(str(small_nifti), "--out", str(tmp_path / "ro"), "--backend", TRUTH_BACKEND) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "cannot create the output folder: Read-only file system" in line


def test_out_below_a_file_is_one_line(plugin_manager, small_nifti, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert _segment(str(small_nifti), "--out", str(tmp_path / "afile" / "sub"), "--backend", TRUTH_BACKEND) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "cannot create the output folder" in line and "Not a directory" in line


def test_read_only_existing_folder_is_refused_before_inference(plugin_manager, small_nifti, tmp_path, monkeypatch, capsys):
    _no_inference(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()

    def ro_open(path, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(core_io, "open", ro_open, raising=False)  # the probe file
    assert _segment(str(small_nifti), "--out", str(out), "--backend", TRUTH_BACKEND) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "cannot write in the output folder: Permission denied" in line
    assert list(out.iterdir()) == []


def test_no_space_is_refused_before_inference(plugin_manager, small_nifti, tmp_path, monkeypatch, capsys):
    import collections
    import shutil

    _no_inference(monkeypatch)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 10**9 - 10**6, 10**6))
    assert _segment(str(small_nifti), "--out", str(tmp_path / "out"), "--backend", TRUTH_BACKEND) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "not enough free space" in line and "1 MB free" in line


def test_full_disk_while_the_seg_is_written_has_no_traceback(plugin_manager, analytic_series, tmp_path, monkeypatch, capsys):
    """pydicom re-raises an OSError with a whole traceback in its message; only the OS's reason is shown."""
    import pydicom
    from pydicom.tag import Tag, tag_in_exception

    def full_disk(self, *a, **k):
        with tag_in_exception(Tag(0x7FE0, 0x0010)):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", full_disk)
    folder, _, _ = analytic_series
    out = tmp_path / "out"
    assert _segment(str(folder), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", "seg,report") == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    import re

    assert re.search(r"seg not written: \S*_seg\.dcm: cannot write: No space left on device\n", captured.err)
    report = json.loads(next(out.glob("*_report.json")).read_text())
    notes = " ".join(report["notes"])
    assert "No space left on device" in notes and "Traceback" not in notes and "line " not in notes


def test_os_error_reason_walks_the_cause_chain():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise OSError("With tag (7FE0,0010) got exception: x\nTraceback (most recent call last):\n  File") from exc
    except OSError as wrapped:
        assert core_io.os_error_reason(wrapped) == "No space left on device"
    assert core_io.os_error_reason(ValueError("a\nTraceback (most recent call last): b")) == "a"
