"""Bring 2D training slices into the canonical display (``/work/notes``' convention, radiological axial):
image column 0 is the patient's right (the liver on the image's LEFT half), row 0 is anterior (the spine at
the BOTTOM).

Every training slice is one of the 8 dihedral transforms (rotations by 90 degrees, with or without a mirror)
away from that display.  Two ways to know which one:

* **per set**, where the source documents it (``SET_RULES``: 3D-IRCADb slices are left-right mirrored,
  AMOS and the JavisPeng LiTS slices upside-down, CHAOS radiological);
* **per slice** (:func:`detect`), where the source says "varies" (the LiTS/MSD slices: rotated, mirrored,
  flipped): the spine (the thickest bone, near the body's posterior midline) must end at the bottom, and the
  liver's centroid (labels >= 1) on the image's left half.  The decision carries a confidence; a slice whose
  decision is ambiguous (no spine found, spine off every axis, liver near the midline) is refused.

Transforms are named by what they do to an ``(row, col)`` array: :data:`TRANSFORMS` maps a name to a
function, :func:`invert` gives the name of the inverse.  Nothing here reads files; ``prepare`` calls
:func:`canonicalise` on each slice's HU and labels before resizing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

#: name -> function on (row, col, ...) arrays.  rot90 is numpy's (counter-clockwise on display).
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda a: a,
    "rot90": lambda a: np.rot90(a, 1, axes=(0, 1)),
    "rot180": lambda a: np.rot90(a, 2, axes=(0, 1)),
    "rot270": lambda a: np.rot90(a, 3, axes=(0, 1)),
    "fliplr": lambda a: a[:, ::-1],
    "flipud": lambda a: a[::-1],
    "transpose": lambda a: np.swapaxes(a, 0, 1),
    "antitranspose": lambda a: np.rot90(a, 2, axes=(0, 1)).swapaxes(0, 1),
}
_INVERSE = {"rot90": "rot270", "rot270": "rot90"}

#: Orientation of each shared-data set (data README table) -> the transform to the canonical display.
#: ``"detect"``: orientation varies per slice.  Sets not listed are taken as stored.
SET_RULES: dict[str, str] = {
    "ircad": "rot180",  # README: "left-right mirrored"; the slices show the spine at the TOP too (measured)
    "chaos": "identity",  # radiological
    "amos": "flipud",  # upside-down: flipud restores it
    "lits-javispeng": "flipud",  # upside-down
    # README: "varies: rotated, mirrored, flipped".  Measured: the file-name prefix fixes it (flipped_ = a quarter
    # turn one way, mirrored_ the other); the detector, run alone, agrees on 567 of the 584 slices it decides
    # and the 17 others are its own mistakes (checked by eye).  "prefix": the name's rule, checked by the detector.
    "lits-msd": "prefix",
}
#: ``"prefix"`` sets: file-name prefix -> transform.  A name with no known prefix falls back to the detector.
PREFIX_RULES: dict[str, dict[str, str]] = {"lits-msd": {"flipped_": "rot90", "mirrored_": "rot270"}}

#: Modes of ``liverseg prepare --orientation``.
MODES = ("as-stored", "canonical")


def invert(name: str) -> str:
    """Name of the inverse transform (every one but the two quarter turns is its own inverse)."""
    if name not in TRANSFORMS:
        raise KeyError(name)
    return _INVERSE.get(name, name)


def apply(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` (row, col, ...) under the transform ``name`` (a contiguous copy)."""
    return np.ascontiguousarray(TRANSFORMS[name](np.asarray(array)))


