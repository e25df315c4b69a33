"""Mend the headers of real-world DICOM source images before a DICOM SEG references them.

Archives hold series that highdicom refuses although nothing essential is
missing (issue 14): an empty ``SpecificCharacterSet``, empty Study/Series/SOP
Class UIDs (anonymised exports), no ``FrameOfReferenceUID`` (old GDCM exports),
absent type-2 patient/study attributes, text values padded with NUL bytes.
:func:`mend_sources` works on copies of the headers (the input files are never
touched) and returns what it changed, one sentence each, for the warning and
the JSON report.  What cannot be mended -- no pixel geometry: highdicom needs it
for CT/MR images, whose IODs require a frame of reference -- raises one clear
:class:`LiversegError` line.

Generated UIDs are derived from what the series does have (the SOP Instance
UIDs, else the file contents), so running twice gives the same UIDs.
"""

from __future__ import annotations

import copy
import hashlib
from collections import Counter
from typing import Any, Sequence

from liverseg_studio.core.errors import LiversegError

#: What an empty or unknown Specific Character Set becomes: Latin-1, a superset of
#: the default repertoire (ASCII) and what old scanners without the tag wrote.
DEFAULT_CHARACTER_SET = "ISO_IR 100"

#: The source image's SOP Class when its SOPClassUID is empty, by Modality.
_SOP_CLASS_BY_MODALITY = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "PT": "1.2.840.10008.5.1.4.1.1.128",  # PET Image Storage
}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

#: Type-2 attributes highdicom copies from the first source (an absent one becomes empty).
_TYPE2_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
#: Text VRs whose values are cleaned of NUL padding and surrounding blanks.
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI"}
#: Enumerated values of Patient's Sex (anything else becomes empty, type 2).
_PATIENT_SEX = {"M", "F", "O"}


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        value = "\\".join(str(v) for v in value)
    return str(value).replace("\x00", "").strip()


def _uid_from(*parts: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["liverseg-studio", *parts]))


def _valid_uid(text: str) -> bool:
    from pydicom.uid import UID

    return bool(text) and UID(text).is_valid


def _known_character_sets() -> set[str]:
    try:
        from highdicom.enum import SpecificCharacterSetValues

        known = {v.value for v in SpecificCharacterSetValues}
    except Exception:  # noqa: BLE001 - highdicom without the enum: pydicom's table
        from pydicom.charset import python_encoding

        known = set(python_encoding)
    return known | {"ISO 2022 IR 6", "ISO_IR 6"}


def _series_value(sources: Sequence[Any], keyword: str) -> str:
    """The most common valid value of a series-level UID among the sources ('' if none)."""
    values = Counter(v for v in (_text(ds, keyword) for ds in sources) if _valid_uid(v))
    return values.most_common(1)[0][0] if values else ""


