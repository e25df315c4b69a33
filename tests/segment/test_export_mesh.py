"""--export mesh / --export plan (segment.export_mesh, issue 25): closed surfaces in the input's
patient coordinates, read back by trimesh, and the resection plan as a mask with a third value."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from segment_helpers import TruthBackend, make_phantom, oblique_affine

from liverseg_studio import cli
from liverseg_studio.core.io import OutputExistsError
from liverseg_studio.core.mesh import label_world_bounds
from liverseg_studio.core.resection import ResectionPlan, evaluate_plan, plan_path_for, resected_mask, save_plan
from liverseg_studio.segment import exporters as ex
from liverseg_studio.segment import segment_volume
from liverseg_studio.segment.export_mesh import with_mesh_format

trimesh = pytest.importorskip("trimesh")


@pytest.fixture(scope="module")
def result():
    ph = make_phantom((16, 64, 64), (2.5, 0.8, 0.7), affine=oblique_affine((2.5, 0.8, 0.7)))
    return segment_volume(ph.volume(source="/data/scan.nii.gz", loader="nifti"), TruthBackend())


def _read(path: Path):
    mesh = trimesh.load(str(path), force="mesh", process=True)
    assert isinstance(mesh, trimesh.Trimesh), path
    return mesh


@pytest.mark.parametrize("ext", ["stl", "obj", "ply"])
def test_mesh_folder_read_back_watertight_with_voxel_volumes(result, tmp_path, ext):
    written = ex.export_result(result, tmp_path, "scan", with_mesh_format(("mesh", "report"), ext))
    folder = written["mesh"]
    assert folder == tmp_path / "scan_mesh" and folder.is_dir()
    info = json.loads((folder / "surfaces.json").read_text())
    assert info["coordinates"] == "RAS" and info["units"] == "mm" and info["format"] == ext
    names = [s["name"] for s in info["surfaces"]]
    assert names[:2] == ["liver", "tumour"] and "lesion_01" in names
    stats = result.stats
    voxel = {"liver": stats.liver_ml, "tumour": stats.tumour_ml, "lesion_01": stats.lesions[0].volume_ml}
    for s in info["surfaces"]:
        mesh = _read(folder / s["file"])
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume > 0  # outward normals
        if s["name"] in voxel:
            assert mesh.volume / 1000 == pytest.approx(voxel[s["name"]], rel=0.03)
    liver = _read(folder / f"liver.{ext}")
    lo, hi = label_world_bounds(np.asarray(result.labels) >= 1, result.volume.affine)
    tol = np.abs(result.volume.affine[:3, :3]).sum(axis=0)
    assert np.all(np.abs(liver.bounds[0] - lo) <= tol) and np.all(np.abs(liver.bounds[1] - hi) <= tol)
    head = (folder / f"liver.{ext}").read_bytes()[:200]
    assert b"patient coordinates RAS" in head
    report = json.loads(written["report"].read_text())
    assert report["outputs"]["mesh"] == "scan_mesh"
    assert any(n.startswith("mesh: ") for n in report["notes"])


def test_mesh_folder_never_overwritten_without_flag(result, tmp_path):
    ex.export_result(result, tmp_path, "scan", ("mesh",))
    with pytest.raises(OutputExistsError):
        ex.export_result(result, tmp_path, "scan", ("mesh",))
    ex.export_result(result, tmp_path, "scan", ("mesh-ply",), overwrite=True)
    assert (tmp_path / "scan_mesh" / "liver.ply").is_file()
    assert not list(tmp_path.glob(".*"))  # no temporary folder left


def test_plan_mask_has_a_third_value_and_the_report_says_the_figures(result, tmp_path):
    labels = np.asarray(result.labels)
    plan = ResectionPlan.through_centre(labels, result.volume.affine, normal=(0, 0, 1))
    save_plan(plan, plan_path_for(tmp_path / "scan_mask.nii.gz"))
    written = ex.export_result(result, tmp_path, "scan", ("mask", "plan", "report"))
    img = nib.load(str(written["plan"]))
    mask = nib.load(str(written["mask_nifti"]))
    assert img.shape == mask.shape and np.allclose(img.affine, mask.affine)
    data = np.asarray(img.dataobj).T
    assert set(np.unique(data)) == {0, 1, 2, 3}
    assert np.array_equal(data >= 1, labels >= 1) and np.array_equal(data == 2, labels == 2)
    figures = evaluate_plan(labels, result.volume.affine, plan)
    vox_ml = result.volume.voxel_volume_mm3 / 1000
    cut = resected_mask(labels, result.volume.affine, plan)
    # resected liver is 3; tumour voxels on the cut side stay 2: together they are the resected volume
    assert np.array_equal(data == 3, cut & (labels == 1))
    assert np.count_nonzero(cut) * vox_ml == pytest.approx(figures.resected_ml)
    assert 0 < figures.resected_ml < figures.liver_ml
    report = json.loads(written["report"].read_text())
    assert any("resection plan scan_plan.json: remnant" in n for n in report["notes"])


def test_plan_without_a_plan_file_fails_alone(result, tmp_path):
    outcome = ex.export_outputs(result, tmp_path, "scan", ("mask", "plan"), explicit_formats=True)
    assert "mask_nifti" in outcome.written
    assert "no resection plan" in outcome.failed["plan"]


def test_a_single_slice_gets_no_mesh(tmp_path):
    ph = make_phantom((1, 64, 64), (1.0, 0.8, 0.8))
    vol = ph.volume(source="/data/slice.nii.gz", loader="nifti")
    assert "mesh" in ex.skipped_formats(vol, ("mesh",))
    assert "mesh" not in ex.planned_outputs(vol, "slice", tmp_path, ("mesh",))


def test_cli_dicom_series_mesh_in_lps(plugin_manager, analytic_series, tmp_path, capsys):
    folder, ph, _paths = analytic_series
    out = tmp_path / "out"
    rc = cli.main(["segment", str(folder), "--out", str(out), "--backend", "truth", "--export", "mesh,report",
                   "--mesh-format", "obj"])
    assert rc == 0, capsys.readouterr().err
    mesh_dir = next(out.glob("*_mesh"))
    info = json.loads((mesh_dir / "surfaces.json").read_text())
    assert info["coordinates"] == "LPS"
    liver = _read(mesh_dir / "liver.obj")
    assert liver.is_watertight
    assert "LPS" in (mesh_dir / "liver.obj").read_text()[:300]
    # LPS = RAS with x and y negated: the liver's bounds match the labels' world bounds so converted
    lo, hi = label_world_bounds(ph.labels >= 1, ph.affine)
    flip = np.array([-1.0, -1.0, 1.0])
    lps_lo, lps_hi = np.minimum(lo * flip, hi * flip), np.maximum(lo * flip, hi * flip)
    tol = np.abs(ph.affine[:3, :3]).sum(axis=0)
    assert np.all(np.abs(liver.bounds[0] - lps_lo) <= tol) and np.all(np.abs(liver.bounds[1] - lps_hi) <= tol)


def test_cli_rejects_unknown_mesh_format(plugin_manager, analytic_nifti, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["segment", str(analytic_nifti), "--out", str(tmp_path / "o"), "--export", "mesh",
                  "--mesh-format", "vrml"])
    assert "vrml" in capsys.readouterr().err


def test_a_batch_folder_skips_its_mesh_folders(plugin_manager, analytic_nifti, tmp_path, capsys):
    folder = analytic_nifti.parent
    assert cli.main(["segment", str(folder), "--out", str(folder), "--backend", "truth", "--export", "mask,mesh"]) == 0
    assert ex.looks_like_output(folder / "abdomen_mesh")
    capsys.readouterr()
    # the same folder again (now holding the outputs): the mesh folder is not taken for an input
    rc = cli.main(["segment", str(folder), "--out", str(tmp_path / "again"), "--backend", "truth", "--export", "mask"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "liver.stl" not in err