@dataclass(frozen=True)
class OrientationConfig:
    """Thresholds of :func:`detect` (in HU and in fractions of the body's size)."""

    bone_hu: float = 180.0  #: bone: HU at or above (the LiTS/MSD slices clip at 255)
    bone_percentile: float = 99.0  #: ... or the body's brightest (100 - this) % where that is lower
    body_hu: float = -300.0  #: body: HU above (fat clipped to 0 in LiTS/MSD still counts once holes are filled)
    work_size: int = 128  #: detection runs on a slice resized to this side
    open_frac: float = 0.016  #: opening radius for the thick bone (x side): ribs vanish, vertebrae stay
    max_hole_frac: float = 0.01  #: holes in bone filled up to this x the body's area
    min_aspect: float = 1.08  #: body wider than deep by this: its shorter axis is front-back
    max_midline_offset: float = 0.25  #: the vertebra within this x body radius of the front-back axis
    min_table_frac: float = 0.005  #: bright pixels outside the body, x body area, to count as the table
    min_table_offset: float = 0.6  #: ... centred at least this x body radius off the body centre
    max_axis_deg: float = 30.0  #: the spine's direction from the body centre within this of an axis
    min_spine_offset: float = 0.12  #: spine centre at least this x body radius from the body centre
    min_liver_offset: float = 0.06  #: liver centroid at least this x body radius off the spine's line
    min_liver_anterior: float = 0.1  #: liver centroid at least this x body radius in front of the spine
    min_liver_pixels: int = 20  #: at work_size


@dataclass(frozen=True)
class Orientation:
    """What was decided for one slice."""

    transform: str  #: TRANSFORMS name that brings the slice to the canonical display
    confidence: float  #: 0..1 (1: clear; below 0 never happens; refused slices have ok=False)
    ok: bool  #: False: ambiguous, do not use the slice
    rule: str  #: "set" (the set's documented orientation), "detected", "as-stored"
    reason: str = ""  #: why it was refused, or what decided it
    spine_deg: float | None = None  #: angle of the spine from the body centre, off the nearest axis
    liver_offset: float | None = None  #: liver centroid off the spine's line, x body radius

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"transform": self.transform, "confidence": round(float(self.confidence), 3), "rule": self.rule}
        if self.reason:
            out["reason"] = self.reason
        return out


def _resize(img: np.ndarray, size: int, order: int) -> np.ndarray:
    from scipy import ndimage as ndi

    if img.shape == (size, size):
        return img
    return ndi.zoom(img, (size / img.shape[0], size / img.shape[1]), order=order, mode="nearest")


def _disk(r: int) -> np.ndarray:
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y) <= r * r


def _bone_candidates(hu: np.ndarray, body: np.ndarray, cfg: OrientationConfig) -> list[np.ndarray]:
    """Thick bone components (vertebra candidates), largest (holes filled) first."""
    from scipy import ndimage as ndi

    # HU mappings of some sets are estimates: where the body's brightest 1 % is below bone_hu, that is bone
    t = min(cfg.bone_hu, float(np.percentile(hu[body], cfg.bone_percentile))) if body.any() else cfg.bone_hu
    bone = (hu >= t) & body
    r = max(1, int(round(cfg.open_frac * hu.shape[0])))
    # a vertebra is a cortical ring around softer marrow: close it, fill its small holes (the marrow, the
    # canal; never the ribs' ring around the abdomen), then open away what is thin (ribs, vessels)
    closed = ndi.binary_closing(bone, structure=_disk(r))
    holes = ndi.binary_fill_holes(closed) & ~closed
    hl, nh = ndi.label(holes)
    if nh:
        small = np.flatnonzero(ndi.sum(holes, hl, range(1, nh + 1)) <= cfg.max_hole_frac * body.sum()) + 1
        closed |= np.isin(hl, small)
    thick = ndi.binary_opening(closed, structure=_disk(max(1, r - 1)))
    lab, n = ndi.label(thick)
    if n == 0:
        return []
    areas = ndi.sum(thick, lab, range(1, n + 1))
    return [lab == (k + 1) for k in np.argsort(-areas, kind="stable")[:8]]


def _table_side(h: np.ndarray, body: np.ndarray, floor: float, ap: int, cfg: OrientationConfig) -> int:
    """+1 / -1: the side (along axis ``ap``) where the scanner's table lies, outside the body; 0: not seen.

    The patient lies on the table, so it is behind the back (the curved lines beside the body in most slices)."""
    from scipy import ndimage as ndi

    outside = (h > floor) & ~ndi.binary_dilation(body, structure=_disk(3))
    if outside.sum() < cfg.min_table_frac * body.sum():
        return 0
    rows, cols = np.nonzero(body)
    b = np.array([rows.mean(), cols.mean()])
    radius = float(np.sqrt(body.sum() / np.pi))
    t = np.array(ndi.center_of_mass(outside)) - b
    if abs(t[ap]) < cfg.min_table_offset * radius or abs(t[ap]) < 2 * abs(t[1 - ap]):
        return 0
    return 1 if t[ap] > 0 else -1


