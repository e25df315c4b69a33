"""Surfaces of a label map in patient millimetres (issue 25): marching cubes, smoothing, decimation.

Pure numpy/scipy/scikit-image/trimesh (no Qt): the 3D panel, ``--export mesh`` and the
benchmark share :func:`label_surfaces`.

How a surface is made (:func:`mask_surface`):

1. the mask is cropped to its bounding box and padded with one background voxel on every
   side, so every surface is closed (watertight) even where the object meets the volume's edge;
2. scikit-image's ``marching_cubes`` at level 0.5 (between voxel centres);
3. vertices go from voxel index ``(z, y, x)`` through ``Volume.affine`` (index ``(x, y, z)`` ->
   RAS mm) into patient coordinates; faces are oriented so that the normals point outward
   (positive signed volume), whatever the handedness of the affine;
   (a large object, a liver, is sampled on every second voxel: :data:`LARGE_VOXELS`);
4. trimesh's Taubin filter smooths without shrinking, and quadric decimation (fast-simplification)
   thins the mesh to ``max_faces``; a decimation that would open the surface is not kept;
5. the level is refined (bisection on the marching-cubes level) when the enclosed volume differs
   from the voxel volume by more than ``volume_tolerance``: small lesions lose their corners
   otherwise.

Lesions are numbered as the lesion table numbers them (:func:`lesion_label_map`: 26-connected
components, largest first, ties in scan order), so lesion *n* in 3D is lesion *n* in the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from scipy import ndimage

from liverseg_studio.core.volume import Label

MM3_PER_ML = 1000.0
_FULL_3D = np.ones((3, 3, 3), dtype=bool)
#: Coordinate system of every vertex :func:`mask_surface` returns (``Volume.affine`` is RAS).
COORDINATES = "RAS"
#: bounding boxes above this many voxels are meshed on every second voxel (then decimated)
LARGE_VOXELS = 4_000_000


@dataclass(frozen=True, eq=False)
class SurfaceMesh:
    """One closed surface: ``vertices`` (n, 3) float64 in patient mm, ``faces`` (m, 3) int64."""

    #: "liver", "tumour" or "lesion"
    kind: str
    #: lesion number as in the lesion table (None for liver and tumour)
    lesion_id: int | None
    vertices: np.ndarray
    faces: np.ndarray
    #: the mask's volume (voxel count x voxel volume), mL
    voxel_volume_ml: float
    #: coordinate system of the vertices ("RAS" or "LPS")
    coordinates: str = COORDINATES

    @property
    def name(self) -> str:
        return f"lesion_{self.lesion_id:02d}" if self.kind == "lesion" else self.kind

    @property
    def volume_ml(self) -> float:
        """Enclosed volume (divergence theorem), mL; positive when the normals point outward."""
        return signed_volume_mm3(self.vertices, self.faces) / MM3_PER_ML

    @property
    def volume_error(self) -> float:
        """Relative difference of the enclosed volume from the voxel volume."""
        return abs(self.volume_ml - self.voxel_volume_ml) / self.voxel_volume_ml if self.voxel_volume_ml else 0.0

    def to_lps(self) -> "SurfaceMesh":
        """The same surface in DICOM's LPS coordinates (x and y negated; faces re-oriented)."""
        if self.coordinates == "LPS":
            return self
        v = self.vertices * np.array([-1.0, -1.0, 1.0])  # a rotation by 180 deg about z: orientation kept
        return SurfaceMesh(self.kind, self.lesion_id, v, self.faces, self.voxel_volume_ml, "LPS")

    def to_json(self) -> dict[str, object]:
        lo, hi = self.vertices.min(axis=0), self.vertices.max(axis=0)
        return {
            "name": self.name,
            "kind": self.kind,
            "lesion_id": self.lesion_id,
            "coordinates": self.coordinates,
            "vertices": int(len(self.vertices)),
            "faces": int(len(self.faces)),
            "voxel_volume_ml": round(self.voxel_volume_ml, 4),
            "mesh_volume_ml": round(self.volume_ml, 4),
            "bounds_mm": [[round(float(v), 3) for v in lo], [round(float(v), 3) for v in hi]],
        }


