"""A single DICOM CT image (pydicom).

Voxels are Hounsfield units: ``stored * RescaleSlope + RescaleIntercept``.
The affine follows from ImageOrientationPatient, ImagePositionPatient,
PixelSpacing and SliceThickness, built in LPS as DICOM defines it and
converted to RAS (``diag(-1, -1, 1, 1) @ lps``, DEVELOPERS.md).  Without
PixelSpacing the pixel size is unknown (``spacing_known=False``, identity
affine).

Refused with a :class:`LoaderError` naming the file and the reason: files
pydicom cannot parse, non-CT modalities, no pixel data, colour images,
unsupported bit depths, pixel data shorter than the header promises,
compressed transfer syntaxes without an installed decoder, and images whose
decoded size exceeds ``LoadOptions.max_bytes``.  Compressed pixel data is
decoded by pydicom's plugins (pylibjpeg with libjpeg, openjpeg and rle;
pyjpegls).  A multi-frame file (enhanced or legacy-converted CT) is read by
:mod:`liverseg_studio.loaders.dicom_multiframe`.

The helpers here are shared with :mod:`liverseg_studio.loaders.dicom_series`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.volume import Intensity, Volume
from liverseg_studio.loaders._common import (
    quiet,
    check_memory,
    check_side,
    human_bytes,
    looks_like_raw_dicom,
    require_nonempty,
    sniff_by,
)

NAME = "dicom"
EXTENSIONS = (".dcm", ".dicom", ".ima")

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def sniff(path: Path, head: bytes) -> bool:
    """``DICM`` at offset 128, a preamble-less DICOM start, or a DICOM extension."""
    if sniff_by(path, head, ("dicom",), EXTENSIONS):
        return True
    from liverseg_studio.loaders._common import detect_format

    return detect_format(head) is None and looks_like_raw_dicom(head)


# -- reading ---------------------------------------------------------------------
def read_dataset(path: Path, *, stop_before_pixels: bool = False) -> Any:
    """``pydicom.dcmread`` with every parse failure turned into :class:`LoaderError`."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(path), force=True, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:
        raise LoaderError(path, f"not a DICOM file: {exc}") from None
    except (EOFError, OSError) as exc:
        raise LoaderError(path, f"DICOM file is truncated or unreadable: {exc}") from None
    except MemoryError:
        raise LoaderError(path, "DICOM header claims an element too large to read") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt input
        raise LoaderError(path, f"corrupt DICOM file: {type(exc).__name__}: {exc}") from None


