"""Inputs as people have them (issue 29 cases 7-8): a folder of per-case sub-folders, a DICOMDIR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.fileset import FileSet
from segment_helpers import TRUTH_BACKEND, make_phantom, write_ct_series, write_nifti

from liverseg_studio import cli
from liverseg_studio.commands.segment import expand_inputs
from liverseg_studio.core.errors import LoaderError


@pytest.fixture(autouse=True)
def _only_segment(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("segment",))


@pytest.fixture(scope="module")
def ph():
    return make_phantom((6, 64, 64), (2.5, 0.8, 0.8))


def _cases(root: Path, ph) -> Path:
    for name in ("patient1", "patient2"):
        (root / name).mkdir(parents=True)
        write_nifti(root / name / "ct.nii.gz", ph.hu, ph.affine, dtype="int16")
    write_ct_series(root / "patient3" / "study" / "series", ph.hu, ph.affine)
    (root / "patient3" / "notes").mkdir()
    return root


def test_folder_of_case_subfolders_is_a_batch(ph, tmp_path, plugin_manager):
    root = _cases(tmp_path / "cohort", ph)
    inputs = expand_inputs([str(root)], plugin_manager.loaders, tmp_path / "out")
    assert inputs == [
        root / "patient1" / "ct.nii.gz",
        root / "patient2" / "ct.nii.gz",
        root / "patient3" / "notes",  # an empty folder stays an input: the loader says why
        root / "patient3" / "study" / "series",
    ]


def test_segment_walks_the_case_subfolders(ph, tmp_path, plugin_manager, capsys):
    root = _cases(tmp_path / "cohort", ph)
    (root / "patient3" / "notes").rmdir()
    out = tmp_path / "out"
    assert cli.main(["segment", str(root), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", "mask"]) == 0
    masks = sorted(p.name for p in out.glob("*_mask.nii.gz"))
    assert masks == ["ct-2_mask.nii.gz", "ct_mask.nii.gz", "series_mask.nii.gz"]
    assert "segmented 3 of 3 input(s)" in capsys.readouterr().out


def _dicomdir(root: Path, series: dict[str, Path]) -> Path:
    fs = FileSet()
    for folder in series.values():
        for f in sorted(folder.iterdir()):
            fs.add(pydicom.dcmread(f))
    fs.write(root)
    return root / "DICOMDIR"


def test_dicomdir_is_read_through_fileset(ph, tmp_path, plugin_manager):
    src = tmp_path / "src"
    write_ct_series(src / "a", ph.hu, ph.affine, series_description="portal venous")
    dicomdir = _dicomdir(tmp_path / "cd", {"a": src / "a"})
    v = plugin_manager.loaders.load(dicomdir)
    assert v.loader == "dicomdir" and v.meta["dicomdir_series"] == 1
    np.testing.assert_allclose(np.asarray(v.array), ph.hu)
    np.testing.assert_allclose(v.affine, ph.affine, atol=1e-4)
    assert all(Path(f).is_relative_to(tmp_path / "cd") for f in v.meta["files"])  # the CD's files, not src


def test_dicomdir_with_two_series_uses_the_study_rule_or_series(ph, tmp_path, plugin_manager):
    from liverseg_studio.plugins.registry import LoadOptions

    src = tmp_path / "src"
    write_ct_series(src / "art", ph.hu, ph.affine, series_description="arterial", series_uid="1.2.3.4.1")
    write_ct_series(src / "pv", ph.hu + 10, ph.affine, series_description="portal venous", series_uid="1.2.3.4.2")
    dicomdir = _dicomdir(tmp_path / "cd", {"art": src / "art", "pv": src / "pv"})
    v = plugin_manager.loaders.load(dicomdir)
    assert "portal" in v.meta["series_choice"]
    np.testing.assert_allclose(np.asarray(v.array), ph.hu + 10)
    art = plugin_manager.loaders.load(dicomdir, LoadOptions(series_uid="1.2.3.4.1"))
    np.testing.assert_allclose(np.asarray(art.array), ph.hu)
    with pytest.raises(LoaderError, match="lists no series"):
        plugin_manager.loaders.load(dicomdir, LoadOptions(series_uid="9.9"))


def test_segment_a_dicomdir_and_a_cd_root(ph, tmp_path, plugin_manager):
    src = tmp_path / "src"
    write_ct_series(src / "a", ph.hu, ph.affine)
    dicomdir = _dicomdir(tmp_path / "cd", {"a": src / "a"})
    assert expand_inputs([str(tmp_path / "cd")], plugin_manager.loaders, tmp_path / "out") == [dicomdir]
    out = tmp_path / "out"
    assert cli.main(["segment", str(dicomdir), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", "mask,seg"]) == 0
    assert {p.name for p in out.iterdir()} == {"DICOMDIR_mask.nii.gz", "DICOMDIR_seg.dcm"}