def signed_volume_mm3(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed enclosed volume of a closed triangle mesh (sum of signed tetrahedra), in the vertices' unit^3."""
    if len(faces) == 0:
        return 0.0
    v0, v1, v2 = (vertices[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum() / 6.0)


def lesion_label_map(labels: np.ndarray) -> tuple[np.ndarray, int, tuple[int, int, int]]:
    """Tumour components numbered as ``core.volumetry`` numbers lesions, inside the tumour box.

    Returns ``(components, n, (z0, y0, x0))``: ``components`` covers the tumours' bounding box
    starting at ``(z0, y0, x0)``; 0 outside tumours, lesion *k* is ``k`` (largest first).
    """
    tum = np.asarray(labels) == Label.TUMOUR
    if not tum.any():
        return np.zeros((0, 0, 0), dtype=np.int32), 0, (0, 0, 0)
    box = ndimage.find_objects(tum.astype(np.uint8))[0]
    comp, n = ndimage.label(tum[box], structure=_FULL_3D)
    sizes = np.bincount(comp.ravel(), minlength=n + 1)
    order = sorted(range(1, n + 1), key=lambda i: (-int(sizes[i]), i))
    remap = np.zeros(n + 1, dtype=np.int32)
    for new_id, old in enumerate(order, start=1):
        remap[old] = new_id
    return remap[comp], n, (box[0].start, box[1].start, box[2].start)


def _marching_cubes(padded: np.ndarray, level: float, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    from skimage.measure import marching_cubes

    verts, faces, _normals, _values = marching_cubes(padded, level=level, step_size=step, allow_degenerate=False)
    return verts, faces.astype(np.int64)


def _to_patient(verts_zyx: np.ndarray, offset_zyx: np.ndarray, affine: np.ndarray) -> np.ndarray:
    ijk = (verts_zyx + offset_zyx)[:, ::-1]  # (x, y, z) voxel index
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _trimesh(vertices: np.ndarray, faces: np.ndarray):  # noqa: ANN202 - trimesh imported lazily
    import trimesh

    return trimesh.Trimesh(vertices=vertices, faces=faces, process=True, validate=False)


def _finish(
    vertices: np.ndarray, faces: np.ndarray, smooth_iterations: int, max_faces: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Merge, orient outward, smooth (Taubin) and decimate; every step keeps the surface closed."""
    import trimesh

    mesh = _trimesh(vertices, faces)
    if signed_volume_mm3(mesh.vertices, mesh.faces) < 0:
        mesh.invert()
    if smooth_iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=int(smooth_iterations))
    if max_faces is not None and len(mesh.faces) > max_faces:
        try:
            small = mesh.simplify_quadric_decimation(face_count=int(max_faces))
        except (ImportError, ValueError):  # fast-simplification missing: keep every face
            small = None
        if small is not None and small.is_watertight and small.is_winding_consistent:
            if signed_volume_mm3(small.vertices, small.faces) < 0:
                small.invert()
            mesh = small
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def mask_surface(
    mask: np.ndarray,
    affine: np.ndarray,
    *,
    kind: str = "liver",
    lesion_id: int | None = None,
    offset_zyx: tuple[int, int, int] = (0, 0, 0),
    smooth_iterations: int = 10,
    max_faces: int | None = 60_000,
    volume_tolerance: float = 0.01,
) -> SurfaceMesh | None:
    """The closed outward surface of ``mask`` (bool, z, y, x) in patient mm; None when it is empty.

    ``offset_zyx``: where ``mask[0, 0, 0]`` lies in the volume (a cropped mask).
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 3:
        raise ValueError(f"mask must be (z, y, x), got shape {m.shape}")
    found = ndimage.find_objects(m.astype(np.uint8))
    if not found or found[0] is None:
        return None
    box = found[0]
    crop = m[box]
    # large objects (a liver): every second voxel, 4x fewer faces to decimate, and the decimation
    # of the full-resolution liver surface could pinch it (not watertight, then not kept)
    step = 2 if max_faces is not None and crop.size > LARGE_VOXELS and crop.sum() > LARGE_VOXELS // 8 else 1
    # background all round, and the last sample of every axis in it (a step of 2 must not skip it)
    padded = np.pad(crop, [(1, 1 + (-(n + 1)) % step) for n in crop.shape]).astype(np.float32)
    offset = np.array([s.start for s in box], dtype=np.float64) + np.asarray(offset_zyx, dtype=np.float64) - 1.0
    affine = np.asarray(affine, dtype=np.float64)
    voxel_ml = float(m[box].sum()) * abs(float(np.linalg.det(affine[:3, :3]))) / MM3_PER_ML

    def build(level: float) -> tuple[np.ndarray, np.ndarray, float]:
        v, f = _marching_cubes(padded, level, step)
        v, f = _finish(_to_patient(v, offset, affine), f, smooth_iterations, max_faces)
        return v, f, signed_volume_mm3(v, f) / MM3_PER_ML

    level = 0.5
    v, f, vol = build(level)
    # small objects lose their corners at 0.5: move the level until the volumes agree (a few tries)
    lo, hi = 0.05, 0.95
    best = (abs(vol - voxel_ml), v, f)
    for _ in range(8):
        if voxel_ml <= 0 or abs(vol - voxel_ml) <= volume_tolerance * voxel_ml:
            break
        if vol < voxel_ml:
            hi = level  # a lower level encloses more
        else:
            lo = level
        level = 0.5 * (lo + hi)
        v, f, vol = build(level)
        if abs(vol - voxel_ml) < best[0]:
            best = (abs(vol - voxel_ml), v, f)
    _err, v, f = best
    return SurfaceMesh(kind, lesion_id, v, f, voxel_ml)


def surface_jobs(labels: np.ndarray, *, lesions: bool = True, tumour: bool = True) -> list[tuple[str, int | None]]:
    """The surfaces :func:`label_surfaces` will build: ``(kind, lesion id)`` each (progress totals)."""
    lab = np.asarray(labels)
    jobs: list[tuple[str, int | None]] = []
    if (lab >= Label.LIVER).any():
        jobs.append(("liver", None))
    if (lab == Label.TUMOUR).any():
        if tumour:
            jobs.append(("tumour", None))
        if lesions:
            _comp, n, _ = lesion_label_map(lab)
            jobs.extend(("lesion", i) for i in range(1, n + 1))
    return jobs


def iter_label_surfaces(
    labels: np.ndarray,
    affine: np.ndarray,
    *,
    lesions: bool = True,
    tumour: bool = True,
    smooth_iterations: int = 10,
    max_faces: int | None = 60_000,
    is_cancelled: Callable[[], bool] | None = None,
) -> Iterator[SurfaceMesh]:
    """One surface per label (liver = labels >= 1, tumour = labels == 2) and per lesion, in RAS mm.

    The liver surface is the LiTS liver (tumours included), as ``liver_ml`` counts it.
    ``is_cancelled`` is polled between surfaces (a :class:`~liverseg_studio.core.errors.CancelledError`
    is the caller's to raise).
    """
    from liverseg_studio.core.errors import CancelledError

    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise ValueError(f"labels must be (z, y, x), got shape {lab.shape}")

    def check() -> None:
        if is_cancelled is not None and is_cancelled():
            raise CancelledError("surface building cancelled")

    opts = dict(smooth_iterations=smooth_iterations, max_faces=max_faces)
    check()
    liver = mask_surface(lab >= Label.LIVER, affine, kind="liver", **opts)  # type: ignore[arg-type]
    if liver is not None:
        yield liver
    if not (lab == Label.TUMOUR).any():
        return
    if tumour:
        check()
        t = mask_surface(lab == Label.TUMOUR, affine, kind="tumour", **opts)  # type: ignore[arg-type]
        if t is not None:
            yield t
    if lesions:
        comp, n, off = lesion_label_map(lab)
        boxes = ndimage.find_objects(comp, max_label=n)
        for i, box in enumerate(boxes, start=1):
            if box is None:
                continue
            check()
            start = tuple(off[a] + box[a].start for a in range(3))
            s = mask_surface(comp[box] == i, affine, kind="lesion", lesion_id=i,  # type: ignore[arg-type]
                             offset_zyx=start, **opts)
            if s is not None:
                yield s


def label_surfaces(labels: np.ndarray, affine: np.ndarray, **kwargs: object) -> list[SurfaceMesh]:
    """:func:`iter_label_surfaces` as a list."""
    return list(iter_label_surfaces(labels, affine, **kwargs))  # type: ignore[arg-type]


def label_world_bounds(mask: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patient-mm bounds (min, max) of the voxels of ``mask``: their centres, widened by half a voxel.

    For an axis-aligned affine these are the voxels' outer faces; a surface of the mask lies within
    about one voxel of them whatever the affine's rotation.
    """
    a = np.asarray(affine, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    edge = m & ~ndimage.binary_erosion(m)  # only the outer voxels can reach the bounds
    centres = np.argwhere(edge)[:, ::-1].astype(np.float64) @ a[:3, :3].T + a[:3, 3]
    half = 0.5 * np.abs(a[:3, :3]).sum(axis=1)
    return centres.min(axis=0) - half, centres.max(axis=0) + half
