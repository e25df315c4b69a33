"""The NIfTI mask keeps the input's header exactly (issue 29 case 4): shape (4D t = 1), qform, sform, codes."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from segment_helpers import TRUTH_BACKEND, make_phantom

from liverseg_studio import cli


def _segment(*args: str) -> int:
    return cli.main(["segment", *args])


@pytest.fixture(autouse=True)
def _only_segment(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ("segment",))


def _header_fields(hdr) -> dict:
    keys = ("qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
            "qoffset_z", "srow_x", "srow_y", "srow_z", "pixdim", "xyzt_units")
    return {k: np.asarray(hdr[k]).tolist() for k in keys}


def _mask(out: Path, name: str) -> nib.Nifti1Image:
    return nib.load(str(out / f"{name}_mask.nii.gz"))


def _ct(shape=(10, 64, 64)):
    ph = make_phantom(shape, (2.0, 0.9, 0.9))
    return ph, ph.hu.astype(np.int16)


def test_codes_0_2_and_both_forms_kept(tmp_path, plugin_manager):
    ph, hu = _ct()
    img = nib.Nifti1Image(hu.T, None)
    img.set_sform(ph.affine, code=2)  # aligned to another image
    img.set_qform(None, code=0)
    path = tmp_path / "codes.nii.gz"
    nib.save(img, path)
    assert _segment(str(path), "--out", str(tmp_path / "out"), "--backend", TRUTH_BACKEND, "--export", "mask") == 0
    src, mask = nib.load(str(path)), _mask(tmp_path / "out", "codes")
    assert _header_fields(mask.header) == _header_fields(src.header)
    assert int(mask.header["qform_code"]) == 0 and int(mask.header["sform_code"]) == 2
    np.testing.assert_array_equal(mask.get_sform(), src.get_sform())
    assert mask.shape == src.shape and mask.get_data_dtype() == np.uint8


def test_4d_t1_input_gives_4d_mask(tmp_path, plugin_manager):
    ph, hu = _ct()
    path = tmp_path / "t1.nii.gz"
    nib.save(nib.Nifti1Image(hu.T[..., None], ph.affine), path)
    assert _segment(str(path), "--out", str(tmp_path / "out"), "--backend", TRUTH_BACKEND, "--export", "mask") == 0
    mask = _mask(tmp_path / "out", "t1")
    assert mask.shape == (64, 64, 10, 1)
    np.testing.assert_array_equal(np.asarray(mask.dataobj)[..., 0].T, ph.labels)
    assert _header_fields(mask.header) == _header_fields(nib.load(str(path)).header)


def test_qform_sform_disagreement_is_warned_and_kept(tmp_path, plugin_manager, capsys):
    import json

    ph, hu = _ct()
    img = nib.Nifti1Image(hu.T, None)
    q = ph.affine.copy()
    s = ph.affine.copy()
    s[:3, 2] *= 2  # 4 mm slices in the sform, 2 mm in the qform
    img.set_qform(q, code=1)
    img.set_sform(s, code=2)
    path = tmp_path / "disagree.nii"
    nib.save(img, path)
    out = tmp_path / "out"
    assert _segment(str(path), "--out", str(out), "--backend", TRUTH_BACKEND, "--export", "mask,report") == 0
    err = capsys.readouterr().err
    assert "qform" in err and "sform" in err and "disagree" in err and "the sform was used" in err
    report = json.loads((out / "disagree_report.json").read_text())
    assert any("disagree" in n for n in report["notes"])
    src, mask = nib.load(str(path)), _mask(out, "disagree")
    assert _header_fields(mask.header) == _header_fields(src.header)
    np.testing.assert_array_equal(mask.header.get_qform(), src.header.get_qform())
    np.testing.assert_array_equal(mask.header.get_sform(), src.header.get_sform())


def test_agreeing_forms_give_no_warning(tmp_path):
    from liverseg_studio.plugins.manager import get_plugin_manager

    ph, hu = _ct()
    path = tmp_path / "ok.nii.gz"
    nib.save(nib.Nifti1Image(hu.T, ph.affine), path)
    v = get_plugin_manager().loaders.load(path)
    assert "warning" not in v.meta