def _get(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword)`` that never raises on a corrupt element value."""
    try:
        value = ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - a malformed value reads as absent
        return default
    return default if value is None or value == "" else value


def _int(ds: Any, keyword: str, default: int | None = None) -> int | None:
    value = _get(ds, keyword)
    if value is None:
        return default
    try:
        if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
            value = list(value)[0]
        return int(value)
    except (TypeError, ValueError, IndexError):
        return default


def _floats(ds: Any, keyword: str, n: int) -> list[float] | None:
    """Exactly ``n`` finite floats from a multi-valued element, else None."""
    value = _get(ds, keyword)
    if value is None:
        return None
    try:
        items = [float(v) for v in (value if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)) else [value])]
    except (TypeError, ValueError):
        return None
    if len(items) != n or not all(math.isfinite(v) for v in items):
        return None
    return items


def _float(ds: Any, keyword: str, default: float | None = None) -> float | None:
    vals = _floats(ds, keyword, 1)
    return vals[0] if vals else default


def has_pixel_data(ds: Any) -> bool:
    return any(kw in ds for kw in _PIXEL_KEYWORDS)


def check_ct_image(path: Path, ds: Any, *, need_pixels: bool = True, allow_frames: bool = False) -> tuple[int, int]:
    """Validate that ``ds`` is a single-frame (or, with ``allow_frames``, multi-frame) grey CT image;
    returns (rows, columns)."""
    modality = str(_get(ds, "Modality", "") or "").strip().upper()
    if not modality:
        raise LoaderError(path, "DICOM file has no Modality; only CT images are supported")
    if modality != "CT":
        raise LoaderError(path, f"DICOM modality is {modality}, not CT; only CT images are supported")
    if need_pixels and not has_pixel_data(ds):
        raise LoaderError(path, "DICOM file has no pixel data")
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    if rows is None or cols is None:
        raise LoaderError(path, "DICOM image has no Rows/Columns")
    check_side(path, rows, cols)
    spp = _int(ds, "SamplesPerPixel", 1)
    if spp != 1:
        raise LoaderError(path, f"DICOM image has {spp} samples per pixel; CT images are grey (1 sample)")
    frames = _int(ds, "NumberOfFrames", 1)
    if frames is None or frames < 1:
        raise LoaderError(path, "DICOM NumberOfFrames is invalid")
    if frames > 1 and not allow_frames:
        raise LoaderError(path, f"multi-frame DICOM ({frames} frames) found where a single frame was expected")
    bits = _int(ds, "BitsAllocated")
    if bits not in (8, 16, 32):
        raise LoaderError(path, f"unsupported BitsAllocated={bits}; expected 8, 16 or 32")
    stored = _int(ds, "BitsStored", bits)
    if stored is None or not 1 <= stored <= bits:
        raise LoaderError(path, f"inconsistent BitsStored={stored} for BitsAllocated={bits}")
    photometric = str(_get(ds, "PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise LoaderError(path, f"DICOM image is {photometric}; CT images are MONOCHROME1/2")
    return rows, cols


def _transfer_syntax(ds: Any) -> Any:
    meta = getattr(ds, "file_meta", None)
    return getattr(meta, "TransferSyntaxUID", None) if meta is not None else None


def decode_hu(path: Path, ds: Any, rows: int, cols: int) -> np.ndarray:
    """The image in HU as float32 (rows, cols); refuses truncated or undecodable pixel data."""
    bits = int(_int(ds, "BitsAllocated") or 16)
    ts = _transfer_syntax(ds)
    try:
        compressed = bool(ts is not None and ts.is_compressed)
    except Exception:  # noqa: BLE001 - not a transfer syntax UID (pydicom raises ValueError)
        raise LoaderError(path, f"unknown transfer syntax {str(ts)[:64]!r}") from None
    if "PixelData" in ds and not compressed:
        try:
            raw_len = len(ds.PixelData)
        except Exception as exc:  # noqa: BLE001
            raise LoaderError(path, f"unreadable pixel data: {exc}") from None
        expected = rows * cols * bits // 8
        if raw_len < expected:
            raise LoaderError(
                path, f"pixel data is truncated: {human_bytes(raw_len)}, the header promises {human_bytes(expected)}"
            )
    try:
        arr = ds.pixel_array
    except MemoryError:
        raise LoaderError(path, "not enough memory to decode the pixel data") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise RuntimeError, NotImplementedError, ValueError ...
        if compressed:
            name = getattr(ts, "name", str(ts))
            raise LoaderError(
                path,
                f"pixel data is compressed ({name}) and could not be decoded: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''} (install pylibjpeg / python-gdcm, or export "
                "the series uncompressed)",
            ) from None
        raise LoaderError(path, f"cannot decode pixel data: {type(exc).__name__}: {exc}") from None
    arr = np.asarray(arr)
    if arr.shape != (rows, cols):
        raise LoaderError(path, f"decoded pixel data has shape {arr.shape}, expected ({rows}, {cols})")
    if arr.dtype.kind not in "iuf":
        raise LoaderError(path, f"unsupported pixel type {arr.dtype}")
    slope = _float(ds, "RescaleSlope", 1.0)
    intercept = _float(ds, "RescaleIntercept", 0.0)
    if slope is None or intercept is None or slope == 0.0 or abs(slope) > 1e6 or abs(intercept) > 1e9:
        raise LoaderError(path, f"invalid rescale: slope {slope!r}, intercept {intercept!r}")
    hu = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    if not np.all(np.isfinite(hu)):
        raise LoaderError(path, "pixel values are not finite after rescale")
    return hu


def orientation(ds: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Unit row and column direction cosines (LPS) from ImageOrientationPatient, or None if absent/invalid."""
    iop = _floats(ds, "ImageOrientationPatient", 6)
    if iop is None:
        return None
    row, col = np.array(iop[:3]), np.array(iop[3:])
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if nr < 1e-3 or nc < 1e-3:
        return None
    row, col = row / nr, col / nc
    if abs(float(row @ col)) > 1e-2:
        return None
    return row, col