def _pick_spine(
    cands: list[np.ndarray], body: np.ndarray, table: Callable[[int], int], cfg: OrientationConfig
) -> tuple[np.ndarray | None, str]:
    """The vertebra among the candidates: on the body's front-back axis (its shorter one), on the table's
    side when the table is seen, the largest such; the largest of all when the body is nearly round."""
    from scipy import ndimage as ndi

    if not cands:
        return None, "no spine (thick bone) found"
    rows, cols = np.nonzero(body)
    sd_r, sd_c = float(rows.std()), float(cols.std())
    b = np.array([rows.mean(), cols.mean()])
    radius = float(np.sqrt(body.sum() / np.pi))
    if max(sd_r, sd_c) < cfg.min_aspect * min(sd_r, sd_c):
        return cands[0], "largest bone (body nearly round)"
    ap = 0 if sd_r < sd_c else 1  # the front-back axis: the shorter one
    side = table(ap)
    for c in cands:
        cm = np.array(ndi.center_of_mass(c)) - b
        if abs(cm[1 - ap]) <= cfg.max_midline_offset * radius and abs(cm[ap]) >= cfg.min_spine_offset * radius:
            if side == 0 or np.sign(cm[ap]) == side:
                return c, "largest bone on the body's front-back axis" + (", table side" if side else "")
    return None, "no thick bone on the body's front-back axis" + (" on the table's side" if side else "")


def detect(hu: np.ndarray, labels: np.ndarray, cfg: OrientationConfig = OrientationConfig()) -> Orientation:
    """The dihedral transform that puts the spine at the bottom and the liver on the left half.

    ``hu``: float (row, col) HU (or an estimate), ``labels``: (row, col) with liver-or-tumour >= 1.
    """
    from scipy import ndimage as ndi

    s = cfg.work_size
    h = _resize(np.asarray(hu, dtype=np.float32), s, 1)
    lab = _resize((np.asarray(labels) >= 1).astype(np.uint8), s, 0) > 0
    # body: above body_hu, or above the slice's floor where the source clipped air and fat to one value
    floor = max(cfg.body_hu, float(h.min()) + 1.0)
    body = ndi.binary_fill_holes(ndi.binary_closing(h > floor, structure=_disk(2)))
    lb, n = ndi.label(body)
    if n == 0:
        return Orientation("identity", 0.0, False, "detected", "no body")
    sizes = ndi.sum(body, lb, range(1, n + 1))
    body = lb == (int(np.argmax(sizes)) + 1)
    if lab.sum() < cfg.min_liver_pixels:
        return Orientation("identity", 0.0, False, "detected", "no liver in the mask")
    spine, how = _pick_spine(
        _bone_candidates(h, body, cfg), body, lambda ap: _table_side(h, body, floor, ap, cfg), cfg
    )
    if spine is None:
        return Orientation("identity", 0.0, False, "detected", how)
    b = np.array(ndi.center_of_mass(body))
    sp = np.array(ndi.center_of_mass(spine))
    lv = np.array(ndi.center_of_mass(lab))
    radius = float(np.sqrt(body.sum() / np.pi))
    d = sp - b
    dist = float(np.hypot(*d)) / radius
    # direction of the spine: 0 = down (+row), 90 = right (+col), 180 = up, 270 = left
    ang = float(np.degrees(np.arctan2(d[1], d[0]))) % 360.0
    axis = int(np.round(ang / 90.0)) % 4
    dev = abs(((ang - axis * 90.0) + 180.0) % 360.0 - 180.0)
    # unit vectors: u from the body centre towards the spine (the display's "down"), v its perpendicular,
    # chosen so that (u, v) is a right-handed frame like (down=+row, right=+col)
    u = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]][axis], dtype=float)
    v = np.array([-u[1], u[0]])  # rotate "down" by +90 degrees -> "right" in the same handedness
    # check: for u=(1,0) (down), v=(0,1)=+col (right).  The liver must be on the image's left: v . (lv - sp) < 0
    side = float(np.dot(lv - sp, v)) / radius
    # which transform maps u to (1, 0) and keeps or mirrors v to (0, -1) for the liver?
    rot = {0: "identity", 1: "rot270", 2: "rot180", 3: "rot90"}[axis]  # brings the spine direction to "down"
    # after the rotation, liver on the right (side > 0) -> mirror left-right
    transform = _compose(rot, "fliplr") if side > 0 else rot
    spine_conf = max(0.0, 1.0 - dev / cfg.max_axis_deg) * min(1.0, dist / (2 * cfg.min_spine_offset))
    liver_conf = min(1.0, abs(side) / (3 * cfg.min_liver_offset))
    conf = float(min(spine_conf, liver_conf))
    reason = ""
    if dev > cfg.max_axis_deg:
        reason = f"spine {dev:.0f} deg off the nearest axis"
    elif dist < cfg.min_spine_offset:
        reason = f"spine at the body centre ({dist:.2f} x radius)"
    elif float(np.dot(lv - sp, u)) / radius > -cfg.min_liver_anterior:
        reason = "liver not in front of the spine (the bone found is likely not the spine)"
    elif abs(side) < cfg.min_liver_offset:
        reason = f"liver on the spine's line ({side:+.2f} x radius)"
    return Orientation(transform, conf, not reason, "detected", reason, round(dev, 1), round(side, 3))


