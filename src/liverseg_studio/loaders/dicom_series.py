"""A folder holding a DICOM CT series (pydicom).

* Every file under the folder (recursively, ``DICOMDIR`` skipped) is read
  header-only; files that are not DICOM images are skipped.
* Files are grouped by SeriesInstanceUID.  A folder holding several series (a
  whole study) is read by the rule of :mod:`liverseg_studio.loaders.study`
  (skip scouts, secondary captures, derived, non-CT and non-axial series;
  prefer portal venous; else the thinnest complete series covering the most),
  and ``meta["series_choice"]`` says which and why in one line.
  ``LoadOptions.series_uid`` (CLI ``--series UID``) names one instead; an
  exact tie raises :class:`~liverseg_studio.core.errors.MultipleSeriesError`.
* A series stored as one multi-frame file (enhanced or legacy-converted CT)
  is read by :mod:`liverseg_studio.loaders.dicom_multiframe`.
* Slices are sorted by ImagePositionPatient projected on the slice normal
  (row x column direction cosines), **not** by file name or InstanceNumber.
  Two slices at the same position, mixed orientations or sizes, and uneven
  gaps (a missing slice) are refused: the affine could not describe them.
* The affine's columns are row cosine x dx, column cosine x dy, the step
  between consecutive slice positions, and the first slice's position, in
  LPS, converted to RAS with ``diag(-1, -1, 1, 1)``.
* ``Volume.meta`` keeps ``files`` (paths in slice order), ``sop_instance_uids``
  (same order), ``series_uid``, ``study_uid`` and ``frame_of_reference_uid``:
  the DICOM SEG exporter needs the source datasets.
* The volume is **lazy** (:mod:`liverseg_studio.core.slices`): its slices are
  read from their files one batch of files at a time, when a consumer asks.
  Loading decodes every file once, one at a time, to refuse broken pixel data
  up front (memory stays one slice), and keeps nothing.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liverseg_studio.core.errors import LoaderError, MultipleSeriesError
from liverseg_studio.core.slices import SliceSource
from liverseg_studio.core.volume import Intensity, Volume
from liverseg_studio.loaders import dicom as dcm
from liverseg_studio.loaders import dicom_multiframe
from liverseg_studio.loaders._common import quiet, check_memory, detect_format, has_extension, looks_like_raw_dicom

NAME = "dicom-series"
#: Stop scanning a folder after this many files (a whole PACS export is not a series).
MAX_FILES = 20000
_SKIP_NAMES = {"dicomdir"}
#: Slice steps may differ from their median by this fraction.
_GAP_TOLERANCE = 0.1


def sniff(path: Path, head: bytes) -> bool:
    """Any folder: this loader gives the precise error for folders without DICOM images."""
    return path.is_dir()


@dataclass
class _Header:
    path: Path
    ds: Any
    series_uid: str
    modality: str
    description: str


def _candidate_files(folder: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            if name.lower() in _SKIP_NAMES or name.startswith("."):
                continue
            files.append(Path(root) / name)
            if len(files) > MAX_FILES:
                raise LoaderError(folder, f"folder holds more than {MAX_FILES} files; choose the series folder itself")
    return files


def _is_dicom_file(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError:
        return False
    if not head:
        return False
    fmt = detect_format(head)
    if fmt == "dicom":
        return True
    if fmt is not None:
        return False
    return looks_like_raw_dicom(head) or has_extension(path, dcm.EXTENSIONS)


def _scan(folder: Path) -> tuple[list[_Header], list[str]]:
    headers: list[_Header] = []
    skipped: list[str] = []
    for f in _candidate_files(folder):
        if not _is_dicom_file(f):
            continue
        try:
            ds = dcm.read_dataset(f, stop_before_pixels=True)
        except LoaderError as exc:
            skipped.append(f"{f.name}: {exc.reason}")
            continue
        if dcm._get(ds, "Rows") is None:  # not an image (report, DICOMDIR, presentation state ...)
            skipped.append(f"{f.name}: not an image")
            continue
        uid = str(dcm._get(ds, "SeriesInstanceUID", "") or "")
        headers.append(
            _Header(
                path=f,
                ds=ds,
                series_uid=uid,
                modality=str(dcm._get(ds, "Modality", "") or "").strip().upper(),
                description=str(dcm._get(ds, "SeriesDescription", "") or ""),
            )
        )
    return headers, skipped


# -- series discovery and choice (issue 28: loaders/study.py holds the rule) ------------------
def _groups(headers: list[_Header]) -> dict[str, list[_Header]]:
    groups: dict[str, list[_Header]] = defaultdict(list)
    for h in headers:
        groups[h.series_uid].append(h)
    return dict(groups)


def study_choice(folder: Path, headers: list[_Header], *, tie_ok: bool = False) -> "Any":
    """The rule's :class:`~liverseg_studio.loaders.study.Choice` for a folder's headers."""
    from liverseg_studio.loaders import study

    groups = _groups(headers)
    summaries = study.summarise(folder, {uid: [(h.path, h.ds) for h in hs] for uid, hs in groups.items()})
    return study.choose(folder, summaries, tie_ok=tie_ok)


def scan_study(folder: Path) -> "Any":
    """Header-only scan of a study folder: the rule's choice (the first of a tie) with every series' summary
    (studio picker, ``--all-series``)."""
    headers, skipped = _scan(Path(folder))
    if not headers:
        raise LoaderError(folder, "folder holds no DICOM images")
    return study_choice(Path(folder), headers, tie_ok=True)


def _choose_series(folder: Path, headers: list[_Header], series_uid: str | None) -> tuple[list[_Header], str]:
    """The headers of the series to read, and the one-line reason when the rule chose among several."""
    groups = _groups(headers)
    if series_uid is not None:
        if series_uid not in groups:
            known = ", ".join(sorted(groups)) or "none"
            raise LoaderError(folder, f"no series {series_uid!r} in this folder (found: {known})")
        return groups[series_uid], ""
    if len(groups) == 1:
        hs = next(iter(groups.values()))
        if not any(h.modality == "CT" for h in hs):
            found = ", ".join(sorted({h.modality or "no modality" for h in headers}))
            raise LoaderError(folder, f"folder holds no CT series (found modality {found}); only CT is supported")
        return hs, ""
    choice = study_choice(folder, headers)
    return groups[choice.chosen.uid], choice.reason


def _geometry(folder: Path, hs: list[_Header]) -> tuple[list[_Header], np.ndarray, bool, list[str]]:
    """Sort ``hs`` along the slice normal; return (sorted, affine, spacing_known, warnings)."""
    first = hs[0].ds
    orient = dcm.orientation(first)
    spacing = dcm.pixel_spacing(first)
    for h in hs[1:]:
        o = dcm.orientation(h.ds)
        if (o is None) != (orient is None) or (
            o is not None and orient is not None and (np.abs(o[0] - orient[0]).max() > 1e-3 or np.abs(o[1] - orient[1]).max() > 1e-3)
        ):
            raise LoaderError(h.path, "slices of the series have different ImageOrientationPatient")
        s = dcm.pixel_spacing(h.ds)
        if (s is None) != (spacing is None) or (s is not None and spacing is not None and np.abs(np.subtract(s, spacing)).max() > 1e-3):
            raise LoaderError(h.path, "slices of the series have different PixelSpacing")
    positions = [dcm._floats(h.ds, "ImagePositionPatient", 3) for h in hs]
    thickness = dcm._float(first, "SpacingBetweenSlices") or dcm._float(first, "SliceThickness") or 1.0
    order, affine, known, warnings = stack_geometry(
        folder, positions, [h.path.name for h in hs], orient, spacing, thickness,
        tilt_deg=dcm._float(first, "GantryDetectorTilt"),
    )
    return [hs[i] for i in order], affine, known, warnings


#: A slice stack whose step leaves its normal by more than this (degrees) is a gantry tilt.
MAX_TILT_DEG = 1.0


def stack_geometry(
    where: Path,
    positions: list[list[float] | None],
    names: list[str],
    orient: tuple[np.ndarray, np.ndarray] | None,
    spacing: tuple[float, float] | None,
    thickness: float,
    *,
    tilt_deg: float | None = None,
    what: str = "slices",
) -> tuple[list[int], np.ndarray, bool, list[str]]:
    """Order a stack of images (files of a series, or frames of a multi-frame file) along the slice
    normal: ``(order, affine, spacing_known, warnings)``.

    Refused in one line: images without a position, two at one position, uneven gaps (a missing
    slice or a mixed series), positions off a line, and a gantry tilt (the step leaves the normal by
    more than :data:`MAX_TILT_DEG`): a sheared volume would be segmented as if it were axial.
    """
    warnings: list[str] = []
    n = len(positions)
    missing = [name for name, p in zip(names, positions) if p is None]
    if orient is None:
        if n > 1:
            raise LoaderError(where, f"no valid ImageOrientationPatient; cannot order the {what}")
        row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    else:
        row, col = orient
    normal = np.cross(row, col)
    if missing and n > 1:
        raise LoaderError(where, f"{len(missing)} of {n} {what} have no valid ImagePositionPatient (e.g. {missing[0]})")
    if tilt_deg is not None and abs(tilt_deg) > MAX_TILT_DEG:
        raise LoaderError(
            where,
            f"gantry tilt of {tilt_deg:g} degrees (GantryDetectorTilt): tilted slices are not supported; "
            "export the series reconstructed without tilt",
        )
    if n == 1:
        origin = np.array(positions[0]) if positions[0] is not None else np.zeros(3)
        thickness = thickness if 0 < thickness < 1e4 else 1.0
        step = normal * thickness
        order = [0]
    else:
        pos = np.array(positions, dtype=np.float64)
        along = pos @ normal
        order = [int(i) for i in np.argsort(along, kind="stable")]
        pos, along = pos[order], along[order]
        gaps = np.diff(along)
        if np.min(gaps) < 1e-3:
            i = int(np.argmin(gaps))
            raise LoaderError(
                where,
                f"two {what} lie at the same position ({along[i]:.2f} mm along the normal: "
                f"{names[order[i]]}, {names[order[i + 1]]}); several acquisitions in one series?",
            )
        median = float(np.median(gaps))
        if np.max(np.abs(gaps - median)) > _GAP_TOLERANCE * median:
            raise LoaderError(
                where,
                f"uneven slice spacing ({gaps.min():.2f} to {gaps.max():.2f} mm between neighbours): "
                "missing slices or a mixed series",
            )
        step = (pos[-1] - pos[0]) / (n - 1)
        cos = abs(float(np.dot(step / np.linalg.norm(step), normal)))
        angle = float(np.degrees(np.arccos(min(cos, 1.0))))
        if angle > MAX_TILT_DEG:
            raise LoaderError(
                where,
                f"gantry tilt or sheared slice stack: the slices step {angle:.1f} degrees off their normal; "
                "tilted slices are not supported (the volume would be distorted): export the series "
                "reconstructed without tilt",
            )
        # in-plane drift of positions (inconsistent headers)
        drift = np.linalg.norm(pos - (pos[0] + np.outer(np.arange(n), step)), axis=1).max()
        if drift > max(0.1 * median, 0.5):
            raise LoaderError(where, f"positions of the {what} do not lie on a line (off by up to {drift:.1f} mm)")
        origin = pos[0]
    if spacing is None:
        warnings.append("no valid PixelSpacing: voxel size unknown")
        return order, np.eye(4), False, warnings
    return order, dcm.ras_affine(row, col, spacing, origin, step), True, warnings


class SeriesSlices(SliceSource):
    """Slices of a DICOM series, each read and decoded from its own file (HU float32)."""

    def __init__(self, folder: Path, files: list[Path], rows: int, cols: int) -> None:
        super().__init__()
        self.folder, self.files, self.rows, self.cols = folder, list(files), int(rows), int(cols)
        self.shape = (len(self.files), self.rows, self.cols)
        self.dtype = np.dtype(np.float32)
        self.description = f"{folder} ({len(self.files)} DICOM files)"

    def read_one(self, path: Path) -> np.ndarray:
        ds = dcm.read_dataset(path)
        dcm.check_ct_image(path, ds)
        return dcm.decode_hu(path, ds, self.rows, self.cols)

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.rows, self.cols), dtype=np.float32)
        for k in range(start, stop):
            out[k - start] = self.read_one(self.files[k])
        return out


@quiet
def load(path: Path, options) -> Volume:
    """Read the CT series in folder ``path`` as an HU :class:`Volume` (see the module docstring)."""
    folder = Path(path)
    if not folder.is_dir():
        raise LoaderError(folder, "not a folder")
    headers, skipped = _scan(folder)
    if not headers:
        detail = f" ({len(skipped)} unreadable: {skipped[0]})" if skipped else ""
        raise LoaderError(folder, f"folder holds no DICOM images{detail}")
    chosen, reason = _choose_series(folder, headers, options.series_uid)
    if any(dicom_multiframe.is_multiframe(h.ds) for h in chosen):
        if len(chosen) > 1:
            raise LoaderError(folder, f"series holds {len(chosen)} multi-frame files; open one of them")
        extra = {"series_choice": reason} if reason else {}
        return dicom_multiframe.load_dataset(chosen[0].path, chosen[0].ds, options, extra_meta=extra)
    for h in chosen:
        dcm.check_ct_image(h.path, h.ds, need_pixels=False)
    rows, cols = int(dcm._int(chosen[0].ds, "Rows")), int(dcm._int(chosen[0].ds, "Columns"))
    for h in chosen[1:]:
        if (dcm._int(h.ds, "Rows"), dcm._int(h.ds, "Columns")) != (rows, cols):
            raise LoaderError(h.path, f"slice size differs from the series ({rows}x{cols})")
    ordered, affine, spacing_known, warnings = _geometry(folder, chosen)
    n = len(ordered)
    check_memory(folder, n * rows * cols * 4 * 2, options.max_bytes, what="decoded series")
    source = SeriesSlices(folder, [h.path for h in ordered], rows, cols)
    for h in ordered:  # refuse broken pixel data now, one slice in memory at a time
        source.read_one(h.path)
    meta: dict[str, Any] = dcm.series_meta(ordered[0].ds)
    meta["files"] = [str(h.path) for h in ordered]
    meta["sop_instance_uids"] = [str(dcm._get(h.ds, "SOPInstanceUID", "")) for h in ordered]
    meta["n_files"] = n
    if reason:
        meta["series_choice"] = reason
    if skipped:
        meta["skipped_files"] = len(skipped)
    if warnings:
        meta["warning"] = "; ".join(warnings)
    meta["lazy"] = "slices read from their files per batch"
    return Volume(
        array=source,
        affine=affine,
        intensity=Intensity.HU,
        source=str(folder),
        loader=NAME,
        spacing_known=spacing_known,
        meta=meta,
    )
