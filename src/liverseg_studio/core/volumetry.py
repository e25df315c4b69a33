"""Volumetry: liver and tumour volumes, tumour burden and the lesion table.

* Liver is ``labels >= 1`` (as LiTS scores it: the liver volume *includes*
  the tumours inside it); tumour is ``labels == 2``.
* Tumour burden = tumour volume / liver volume x 100 %.
* Lesions are the 3D connected components of the tumour (26-connectivity:
  voxels touching by a face, edge or corner belong to the same lesion),
  numbered 1.. by decreasing volume.
* The longest axial diameter of a lesion is the largest in-plane (y, x)
  distance across the lesion over all its slices, as RECIST measures on axial
  images, in mm with the volume's in-plane spacing.  It is measured between
  the outer edge midpoints of the lesion's boundary pixels, so the pixels'
  own extent counts (see :func:`longest_axial_diameter`).
* When the spacing is unknown (plain images, MRC files with voxel size 0),
  mL and mm are omitted (``None``) and only voxel counts / pixel lengths are
  given; ``VolumeStats.note`` says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from liverseg_studio.core.volume import Label, Volume

MM3_PER_ML = 1000.0
_FULL_3D = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Lesion:
    """One connected tumour component."""

    id: int
    voxels: int
    #: None when the spacing is unknown.
    volume_ml: float | None
    #: Longest in-plane diameter over the lesion's slices, mm (None if spacing unknown).
    longest_axial_diameter_mm: float | None
    #: The same in pixels (always given; with anisotropic pixels it is measured in mm first).
    longest_axial_diameter_px: float
    #: Slice (z index) of the lesion's centroid, rounded.
    centroid_slice: int
    #: Centroid as (z, y, x) voxel indices.
    centroid_zyx: tuple[float, float, float]
    #: Slice on which the longest axial diameter was measured.
    diameter_slice: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("volume_ml", "longest_axial_diameter_mm", "longest_axial_diameter_px"):
            if d[key] is not None:
                d[key] = round(float(d[key]), 4)
        d["centroid_zyx"] = [round(float(v), 2) for v in self.centroid_zyx]
        return d


@dataclass(frozen=True)
class VolumeStats:
    """Volumetry of a label map (what ``<name>_report.json`` reports)."""

    spacing_known: bool
    #: (z, y, x) mm; meaningless when ``spacing_known`` is False.
    spacing: tuple[float, float, float]
    voxel_volume_mm3: float
    liver_voxels: int
    tumour_voxels: int
    liver_ml: float | None
    tumour_ml: float | None
    #: tumour / liver x 100 (from voxel counts; identical to the mL ratio); None without liver.
    tumour_burden_percent: float | None
    lesions: tuple[Lesion, ...] = ()
    #: Slices that contain liver (z indices), for montages and navigation.
    liver_slices: int = 0
    note: str = ""
    definitions: dict[str, str] = field(
        default_factory=lambda: {
            "liver": "labels >= 1 (liver including tumour, as LiTS scores it)",
            "tumour": "labels == 2",
            "tumour_burden_percent": "tumour volume / liver volume x 100",
            "lesion": "3D connected component of tumour (26-connectivity)",
            "longest_axial_diameter": "largest in-plane distance across the lesion over its slices",
        }
    )

    @property
    def n_lesions(self) -> int:
        return len(self.lesions)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (numbers rounded sensibly)."""
        return {
            "spacing_known": self.spacing_known,
            "spacing_mm_zyx": [round(s, 6) for s in self.spacing] if self.spacing_known else None,
            "voxel_volume_mm3": round(self.voxel_volume_mm3, 6) if self.spacing_known else None,
            "liver_voxels": self.liver_voxels,
            "tumour_voxels": self.tumour_voxels,
            "liver_ml": None if self.liver_ml is None else round(self.liver_ml, 3),
            "tumour_ml": None if self.tumour_ml is None else round(self.tumour_ml, 3),
            "tumour_burden_percent": None
            if self.tumour_burden_percent is None
            else round(self.tumour_burden_percent, 3),
            "n_lesions": self.n_lesions,
            "lesions": [les.to_json() for les in self.lesions],
            "liver_slices": self.liver_slices,
            "note": self.note,
            "definitions": dict(self.definitions),
        }


def convex_hull_2d(points: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of ``points`` (n, 2) (Andrew's monotone chain; collinear points dropped).

    Here rather than ``scipy.spatial.ConvexHull``: that import pulls scipy.linalg, sparse and
    spatial (~17 MB) into the offline bundle for one small hull per lesion slice.
    """
    pts = np.unique(np.asarray(points, dtype=np.float64), axis=0)  # sorted by x, then y
    if len(pts) < 3:
        return pts

    def _half(seq: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for p in seq:
            while len(chain) >= 2:
                (ax, ay), (bx, by) = chain[-2], chain[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:  # a left turn: keep b
                    break
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = _half(pts), _half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _farthest_pair(points: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The two most distant of ``points`` (n, 2), searched on their convex hull."""
    pts = np.asarray(points, dtype=np.float64)
    pts = convex_hull_2d(pts) if len(pts) > 8 else np.unique(pts, axis=0)
    if len(pts) < 2:
        return 0.0, pts[0], pts[0]
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    return float(np.sqrt(d2[i, j])), pts[i], pts[j]


_EDGE_MIDPOINTS = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, -0.5], [0.0, 0.5]])


