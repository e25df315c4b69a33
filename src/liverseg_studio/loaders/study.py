"""Which series of a whole-study folder to segment (issue 28).

A study as a PACS delivers it holds a scout, often several phases (arterial, portal venous,
delayed) and several reconstructions (thin and thick).  :func:`summarise` describes each
series from its headers; :func:`choose` applies the rule the README states:

1. skip localizers (scouts, topograms), secondary captures, derived images, non-CT and
   non-axial series, single images, and series whose slices do not form an even stack;
2. among the axial CT series left, prefer a portal-venous phase where a description says so;
3. otherwise (and among several portal-venous ones) take the thinnest series among those that
   cover at least 90 % of the longest extent; then the longest; then the one with most images.

An exact tie raises :class:`~liverseg_studio.core.errors.MultipleSeriesError` (``--series UID``
then chooses).  :attr:`Choice.reason` is the one line the CLI prints and the studio's series
picker shows.  This module knows nothing about reading pixels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from liverseg_studio.core.errors import LoaderError, MultipleSeriesError
from liverseg_studio.loaders import dicom as dcm

_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: Candidate series must cover at least this share of the longest candidate's extent.
COVERAGE_SHARE = 0.9

_PHASES = (  # (phase, pattern on the lower-case description), first match wins
    ("portal venous", re.compile(r"portal|\bp\.?v\b|\bpvp\b")),
    ("delayed", re.compile(r"delay|\blate\b|equilib|excret|urogra|\bdel\b")),
    ("arterial", re.compile(r"arter|\bart\b|\bhat\b|\blat\b")),
    ("portal venous", re.compile(r"ven[oö]s|venou|\bven\b|\bvp\b")),
    ("non-contrast", re.compile(r"non.?con|native|\bnativ|plain|\bnc\b|pre.?contrast|w/?o\b|without")),
)


def phase_of(description: str) -> str:
    """The contrast phase a series description names ('' when none)."""
    text = description.lower()
    for phase, pattern in _PHASES:
        if pattern.search(text):
            return phase
    return ""


@dataclass(frozen=True)
class SeriesSummary:
    """One series of a study folder, as its headers describe it."""

    uid: str
    description: str
    modality: str
    series_number: int | None
    n_images: int  # files, or frames of a multi-frame file
    n_files: int
    thickness_mm: float | None
    extent_mm: float  # distance from first to last slice centre along the normal (0 for one image)
    plane: str  # axial, coronal, sagittal, oblique, unknown
    phase: str
    multiframe: bool
    #: Why the rule skips this series ('' for a candidate).
    skipped: str = ""
    files: tuple[str, ...] = field(default=(), repr=False)

    @property
    def label(self) -> str:
        number = f"series {self.series_number} " if self.series_number is not None else ""
        return f"{number}'{self.description or 'no description'}'"

    def details(self) -> str:
        thick = f"{self.thickness_mm:g} mm" if self.thickness_mm else "thickness unknown"
        return f"{self.n_images} images, {thick}, {self.extent_mm:.0f} mm covered"


@dataclass(frozen=True)
class Choice:
    chosen: SeriesSummary
    reason: str
    summaries: tuple[SeriesSummary, ...]


def _plane(ds: Any) -> str:
    orient = _orientation(ds)
    if orient is None:
        return "unknown"
    normal = np.abs(np.cross(*orient))
    axis = int(np.argmax(normal))
    if normal[axis] < 0.8:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _orientation(ds: Any) -> tuple[np.ndarray, np.ndarray] | None:
    from liverseg_studio.loaders import dicom_multiframe as mf

    return mf.frame_orientation(ds, 0) if mf.is_multiframe(ds) else dcm.orientation(ds)


def _image_type(ds: Any) -> list[str]:
    value = dcm._get(ds, "ImageType")
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [str(v).strip().upper() for v in items]


def _skip_reason(ds: Any, modality: str, plane: str) -> str:
    kinds = _image_type(ds)
    if modality != "CT":
        return f"modality {modality or 'unknown'}, not CT"
    if "LOCALIZER" in kinds or "SCOUT" in kinds or "TOPOGRAM" in kinds:
        return "localizer/scout"
    if str(dcm._get(ds, "SOPClassUID", "")).startswith(_SECONDARY_CAPTURE):
        return "secondary capture"
    if kinds and kinds[0] == "DERIVED" or "SECONDARY" in kinds[1:2]:
        return "derived images (reformat, MIP or screenshot)"
    if plane != "axial":
        return f"{plane} slices, not axial"
    return ""


def summarise(where: Path, groups: dict[str, Sequence[tuple[Path, Any]]]) -> list[SeriesSummary]:
    """One :class:`SeriesSummary` per series: ``groups`` maps a SeriesInstanceUID to (path, header)s."""
    from liverseg_studio.loaders import dicom_multiframe as mf
    from liverseg_studio.loaders.dicom_series import stack_geometry

    out = []
    for uid, items in groups.items():
        ds = items[0][1]
        modality = str(dcm._get(ds, "Modality", "") or "").strip().upper()
        multi = any(mf.is_multiframe(h) for _, h in items)
        plane = _plane(ds)
        skipped = _skip_reason(ds, modality, plane)
        extent, n_images = 0.0, len(items)
        if multi:
            n_images = sum(mf.n_frames(h) for _, h in items)
            if len(items) > 1 and not skipped:
                skipped = f"{len(items)} multi-frame files in one series (open one file)"
        if not skipped and n_images < 2:
            skipped = "a single image"
        if not skipped:
            try:
                if multi:
                    order, affine, _, _ = mf.frame_geometry(items[0][0], ds)
                else:
                    positions = [dcm._floats(h, "ImagePositionPatient", 3) for _, h in items]
                    order, affine, _, _ = stack_geometry(
                        where, positions, [p.name for p, _ in items], dcm.orientation(ds), dcm.pixel_spacing(ds), 1.0,
                        tilt_deg=dcm._float(ds, "GantryDetectorTilt"),
                    )
                extent = float(np.linalg.norm(affine[:3, 2])) * (n_images - 1)
            except LoaderError as exc:
                skipped = f"incomplete: {exc.reason}"
        thickness = dcm._float(ds, "SliceThickness")
        if multi:
            item = mf._group(ds, 0, "PixelMeasuresSequence")
            thickness = dcm._float(item, "SliceThickness") if item is not None else thickness
        description = str(dcm._get(ds, "SeriesDescription", "") or "")
        out.append(
            SeriesSummary(
                uid=uid,
                description=description,
                modality=modality,
                series_number=dcm._int(ds, "SeriesNumber"),
                n_images=n_images,
                n_files=len(items),
                thickness_mm=round(thickness, 3) if thickness and thickness > 0 else None,
                extent_mm=extent,
                plane=plane,
                phase=phase_of(description),
                multiframe=multi,
                skipped=skipped,
                files=tuple(str(p) for p, _ in items),
            )
        )
    out.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.uid))
    return out


def _key(s: SeriesSummary) -> tuple[float, float, int]:
    thick = s.thickness_mm if s.thickness_mm else (s.extent_mm / max(s.n_images - 1, 1))
    return (round(thick, 2), -round(s.extent_mm, 1), -s.n_images)


def choose(where: Path, summaries: Sequence[SeriesSummary], *, tie_ok: bool = False) -> Choice:
    """Apply the rule (module docstring) to a study's series; raise one clear line when none qualifies.

    An exact tie raises MultipleSeriesError, or with ``tie_ok`` (the studio's picker) suggests the first."""
    summaries = tuple(summaries)
    candidates = [s for s in summaries if not s.skipped]
    skipped = [s for s in summaries if s.skipped]
    if not candidates:
        ct = [s for s in summaries if s.modality == "CT"]
        if not ct:
            found = ", ".join(sorted({s.modality or "no modality" for s in summaries}))
            raise LoaderError(where, f"folder holds no CT series (found modality {found}); only CT is supported")
        if len(ct) == 1:
            raise LoaderError(where, f"{ct[0].label}: {ct[0].skipped}; nothing to segment")
        why = "; ".join(f"{s.label}: {s.skipped}" for s in ct)
        raise LoaderError(where, f"no series to segment: {why}")
    if len(candidates) == 1 and not skipped:
        return Choice(candidates[0], "", summaries)
    pool, why = candidates, []
    venous = [s for s in candidates if s.phase == "portal venous"]
    if venous and len(venous) < len(candidates):
        pool = venous
        why.append("portal-venous phase by its description")
    if len(pool) > 1:
        longest = max(s.extent_mm for s in pool)
        covering = [s for s in pool if s.extent_mm >= COVERAGE_SHARE * longest]
        covering.sort(key=_key)
        if len(covering) > 1 and _key(covering[0]) == _key(covering[1]):
            tied = [s for s in covering if _key(s) == _key(covering[0])]
            if tie_ok:
                names = ", ".join(s.label for s in tied)
                return Choice(tied[0], f"the rule cannot choose between {names}: choose one", summaries)
            raise MultipleSeriesError(where, [(s.uid, s.description, s.n_images) for s in tied])
        best = covering[0]
        why.append("thinnest complete series covering the most" if len(covering) > 1 or len(pool) > len(covering)
                   else "the only complete series covering the most")
    else:
        best = pool[0]
        if not why:
            why.append("the only axial CT series")
    others = "; ".join(f"{s.label} ({s.skipped})" for s in skipped)
    reason = (
        f"chose {best.label} ({best.details()}) of {len(summaries)} series: {', '.join(why)}"
        + (f"; skipped {others}" if others else "")
    )
    return Choice(best, reason, summaries)