def _compose(first: str, then: str) -> str:
    """Name of ``then(first(a))`` (found by applying both to a probe)."""
    probe = np.arange(6).reshape(2, 3)
    want = apply(then, apply(first, probe))
    for name in TRANSFORMS:
        got = apply(name, probe)
        if got.shape == want.shape and np.array_equal(got, want):
            return name
    raise AssertionError((first, then))


def decide(
    set_name: str, hu: np.ndarray, labels: np.ndarray, name: str = "", cfg: OrientationConfig = OrientationConfig()
) -> Orientation:
    """The set's documented transform; for ``"prefix"`` sets the file-name rule checked against the detector
    (refused where the detector confidently disagrees); the detector alone where nothing else is known."""
    rule = SET_RULES.get(set_name)
    if rule is None:
        return Orientation("identity", 1.0, True, "as-stored", "no documented orientation: taken as stored")
    if rule in ("detect", "prefix"):
        found = detect(hu, labels, cfg)
        by_name = next((t for p, t in PREFIX_RULES.get(set_name, {}).items() if name.startswith(p)), None)
        if rule == "detect" or by_name is None:
            return found
        if not found.ok:
            return Orientation(by_name, 0.5, True, "name", f"detector undecided: {found.reason}")
        if found.transform != by_name:
            return Orientation(by_name, 0.0, False, "name", f"the detector finds {found.transform}, the file name says {by_name}")
        return Orientation(by_name, max(0.5, found.confidence), True, "name+detected", "", found.spine_deg, found.liver_offset)
    return Orientation(rule, 1.0, True, "set")


def canonicalise(
    set_name: str,
    hu: np.ndarray | None,
    labels: np.ndarray,
    name: str = "",
    cfg: OrientationConfig = OrientationConfig(),
) -> tuple[np.ndarray | None, np.ndarray, Orientation]:
    """``(hu, labels, decision)`` in the canonical display (unchanged when the decision is refused)."""
    if hu is None and SET_RULES.get(set_name) in ("detect", "prefix"):
        return hu, labels, Orientation("identity", 0.0, False, "detected", "no HU to find the spine in")
    o = decide(set_name, hu if hu is not None else np.zeros(labels.shape, np.float32), labels, name, cfg)
    if not o.ok:
        return hu, labels, o
    return (None if hu is None else apply(o.transform, hu)), apply(o.transform, labels), o