def pixel_spacing(ds: Any) -> tuple[float, float] | None:
    """(row spacing dy, column spacing dx) in mm, or None if absent/invalid."""
    ps = _floats(ds, "PixelSpacing", 2)
    if ps is None or ps[0] <= 0 or ps[1] <= 0 or max(ps) > 1e4:
        return None
    return ps[0], ps[1]


def ras_affine(
    row: np.ndarray, col: np.ndarray, spacing_yx: tuple[float, float], origin_lps: np.ndarray, slice_step_lps: np.ndarray
) -> np.ndarray:
    """RAS affine mapping (x, y, z, 1) for DICOM geometry given in LPS."""
    dy, dx = spacing_yx
    lps = np.eye(4)
    lps[:3, 0] = row * dx
    lps[:3, 1] = col * dy
    lps[:3, 2] = slice_step_lps
    lps[:3, 3] = origin_lps
    return LPS_TO_RAS @ lps


def series_meta(ds: Any) -> dict[str, Any]:
    """Identifying attributes kept in ``Volume.meta`` (strings only)."""
    out: dict[str, Any] = {}
    for key, kw in (
        ("series_uid", "SeriesInstanceUID"),
        ("study_uid", "StudyInstanceUID"),
        ("frame_of_reference_uid", "FrameOfReferenceUID"),
        ("series_description", "SeriesDescription"),
        ("modality", "Modality"),
    ):
        value = _get(ds, kw)
        if value is not None:
            out[key] = str(value)
    return out


@quiet
def load(path: Path, options) -> Volume:
    """Read one single-frame CT image as a one-slice HU :class:`Volume`."""
    path = Path(path)
    size = require_nonempty(path)
    check_memory(path, size, max(options.max_bytes, 1), what="DICOM file")
    header = read_dataset(path, stop_before_pixels=True)
    from liverseg_studio.loaders import dicom_multiframe

    if dicom_multiframe.is_multiframe(header):  # enhanced / legacy-converted CT: the whole series in one file
        return dicom_multiframe.load_dataset(path, header, options)
    ds = read_dataset(path)
    rows, cols = check_ct_image(path, ds)
    check_memory(path, rows * cols * 8, options.max_bytes)
    hu = decode_hu(path, ds, rows, cols)
    orient = orientation(ds)
    spacing = pixel_spacing(ds)
    meta: dict[str, Any] = series_meta(ds)
    meta["files"] = [str(path)]
    sop = _get(ds, "SOPInstanceUID")
    meta["sop_instance_uids"] = [str(sop)] if sop is not None else []
    if spacing is None:
        affine, spacing_known = np.eye(4), False
        meta["warning"] = "no valid PixelSpacing: pixel size unknown"
    else:
        if orient is None:
            row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
            if _get(ds, "ImageOrientationPatient") is not None:
                meta["warning"] = "invalid ImageOrientationPatient: assumed axial"
        else:
            row, col = orient
        ipp = _floats(ds, "ImagePositionPatient", 3)
        origin = np.array(ipp) if ipp is not None else np.zeros(3)
        thickness = _float(ds, "SpacingBetweenSlices") or _float(ds, "SliceThickness") or 1.0
        if not 0 < thickness < 1e4:
            thickness = 1.0
        affine = ras_affine(row, col, spacing, origin, np.cross(row, col) * thickness)
        spacing_known = True
    return Volume(
        array=hu[None],
        affine=affine,
        intensity=Intensity.HU,
        source=str(path),
        loader=NAME,
        spacing_known=spacing_known,
        meta=meta,
    )
