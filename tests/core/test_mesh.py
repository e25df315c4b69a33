"""core.mesh: closed outward surfaces in patient mm with the voxel volume (issue 25)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("skimage")

from liverseg_studio.core import mesh as M  # noqa: E402
from liverseg_studio.core.errors import CancelledError  # noqa: E402
from liverseg_studio.core.volumetry import compute_stats  # noqa: E402
from liverseg_studio.core.volume import Volume  # noqa: E402

IRCAD_LABELS = Path(__file__).resolve().parents[3] / "shared" / "data" / "volumes" / "ircad-1.01" / "labels.nii.gz"


def _sphere(n: int, r: float, centre: tuple[float, float, float] | None = None) -> np.ndarray:
    z, y, x = np.mgrid[:n, :n, :n]
    c = centre or (n / 2, n / 2, n / 2)
    return ((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) <= r * r


def _check_closed(s: M.SurfaceMesh) -> None:
    tm = trimesh.Trimesh(s.vertices, s.faces, process=False)
    assert tm.is_watertight
    assert tm.is_winding_consistent
    assert tm.volume > 0  # outward normals: positive enclosed volume


@pytest.mark.parametrize("affine", [
    np.diag([0.7, 0.8, 1.5, 1.0]),
    np.diag([-0.57, -0.57, 1.6, 1.0]),  # nibabel RAS of a DICOM (LPS) series: a left-handed index frame
    np.array([[0, 0.9, 0, 10], [1.1, 0, 0, -20], [0, 0, 2.0, 30], [0, 0, 0, 1.0]]),  # axes swapped
])
@pytest.mark.parametrize("r", [3.0, 9.0])
def test_sphere_closed_outward_with_voxel_volume(affine, r):
    m = _sphere(int(2 * r + 8), r)
    s = M.mask_surface(m, affine)
    _check_closed(s)
    assert s.voxel_volume_ml == pytest.approx(m.sum() * abs(np.linalg.det(affine[:3, :3])) / 1000)
    assert s.volume_error < 0.03
    # the surface lies on the sphere: every vertex near radius r (mm, anisotropic)
    c_world = (affine @ np.array([m.shape[2] / 2, m.shape[1] / 2, m.shape[0] / 2, 1.0]))[:3]
    assert np.linalg.norm(s.vertices.mean(axis=0) - c_world) < 0.5 * np.abs(affine[:3, :3]).max()


def test_box_at_the_volume_edge_is_closed_and_exact():
    m = np.zeros((10, 20, 30), dtype=bool)
    m[:, :7, 5:] = True  # touches three faces of the volume
    aff = np.diag([1.0, 2.0, 3.0, 1.0])
    s = M.mask_surface(m, aff, smooth_iterations=0)
    _check_closed(s)
    assert s.volume_error < 0.03
    lo, hi = M.label_world_bounds(m, aff)
    assert np.allclose(s.vertices.min(axis=0), lo, atol=1.0) and np.allclose(s.vertices.max(axis=0), hi, atol=1.0)


def test_empty_mask_has_no_surface():
    assert M.mask_surface(np.zeros((4, 4, 4), bool), np.eye(4)) is None


def test_lesions_numbered_as_the_lesion_table():
    lab = np.zeros((30, 40, 40), dtype=np.uint8)
    lab[2:28, 2:38, 2:38] = 1
    lab[5:8, 5:8, 5:8] = 2  # small, first in scan order
    lab[12:22, 15:30, 15:30] = 2  # large
    lab[24:27, 30:36, 30:36] = 2  # middle
    vol = Volume(np.zeros(lab.shape, np.int16), affine=np.diag([0.8, 0.8, 2.5, 1.0]))
    table = compute_stats(lab, vol).lesions
    surfaces = M.label_surfaces(lab, vol.affine)
    assert [s.name for s in surfaces] == ["liver", "tumour", "lesion_01", "lesion_02", "lesion_03"]
    for les, s in zip(table, surfaces[2:]):
        assert les.id == s.lesion_id
        assert s.voxel_volume_ml == pytest.approx(les.volume_ml)
        centre = vol.index_to_world(*les.centroid_zyx)
        assert np.linalg.norm(s.vertices.mean(axis=0) - centre) < 3.0
    assert M.surface_jobs(lab) == [("liver", None), ("tumour", None), ("lesion", 1), ("lesion", 2), ("lesion", 3)]


def test_cancel_between_surfaces():
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[2:8, 2:8, 2:8] = 1
    with pytest.raises(CancelledError):
        M.label_surfaces(lab, np.eye(4), is_cancelled=lambda: True)


def test_lps_copy_keeps_orientation():
    s = M.mask_surface(_sphere(14, 4), np.eye(4))
    lps = s.to_lps()
    assert lps.coordinates == "LPS"
    assert np.allclose(lps.vertices[:, :2], -s.vertices[:, :2])
    assert lps.volume_ml == pytest.approx(s.volume_ml)


@pytest.mark.skipif(not IRCAD_LABELS.is_file(), reason="ircad-1.01 labels not here (/work/shared/data)")
def test_ircad_101_surfaces():
    import nibabel as nib

    img = nib.load(str(IRCAD_LABELS))
    lab = np.asarray(img.dataobj, dtype=np.uint8).T.copy()
    surfaces = M.label_surfaces(lab, img.affine)
    kinds = [s.kind for s in surfaces]
    assert kinds[:2] == ["liver", "tumour"] and kinds.count("lesion") >= 1
    for s in surfaces:
        _check_closed(s)
        assert s.volume_error < 0.03, (s.name, s.volume_ml, s.voxel_volume_ml)
    liver = surfaces[0]
    lo, hi = M.label_world_bounds(lab >= 1, img.affine)
    # aligned with the label volume in patient mm: within one voxel of its world bounds
    tol = np.abs(img.affine[:3, :3]).sum(axis=0)
    assert np.all(np.abs(liver.vertices.min(axis=0) - lo) <= tol)
    assert np.all(np.abs(liver.vertices.max(axis=0) - hi) <= tol)