def _row_extreme_points(first: np.ndarray, last: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Edge midpoints of the leftmost/rightmost pixel of each occupied row: (6 * rows, 2) (y, x).

    Every vertex of the convex hull of all boundary pixels' edge midpoints is
    one of these: a hull vertex is the leftmost or rightmost point of its
    y-coordinate, and at y = r (a row's left/right edge midpoints) or
    y = r +- 0.5 (top/bottom edge midpoints of rows r and r +- 1) those come
    from the row ends.  Scaling the axes keeps both properties, so the
    farthest pair (which lies on the hull) is the same, found from far fewer points.
    """
    r = rows.astype(np.float64)
    a = first.astype(np.float64)
    b = last.astype(np.float64)
    ys = np.concatenate([r, r, r - 0.5, r - 0.5, r + 0.5, r + 0.5])
    xs = np.concatenate([a - 0.5, b + 0.5, a, b, a, b])
    return np.stack([ys, xs], axis=1)


def longest_axial_diameter(
    mask_zyx: np.ndarray, pixel_spacing_yx: tuple[float, float] = (1.0, 1.0)
) -> tuple[float, float, int]:
    """Longest in-plane diameter of a (z, y, x) boolean mask over its slices.

    Returns ``(diameter in spacing units, the same line's length in pixels, slice index)``.
    The diameter is the largest distance between the outer edge midpoints of
    the lesion's boundary pixels on one slice: the pixel centres' extent plus
    one pixel, which for round lesions is within a fraction of a pixel of the
    true diameter (the union of pixel squares, corner to corner, overestimates
    a pixelated disc by more than a pixel; centre to centre underestimates it
    by one).  A single pixel is one pixel across.  Ties go to the first slice.

    Speed (milliseconds per lesion): only the two ends of each occupied row
    are candidates (they hold every convex hull vertex, see
    :func:`_row_extreme_points`), and slices are visited from the largest
    bounding-box diagonal down, stopping once no remaining slice can beat the best.
    """
    m = np.asarray(mask_zyx, dtype=bool)
    scale = np.array([float(pixel_spacing_yx[0]), float(pixel_spacing_yx[1])])
    if m.ndim != 3 or m.size == 0:
        return (0.0, 0.0, 0)
    nz, ny, nx = m.shape
    row_any = m.any(axis=2)  # (z, y)
    if not row_any.any():
        return (0.0, 0.0, 0)
    first = np.argmax(m, axis=2)  # (z, y) leftmost pixel of each row
    last = nx - 1 - np.argmax(m[:, :, ::-1], axis=2)
    # upper bound per slice: the diagonal of its pixels' bounding box (edges included)
    ks = np.flatnonzero(row_any.any(axis=1))
    bounds = np.empty(ks.size)
    for n, k in enumerate(ks):
        rows = np.flatnonzero(row_any[k])
        h = (rows[-1] - rows[0] + 1) * scale[0]
        w = (last[k, rows].max() - first[k, rows].min() + 1) * scale[1]
        bounds[n] = np.hypot(h, w)
    best = (0.0, 0.0, 0)
    found = False
    for n in np.argsort(-bounds, kind="stable"):
        k = int(ks[n])
        if found and bounds[n] < best[0]:
            break
        rows = np.flatnonzero(row_any[k])
        pts = _row_extreme_points(first[k, rows], last[k, rows], rows) * scale
        dist, a, b = _farthest_pair(pts)
        if not found or dist > best[0] or (dist == best[0] and k < best[2]):
            best = (dist, float(np.linalg.norm((a - b) / scale)), k)
            found = True
    return best


def compute_stats(
    labels: np.ndarray,
    volume: Volume | None = None,
    *,
    spacing: tuple[float, float, float] | None = None,
    spacing_known: bool | None = None,
) -> VolumeStats:
    """Volumetry of ``labels`` (uint8 z, y, x) with the geometry of ``volume``.

    Either pass ``volume`` (its affine gives spacing and voxel volume) or
    ``spacing`` (z, y, x mm).  Without any, or with ``spacing_known=False``,
    only voxel counts are reported.
    """
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise ValueError(f"labels must be (z, y, x), got shape {lab.shape}")
    if volume is not None:
        if tuple(volume.shape) != tuple(lab.shape):
            raise ValueError(f"labels shape {lab.shape} does not match volume shape {volume.shape}")
        sp = volume.spacing
        vox_mm3 = volume.voxel_volume_mm3
        known = volume.spacing_known if spacing_known is None else spacing_known
    elif spacing is not None:
        sp = tuple(float(s) for s in spacing)  # type: ignore[assignment]
        vox_mm3 = float(np.prod(sp))
        known = True if spacing_known is None else spacing_known
    else:
        sp, vox_mm3, known = (1.0, 1.0, 1.0), 1.0, False
    if known and not vox_mm3 > 0:
        known = False
    if not known:
        sp, vox_mm3 = (1.0, 1.0, 1.0), 1.0

    # per-slice counts give totals without a full-size boolean copy
    # slice by slice: no full-size boolean temporaries on 512 x 512 x 800 volumes
    liver_per_slice = np.array([np.count_nonzero(lab[k] >= Label.LIVER) for k in range(lab.shape[0])], dtype=np.int64)
    tumour_per_slice = np.array([np.count_nonzero(lab[k] == Label.TUMOUR) for k in range(lab.shape[0])], dtype=np.int64)
    liver_vox = int(liver_per_slice.sum())
    tumour_vox = int(tumour_per_slice.sum())
    burden = 100.0 * tumour_vox / liver_vox if liver_vox else None

    lesions: list[Lesion] = []
    if tumour_vox:
        lesions = _lesions(lab, sp, vox_mm3, known, np.flatnonzero(tumour_per_slice))

    is_2d = lab.shape[0] == 1
    note = ""
    if not known:
        unit = "pixel areas" if is_2d else "voxel counts"
        note = (
            f"voxel spacing unknown: volumes are {unit} and diameters in pixels; mL and mm omitted"
        )
    return VolumeStats(
        spacing_known=known,
        spacing=tuple(float(s) for s in sp),  # type: ignore[arg-type]
        voxel_volume_mm3=float(vox_mm3),
        liver_voxels=liver_vox,
        tumour_voxels=tumour_vox,
        liver_ml=liver_vox * vox_mm3 / MM3_PER_ML if known else None,
        tumour_ml=tumour_vox * vox_mm3 / MM3_PER_ML if known else None,
        tumour_burden_percent=burden,
        lesions=tuple(lesions),
        liver_slices=int(np.count_nonzero(liver_per_slice)),
        note=note,
    )


def _centroid(m: np.ndarray, n: int) -> tuple[float, float, float]:
    """Centre of mass (z, y, x) of a boolean mask with ``n`` voxels, from its three projections."""
    pz = np.count_nonzero(m, axis=(1, 2)) if m.shape[0] > 1 else np.array([n])
    py = m.sum(axis=(0, 2), dtype=np.int64)
    px = m.sum(axis=(0, 1), dtype=np.int64)
    cz, cy, cx = (float(np.dot(p, np.arange(p.size, dtype=np.float64)) / n) for p in (pz, py, px))
    return cz, cy, cx


def _lesions(
    lab: np.ndarray, sp: tuple[float, float, float], vox_mm3: float, known: bool, tum_z: np.ndarray
) -> list[Lesion]:
    # work inside the tumour's bounding box: a lesion table on 512x512x800 must not label the whole volume
    z0, z1 = int(tum_z[0]), int(tum_z[-1]) + 1
    # memory (issue 17): the in-plane box slice by slice, then only the box as bool, uint16
    # component labels when they fit, sizes counted in each component's box (np.bincount
    # would copy the labels to int64): ~3 bytes per voxel of the tumour box, not ~13
    rows_any = np.zeros(lab.shape[1], dtype=bool)
    cols_any = np.zeros(lab.shape[2], dtype=bool)
    for k in tum_z:
        t = lab[k] == Label.TUMOUR
        rows_any |= t.any(axis=1)
        cols_any |= t.any(axis=0)
    ys, xs = np.flatnonzero(rows_any), np.flatnonzero(cols_any)
    y0, x0 = int(ys[0]), int(xs[0])
    sub = np.asarray(lab[z0:z1, y0 : int(ys[-1]) + 1, x0 : int(xs[-1]) + 1]) == Label.TUMOUR
    try:
        comp, n = ndimage.label(sub, structure=_FULL_3D, output=np.uint16)
    except RuntimeError:  # more than 65535 lesions
        comp, n = ndimage.label(sub, structure=_FULL_3D)
    del sub
    boxes = ndimage.find_objects(comp, max_label=n)
    sizes = np.zeros(n + 1, dtype=np.int64)
    for i, b in enumerate(boxes, start=1):
        if b is not None:
            sizes[i] = np.count_nonzero(comp[b] == i)
    order = sorted(range(1, n + 1), key=lambda i: (-int(sizes[i]), i))
    _, dy, dx = sp
    out = []
    for new_id, i in enumerate(order, start=1):
        box = boxes[i - 1]
        m = comp[box] == i
        cz, cy, cx = _centroid(m, int(sizes[i]))
        cz, cy, cx = cz + box[0].start + z0, cy + box[1].start + y0, cx + box[2].start + x0
        diam, diam_px, k = longest_axial_diameter(m, (dy, dx))
        vox = int(sizes[i])
        out.append(
            Lesion(
                id=new_id,
                voxels=vox,
                volume_ml=vox * vox_mm3 / MM3_PER_ML if known else None,
                longest_axial_diameter_mm=diam if known else None,
                longest_axial_diameter_px=diam_px if known else diam,
                centroid_slice=int(round(cz)),
                centroid_zyx=(cz, cy, cx),
                diameter_slice=int(k + box[0].start + z0),
            )
        )
    return out
