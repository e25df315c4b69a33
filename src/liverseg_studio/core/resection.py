"""Virtual resection by a cutting plane and the future liver remnant (FLR) (issue 25).

Pure numpy/scipy.  A :class:`ResectionPlan` is a plane in patient RAS millimetres (a point and a
normal); the liver voxels whose centres lie on the normal's side (signed distance > 0) are
*resected*, the others are the *remnant*.  :func:`evaluate_plan` gives the volumes, the remnant
as a percentage of the whole liver (LiTS liver: ``labels >= 1``, tumours included, as
``liver_ml``), and for each lesion (numbered as the lesion table) its side and its shortest
distance to the plane (the surgical margin, mm, measured from voxel centres: within half a voxel
of the true surface distance).

A lesion *touches* the cut when its voxels lie on both sides or its margin is below
``touch_mm`` (half the largest voxel side by default: the plane passes through the voxel).
Warnings are raised for a touching lesion, for a margin below ``min_margin_mm`` (0 = off)
and for a remnant below ``min_remnant_percent`` (30 % by default).

The plan is saved beside the mask as ``<name>_plan.json`` (:func:`plan_path_for`) and
:func:`plan_label_map` turns it into a mask with a third value: 0 background, 1 remnant liver,
2 tumour, 3 resected liver (:data:`PLAN_LABELS`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.core.mesh import MM3_PER_ML, lesion_label_map
from liverseg_studio.core.volume import Label

PLAN_VERSION = 1
DEFAULT_MIN_REMNANT_PERCENT = 30.0
#: Values of the mask :func:`plan_label_map` makes (``--export plan``).
PLAN_LABELS = {"0": "Background", "1": "Liver remnant", "2": "Liver tumour", "3": "Liver resected"}
RESECTED = 3


class PlanError(LiversegError):
    """A resection plan file is missing, unreadable or does not fit the case."""


@dataclass(frozen=True)
class ResectionPlan:
    """A cutting plane: ``point`` and ``normal`` in RAS mm; the normal points into the resected part."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]
    min_remnant_percent: float = DEFAULT_MIN_REMNANT_PERCENT
    #: warn when a lesion's margin is below this (mm); 0: only when it touches the cut
    min_margin_mm: float = 0.0
    note: str = ""

    def __post_init__(self) -> None:
        p = tuple(float(v) for v in self.point)
        n = np.asarray([float(v) for v in self.normal], dtype=np.float64)
        if len(p) != 3 or n.shape != (3,) or not all(map(math.isfinite, p)) or not np.all(np.isfinite(n)):
            raise PlanError("a plane needs a finite 3D point and normal")
        length = float(np.linalg.norm(n))
        if length < 1e-9:
            raise PlanError("the plane's normal has zero length")
        object.__setattr__(self, "point", p)
        object.__setattr__(self, "normal", tuple(float(v) for v in n / length))
        object.__setattr__(self, "min_remnant_percent", float(self.min_remnant_percent))
        object.__setattr__(self, "min_margin_mm", float(self.min_margin_mm))

    def flipped(self) -> "ResectionPlan":
        """The same plane with the other side resected."""
        return ResectionPlan(self.point, tuple(-v for v in self.normal), self.min_remnant_percent,
                             self.min_margin_mm, self.note)

    def signed_distance(self, points_ras: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of (n, 3) RAS points to the plane: > 0 on the resected side."""
        return (np.asarray(points_ras, dtype=np.float64) - np.asarray(self.point)) @ np.asarray(self.normal)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "kind": "plane",
            "coordinates": "RAS",
            "point_mm": [round(v, 4) for v in self.point],
            "normal": [round(v, 6) for v in self.normal],
            "resected_side": "the side the normal points to",
            "min_remnant_percent": self.min_remnant_percent,
            "min_margin_mm": self.min_margin_mm,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: Any) -> "ResectionPlan":
        if not isinstance(data, dict) or data.get("kind") != "plane":
            raise PlanError("not a resection plan (expected kind 'plane')")
        if int(data.get("version", 0)) > PLAN_VERSION:
            raise PlanError(f"resection plan version {data.get('version')} is newer than this program reads")
        if data.get("coordinates", "RAS") != "RAS":
            raise PlanError("resection plan coordinates must be RAS")
        try:
            return cls(
                point=tuple(data["point_mm"]),
                normal=tuple(data["normal"]),
                min_remnant_percent=float(data.get("min_remnant_percent", DEFAULT_MIN_REMNANT_PERCENT)),
                min_margin_mm=float(data.get("min_margin_mm", 0.0)),
                note=str(data.get("note", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"resection plan is malformed: {exc}") from None

    @classmethod
    def through_centre(cls, labels: np.ndarray, affine: np.ndarray,
                       normal: tuple[float, float, float] = (1.0, 0.0, 0.0), **kwargs: Any) -> "ResectionPlan":
        """A plane through the liver's centre of mass (a starting plane for the studio)."""
        idx = np.argwhere(np.asarray(labels) >= Label.LIVER)
        if idx.size == 0:
            raise PlanError("no liver to cut")
        centre = _world(idx.mean(axis=0, keepdims=True), affine)[0]
        return cls(tuple(centre), normal, **kwargs)


@dataclass(frozen=True)
class LesionSide:
    """Where one lesion lies with respect to the cut."""

    lesion_id: int
    #: "remnant", "resected" or "both" (the plane passes through it)
    side: str
    #: shortest distance from its voxel centres to the plane, mm (0 when it crosses)
    margin_mm: float
    touches: bool


@dataclass(frozen=True)
class ResectionResult:
    """The FLR figures of a plan on a label map."""

    plan: ResectionPlan
    liver_ml: float
    remnant_ml: float
    resected_ml: float
    remnant_percent: float
    lesions: tuple[LesionSide, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "liver_ml": round(self.liver_ml, 3),
            "remnant_ml": round(self.remnant_ml, 3),
            "resected_ml": round(self.resected_ml, 3),
            "remnant_percent": round(self.remnant_percent, 2),
            "lesions": [{**asdict(s), "margin_mm": round(s.margin_mm, 2)} for s in self.lesions],
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        return (f"remnant {self.remnant_ml:.1f} mL ({self.remnant_percent:.1f} %), resected {self.resected_ml:.1f} mL"
                + (f"; {'; '.join(self.warnings)}" if self.warnings else ""))


def _world(idx_zyx: np.ndarray, affine: np.ndarray) -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    return idx_zyx[:, ::-1].astype(np.float64) @ a[:3, :3].T + a[:3, 3]


def _slice_distances(plan: ResectionPlan, affine: np.ndarray, k: int, shape_yx: tuple[int, int]) -> np.ndarray:
    """Signed distance of every voxel centre of slice ``k`` (y, x) to the plane (linear in the index)."""
    a = np.asarray(affine, dtype=np.float64)
    n = np.asarray(plan.normal)
    gx, gy, gz = n @ a[:3, :3]  # distance change per step in x, y, z index
    d0 = float(n @ (a[:3, 3] - np.asarray(plan.point))) + gz * k
    ys = np.arange(shape_yx[0], dtype=np.float64)[:, None]
    xs = np.arange(shape_yx[1], dtype=np.float64)[None, :]
    return d0 + gy * ys + gx * xs


def resected_mask(labels: np.ndarray, affine: np.ndarray, plan: ResectionPlan) -> np.ndarray:
    """Bool (z, y, x): liver voxels (``labels >= 1``) on the resected side, slice by slice."""
    lab = np.asarray(labels)
    out = np.zeros(lab.shape, dtype=bool)
    for k in range(lab.shape[0]):
        liver = lab[k] >= Label.LIVER
        if liver.any():
            out[k] = liver & (_slice_distances(plan, affine, k, lab.shape[1:]) > 0)
    return out


def evaluate_plan(
    labels: np.ndarray, affine: np.ndarray, plan: ResectionPlan, *, touch_mm: float | None = None
) -> ResectionResult:
    """Split the liver of ``labels`` (uint8 z, y, x; ``affine`` index (x, y, z) -> RAS) by ``plan``."""
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise ValueError(f"labels must be (z, y, x), got shape {lab.shape}")
    a = np.asarray(affine, dtype=np.float64)
    vox_ml = abs(float(np.linalg.det(a[:3, :3]))) / MM3_PER_ML
    if touch_mm is None:
        touch_mm = 0.5 * float(np.linalg.norm(a[:3, :3], axis=0).max())
    liver = resected = 0
    for k in range(lab.shape[0]):
        m = lab[k] >= Label.LIVER
        c = int(np.count_nonzero(m))
        if c:
            liver += c
            resected += int(np.count_nonzero(m & (_slice_distances(plan, a, k, lab.shape[1:]) > 0)))
    liver_ml, resected_ml = liver * vox_ml, resected * vox_ml
    remnant_ml = liver_ml - resected_ml
    pct = 100.0 * remnant_ml / liver_ml if liver_ml else 0.0

    sides: list[LesionSide] = []
    comp, n, off = lesion_label_map(lab)
    if n:
        idx = np.argwhere(comp > 0)
        ids = comp[tuple(idx.T)]
        d = plan.signed_distance(_world(idx + np.asarray(off), a))
        for i in range(1, n + 1):
            di = d[ids == i]
            lo, hi = float(di.min()), float(di.max())
            if lo <= 0 < hi:
                side, margin = "both", 0.0
            else:
                side = "resected" if lo > 0 else "remnant"
                margin = lo if lo > 0 else -hi
            sides.append(LesionSide(i, side, margin, side == "both" or margin < touch_mm))
    warnings = []
    for s in sides:
        if s.touches:
            warnings.append(f"lesion {s.lesion_id} touches the cut")
        elif plan.min_margin_mm > 0 and s.margin_mm < plan.min_margin_mm:
            warnings.append(f"lesion {s.lesion_id}: margin {s.margin_mm:.1f} mm < {plan.min_margin_mm:g} mm")
    if liver_ml and pct < plan.min_remnant_percent:
        warnings.append(f"remnant {pct:.1f} % < {plan.min_remnant_percent:g} % of the liver")
    return ResectionResult(plan, liver_ml, remnant_ml, resected_ml, pct, tuple(sides), tuple(warnings))


def plan_label_map(labels: np.ndarray, affine: np.ndarray, plan: ResectionPlan) -> np.ndarray:
    """uint8 (z, y, x): 0 background, 1 remnant liver, 2 tumour (either side), 3 resected liver."""
    out = np.array(labels, dtype=np.uint8, copy=True)
    cut = resected_mask(out, affine, plan) & (out == Label.LIVER)
    out[cut] = RESECTED
    return out


# -- files ------------------------------------------------------------------------------------
def plan_path_for(mask_path: str | Path) -> Path:
    """``<name>_plan.json`` beside ``<name>_mask.nii.gz`` (or beside any file named ``<name>...``)."""
    p = Path(mask_path)
    name = p.name
    for suffix in ("_mask.nii.gz", "_mask.png", ".nii.gz", ".nii"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = p.stem
    return p.with_name(f"{name}_plan.json")


def save_plan(plan: ResectionPlan, path: str | Path, *, result: ResectionResult | None = None,
              overwrite: bool = True) -> Path:
    """Write the plan (and, if given, its figures) as JSON, atomically."""
    from liverseg_studio.core.io import atomic_write_text

    data = plan.to_json()
    if result is not None:
        data["figures"] = {k: v for k, v in result.to_json().items() if k != "plan"}
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n", overwrite=overwrite)


def load_plan(path: str | Path) -> ResectionPlan:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{p}: no resection plan") from None
    except (OSError, ValueError) as exc:
        raise PlanError(f"{p}: cannot read the resection plan: {exc}") from None
    return ResectionPlan.from_json(data)