def _fingerprint(sources: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for ds in sources:
        uid = _text(ds, "SOPInstanceUID")
        h.update((uid or str(getattr(ds, "filename", "") or "")).encode("utf-8", "replace"))
        h.update(_text(ds, "ImagePositionPatient").encode())
    return h.hexdigest()


def _clean_text_values(ds: Any) -> bool:
    """Strip NUL padding and blanks from top-level text values; True if anything changed."""
    changed = False
    for elem in list(ds):
        if elem.VR not in _TEXT_VRS or elem.VM == 0 or elem.tag.group in (0x0002, 0x7FE0):
            continue
        value = elem.value
        if isinstance(value, (str, bytes)):
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            clean = text.replace("\x00", "").strip()
            if clean != text:
                elem.value = clean
                changed = True
        elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            items = [str(v) for v in value]
            clean_items = [v.replace("\x00", "").strip() for v in items]
            if clean_items != items:
                elem.value = clean_items
                changed = True
    return changed


def has_pixel_geometry(ds: Any) -> bool:
    """Whether ``ds`` says where its pixels are: position, orientation and pixel spacing."""
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:  # enhanced CT: per frame, in functional groups
        from liverseg_studio.segment.seg_multiframe import has_frame_geometry

        return has_frame_geometry(ds)
    try:
        return (
            len(ds.ImagePositionPatient) == 3
            and len(ds.ImageOrientationPatient) == 6
            and len(ds.PixelSpacing) == 2
            and all(float(v) > 0 for v in ds.PixelSpacing)
        )
    except (AttributeError, TypeError, ValueError):
        return False


def mend_sources(
    sources: Sequence[Any], *, slice_thickness_mm: float | None = None, label: str = "source"
) -> tuple[list[Any], list[str]]:
    """Copies of the source headers that highdicom and dciodvfy accept, and what was changed.

    ``slice_thickness_mm`` (the volume's slice spacing) fills a missing
    SliceThickness.  Raises :class:`LiversegError` (one line, naming ``label``) when the
    sources cannot be placed: images without pixel geometry.
    """
    if not sources:
        raise LiversegError(f"{label}: no DICOM source images to reference in a DICOM SEG")
    mended = [copy.deepcopy(ds) for ds in sources]
    notes: list[str] = []

    # -- geometry: the one thing that cannot be invented
    geometry = [has_pixel_geometry(ds) for ds in mended]
    if not all(geometry):
        missing = len(geometry) - sum(geometry)
        raise LiversegError(
            f"{label}: {missing} of {len(mended)} source image(s) have no pixel geometry "
            "(ImagePositionPatient, ImageOrientationPatient, PixelSpacing): a DICOM SEG cannot place its frames"
        )

    if len(mended) == 1 and int(getattr(mended[0], "NumberOfFrames", 1) or 1) > 1:  # functional groups
        from liverseg_studio.segment.seg_multiframe import shorten_decimal_strings

        if shorten_decimal_strings(mended[0]):
            notes.append("decimal strings longer than 16 characters shortened in the multi-frame source's header")

    # -- character set
    known = _known_character_sets()
    bad_charsets = set()
    for ds in mended:
        if "SpecificCharacterSet" not in ds:
            continue
        raw = ds.SpecificCharacterSet
        values = [raw] if isinstance(raw, str) else list(raw)
        values = [str(v).replace("\x00", "").strip() for v in values]
        if not any(values) or any(v and v not in known for v in values):
            bad_charsets.add("\\".join(values))
            ds.SpecificCharacterSet = DEFAULT_CHARACTER_SET
    if bad_charsets:
        shown = ", ".join(repr(v) for v in sorted(bad_charsets))
        notes.append(f"SpecificCharacterSet {shown} is empty or unknown: defaulted to {DEFAULT_CHARACTER_SET} (Latin-1)")

    # -- text values (NUL padding, as old exporters write it) and type-2 attributes highdicom copies
    padded = sum(_clean_text_values(ds) for ds in mended)
    if padded:
        notes.append(f"text values padded with NUL bytes or blanks cleaned in {padded} source header(s)")
    added: set[str] = set()
    for ds in mended:
        for keyword in _TYPE2_COPIED:
            if keyword not in ds:
                setattr(ds, keyword, "")
                added.add(keyword)
        if _text(ds, "PatientSex") not in _PATIENT_SEX | {""}:
            ds.PatientSex = ""
            added.add("PatientSex (invalid value)")
    if added:
        notes.append(f"absent type-2 attributes left empty: {', '.join(sorted(added))}")

    # -- UIDs: series-level ones shared by all sources, generated from the series when missing
    fingerprint = _fingerprint(mended)
    for keyword, what in (
        ("StudyInstanceUID", "Study Instance UID"),
        ("SeriesInstanceUID", "Series Instance UID"),
        ("FrameOfReferenceUID", "Frame of Reference UID"),
    ):
        value = _series_value(mended, keyword)
        if not value:
            value = _uid_from(keyword, fingerprint)
            notes.append(f"the source has no {what}: generated {value}")
        elif any(_text(ds, keyword) != value for ds in mended):
            notes.append(f"the source images disagree on or lack the {what}: used {value}")
        for ds in mended:
            setattr(ds, keyword, value)
    for ds in mended:
        if "PositionReferenceIndicator" not in ds:
            ds.PositionReferenceIndicator = ""

    generated_sop = 0
    for ds in mended:
        if not _valid_uid(_text(ds, "SOPInstanceUID")):
            ds.SOPInstanceUID = _uid_from("SOPInstanceUID", fingerprint, str(getattr(ds, "filename", "")))
            generated_sop += 1
    if generated_sop:
        notes.append(f"{generated_sop} source image(s) have no SOP Instance UID: generated (they cannot be looked up)")

    inferred: Counter[str] = Counter()
    for ds in mended:
        if _valid_uid(_text(ds, "SOPClassUID")):
            continue
        meta = getattr(ds, "file_meta", None)
        meta_class = _text(meta, "MediaStorageSOPClassUID") if meta is not None else ""
        if _valid_uid(meta_class):
            ds.SOPClassUID = meta_class
            inferred["the file meta information"] += 1
        else:
            modality = _text(ds, "Modality").upper()
            ds.SOPClassUID = _SOP_CLASS_BY_MODALITY.get(modality, _SECONDARY_CAPTURE)
            inferred[f"Modality {modality or '(empty)'}"] += 1
    if inferred:
        how = ", ".join(f"{n} from {src}" for src, n in inferred.items())
        notes.append(f"the source has no SOP Class UID: taken {how}")

    if not _text(mended[0], "Modality"):
        for ds in mended:
            ds.Modality = "OT"
        notes.append("the source has no Modality: OT (other) assumed")

    if any("SliceThickness" not in ds or not _text(ds, "SliceThickness") for ds in mended):
        if slice_thickness_mm and slice_thickness_mm > 0:
            for ds in mended:
                if "SliceThickness" not in ds or not _text(ds, "SliceThickness"):
                    ds.SliceThickness = f"{slice_thickness_mm:.6g}"
            notes.append(f"the source has no Slice Thickness: the slice spacing {slice_thickness_mm:.6g} mm used")
    return mended, notes
