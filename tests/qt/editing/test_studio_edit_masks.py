"""Editing without a model: open a mask onto the image, correct it, save it through the exporters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from editing_helpers import drag
from helpers.phantom import make_phantom, write_ct_series, write_nifti
from studio_helpers import open_case

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.qt.editing.masks import load_mask


def _dicom_case(tmp_path: Path):
    """An anisotropic phantom as a DICOM series and its labels as a NIfTI mask of the same geometry."""
    ph = make_phantom((8, 60, 40), (2.5, 0.6, 1.2))
    folder = tmp_path / "series"
    write_ct_series(folder, ph.hu, ph.affine)
    mask = write_nifti(tmp_path / "phantom_labels.nii.gz", ph.labels, ph.affine, dtype="uint8")
    return ph, folder, mask


def test_open_nifti_mask_edit_save_reload_and_valid_seg(qtbot: Any, window: Any, tmp_path: Path) -> None:
    import nibabel as nib
    import pydicom

    from helpers.dciodvfy import DCIODVFY, run_dciodvfy

    ph, folder, mask = _dicom_case(tmp_path)
    volume = open_case(qtbot, window, folder)
    editing = window.editing
    with qtbot.waitSignal(window.segmentation_finished, timeout=10000):
        assert editing.open_mask(str(mask))
    c = editing.controller
    np.testing.assert_array_equal(c.labels, ph.labels)
    assert window.result.backend == "mask file" and window.export_actions  # exportable without a model
    assert window.studio.results.liver.value.text() != "–"

    # correct it: tumour outside the liver, and erase a band of liver
    viewer = window.studio.viewer
    QTest.keyClick(window, Qt.Key.Key_B)
    QTest.keyClick(window, Qt.Key.Key_2)
    c.set_radius(2.0)
    drag(viewer, [(5, 5), (5, 12)])
    QTest.keyClick(window, Qt.Key.Key_E)
    QTest.keyClick(window, Qt.Key.Key_1)
    z = viewer.slice_index
    ys, xs = np.nonzero(ph.labels[z] >= 1)
    yc = int(np.median(ys))
    drag(viewer, [(yc, int(xs.min())), (yc, int(xs.max()))])
    edited = c.labels.copy()
    changed = c.changed_voxels()
    assert changed["tumour"]["added"] > 0 and changed["liver"]["removed"] > 0 and c.is_dirty()

    # save: NIfTI mask, DICOM SEG, report; the saved mask equals the edited one
    out = window.export("mask", str(tmp_path / "edited_mask.nii.gz"))
    assert out is not None and not c.is_dirty()
    img = nib.load(str(out))
    np.testing.assert_array_equal(np.asarray(img.dataobj).T, edited)
    np.testing.assert_allclose(img.affine, volume.affine, atol=1e-4)
    np.testing.assert_array_equal(load_mask(out, volume), edited)  # and it opens again onto the image

    seg_path = window.export("seg", str(tmp_path / "edited_seg.dcm"))
    assert seg_path is not None
    seg = pydicom.dcmread(str(seg_path))
    assert seg.SeriesInstanceUID != volume.meta["series_uid"]  # a new series
    assert seg.SeriesInstanceUID != pydicom.dcmread(sorted(folder.iterdir())[0]).SeriesInstanceUID
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert "edited" in seg.SeriesDescription
    np.testing.assert_array_equal(load_mask(seg_path, volume), edited)  # the SEG opens again, equal
    if DCIODVFY is not None:
        n_errors, output = run_dciodvfy(seg_path)
        assert n_errors == 0, output

    report_path = window.export("report", str(tmp_path / "edited_report.json"))
    report = json.loads(Path(report_path).read_text())
    assert report["edited"] is True
    assert report["editing"]["changed_voxels"] == changed
    assert report["editing"]["produced_by"] == {"mask_file": str(mask)}
    assert report["liver_voxels"] == int(np.count_nonzero(edited >= 1))
    assert report["tumour_voxels"] == int(np.count_nonzero(edited == 2))
    # a second save is a new SEG series again
    seg2 = window.export("seg", str(tmp_path / "edited_seg2.dcm"))
    assert pydicom.dcmread(str(seg2)).SeriesInstanceUID != seg.SeriesInstanceUID
    if DCIODVFY is None:
        pytest.skip("dciodvfy not installed: the SEG was not validated (everything else passed)")


def test_model_result_edited_report_names_the_model(
    qtbot: Any, window: Any, nifti_phantom: Any, tmp_path: Path
) -> None:
    from studio_helpers import TEST_BACKEND, run_and_wait

    open_case(qtbot, window, nifti_phantom.path)
    run_and_wait(qtbot, window)
    out = window.export("report", str(tmp_path / "plain_report.json"))
    assert json.loads(out.read_text())["edited"] is False  # not edited: not marked
    c = window.editing.controller
    c.set_tool("brush")
    c.set_label(2)
    drag(window.studio.viewer, [(4, 4), (4, 10)])
    out = window.export("report", str(tmp_path / "edited_report.json"))
    report = json.loads(out.read_text())
    assert report["edited"] is True and report["editing"]["produced_by"]["backend"] == TEST_BACKEND
    assert report["editing"]["changed_voxels"]["tumour"]["added"] > 0
    assert c.is_dirty()  # a report does not save the mask


def test_mask_that_does_not_fit_the_image_is_refused(
    qtbot: Any, window: Any, nifti_phantom: Any, tmp_path: Path, errors: Any
) -> None:
    ph = nifti_phantom.phantom
    volume = open_case(qtbot, window, nifti_phantom.path)
    wrong_shape = write_nifti(tmp_path / "small.nii.gz", ph.labels[:, :32], ph.affine, dtype="uint8")
    assert not window.editing.open_mask(str(wrong_shape))
    assert errors and "voxels" in errors[-1][1] and window.result is None
    moved = ph.affine.copy()
    moved[0, 3] += 5.0
    with pytest.raises(LoaderError, match="affine"):
        load_mask(write_nifti(tmp_path / "moved.nii.gz", ph.labels, moved, dtype="uint8"), volume)
    bad = ph.labels.copy()
    bad[0, 0, 0] = 3  # a training mask's "liver or tumour" value is not a label to edit
    with pytest.raises(LoaderError, match="holds"):
        load_mask(write_nifti(tmp_path / "three.nii.gz", bad, ph.affine, dtype="uint8"), volume)
    with pytest.raises(LoaderError, match="single-slice"):
        from PIL import Image

        png = tmp_path / "mask.png"
        Image.fromarray(ph.labels[0]).save(png)
        load_mask(png, volume)


def test_png_mask_onto_a_single_slice(tmp_path: Path) -> None:
    from PIL import Image

    from liverseg_studio.core.volume import Volume

    ph = make_phantom((1, 32, 32))
    vol = Volume(array=ph.hu, affine=np.eye(4), spacing_known=False)
    png = tmp_path / "slice_mask.png"
    Image.fromarray(ph.labels[0]).save(png)
    np.testing.assert_array_equal(load_mask(png, vol), ph.labels)
    Image.fromarray(np.stack([ph.labels[0] * 100, ph.labels[0], ph.labels[0]], -1)).save(tmp_path / "rgb.png")
    with pytest.raises(LoaderError, match="colour"):
        load_mask(tmp_path / "rgb.png", vol)
