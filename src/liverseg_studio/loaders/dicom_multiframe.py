"""Enhanced and legacy-converted multi-frame CT: one DICOM file holding the whole series (issue 28).

Newer scanners store a CT series as one *Enhanced CT Image* file, and archives convert old
series into *Legacy Converted Enhanced CT Image* files (highdicom writes them).  Their geometry
is in functional groups, per frame or shared by all frames:

* Plane Position (``ImagePositionPatient``) per frame,
* Plane Orientation (``ImageOrientationPatient``), Pixel Measures (``PixelSpacing``,
  ``SliceThickness``, ``SpacingBetweenSlices``) and Pixel Value Transformation (rescale),
  per frame or shared.

The frames are sorted along the slice normal and checked exactly as a folder of single-frame
files is (:func:`liverseg_studio.loaders.dicom_series.stack_geometry`: one position each, even
spacing, no gantry tilt).  Frames are decoded one at a time through pydicom's pixel-data
plugins, so every transfer syntax a single-frame file may use works here too.  The volume is
lazy: frames are read from the file per batch.

``Volume.meta`` keeps ``files`` (the one file), ``sop_instance_uids`` (its one UID), and
``frame_numbers``: the 1-based frame of the file that each volume slice shows (the DICOM SEG
exporter references the frames through highdicom).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.slices import SliceSource
from liverseg_studio.core.volume import Intensity, Volume
from liverseg_studio.loaders import dicom as dcm
from liverseg_studio.loaders._common import check_memory

NAME = "dicom-multiframe"


def n_frames(ds: Any) -> int:
    """NumberOfFrames (1 when absent)."""
    return int(dcm._int(ds, "NumberOfFrames", 1) or 1)


def is_multiframe(ds: Any) -> bool:
    return n_frames(ds) > 1


def _group(ds: Any, frame: int, sequence: str) -> Any | None:
    """The first item of functional group ``sequence`` for ``frame`` (0-based): per frame, else shared."""
    for where, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        try:
            groups = ds.get(where)
            if groups is None or len(groups) <= index:
                continue
            seq = groups[index].get(sequence)
            if seq:
                return seq[0]
        except Exception:  # noqa: BLE001 - a malformed sequence reads as absent
            continue
    return None


def frame_position(ds: Any, frame: int) -> list[float] | None:
    """ImagePositionPatient (LPS mm) of ``frame`` (0-based) from its Plane Position group."""
    item = _group(ds, frame, "PlanePositionSequence")
    return dcm._floats(item, "ImagePositionPatient", 3) if item is not None else None


def frame_orientation(ds: Any, frame: int) -> tuple[np.ndarray, np.ndarray] | None:
    item = _group(ds, frame, "PlaneOrientationSequence")
    return dcm.orientation(item) if item is not None else dcm.orientation(ds)


def frame_spacing(ds: Any, frame: int) -> tuple[float, float] | None:
    item = _group(ds, frame, "PixelMeasuresSequence")
    return dcm.pixel_spacing(item) if item is not None else dcm.pixel_spacing(ds)


def frame_rescale(ds: Any, frame: int) -> tuple[float, float]:
    item = _group(ds, frame, "PixelValueTransformationSequence")
    src = item if item is not None else ds
    return dcm._float(src, "RescaleSlope", 1.0), dcm._float(src, "RescaleIntercept", 0.0)


def _thickness(ds: Any) -> float:
    item = _group(ds, 0, "PixelMeasuresSequence")
    for src in (item, ds):
        if src is None:
            continue
        value = dcm._float(src, "SpacingBetweenSlices") or dcm._float(src, "SliceThickness")
        if value:
            return value
    return 1.0


def _tilt(ds: Any) -> float | None:
    item = _group(ds, 0, "CTAcquisitionDetailsSequence")
    value = dcm._float(item, "GantryDetectorTilt") if item is not None else None
    return value if value is not None else dcm._float(ds, "GantryDetectorTilt")


def frame_geometry(path: Path, ds: Any) -> tuple[list[int], np.ndarray, bool, list[str]]:
    """``(order, affine, spacing_known, warnings)``: ``order[k]`` is the 0-based frame of volume slice k."""
    from liverseg_studio.loaders.dicom_series import stack_geometry

    n = n_frames(ds)
    orient = frame_orientation(ds, 0)
    spacing = frame_spacing(ds, 0)
    for f in range(1, n):
        o = frame_orientation(ds, f)
        if (o is None) != (orient is None) or (
            o is not None and orient is not None and max(np.abs(o[0] - orient[0]).max(), np.abs(o[1] - orient[1]).max()) > 1e-3
        ):
            raise LoaderError(path, f"frame {f + 1} has another ImageOrientationPatient than frame 1")
        s = frame_spacing(ds, f)
        if (s is None) != (spacing is None) or (s is not None and spacing is not None and np.abs(np.subtract(s, spacing)).max() > 1e-3):
            raise LoaderError(path, f"frame {f + 1} has another PixelSpacing than frame 1")
    positions = [frame_position(ds, f) for f in range(n)]
    return stack_geometry(
        path, positions, [f"frame {f + 1}" for f in range(n)], orient, spacing, _thickness(ds), tilt_deg=_tilt(ds), what="frames"
    )


class FrameSlices(SliceSource):
    """Frames of one multi-frame file in volume order, decoded one at a time (HU float32)."""

    def __init__(self, path: Path, order: list[int], rescale: list[tuple[float, float]], rows: int, cols: int) -> None:
        super().__init__()
        self.path, self.order, self.rescale = Path(path), list(order), list(rescale)
        self.rows, self.cols = int(rows), int(cols)
        self.shape = (len(self.order), self.rows, self.cols)
        self.dtype = np.dtype(np.float32)
        self.description = f"{path} ({len(self.order)} frames)"

    def _decode(self, fh: Any, frame: int) -> np.ndarray:
        import pydicom.pixels

        try:
            arr = np.asarray(pydicom.pixels.pixel_array(fh, index=frame))
        except MemoryError:
            raise LoaderError(self.path, "not enough memory to decode the pixel data") from None
        except Exception as exc:  # noqa: BLE001 - decoders raise many types
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise LoaderError(self.path, f"cannot decode frame {frame + 1}: {type(exc).__name__}: {first}") from None
        if arr.shape != (self.rows, self.cols):
            raise LoaderError(self.path, f"frame {frame + 1} decodes to shape {arr.shape}, expected ({self.rows}, {self.cols})")
        if arr.dtype.kind not in "iuf":
            raise LoaderError(self.path, f"unsupported pixel type {arr.dtype}")
        slope, intercept = self.rescale[frame]
        hu = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        if not np.all(np.isfinite(hu)):
            raise LoaderError(self.path, f"frame {frame + 1}: pixel values are not finite after rescale")
        return hu

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.rows, self.cols), dtype=np.float32)
        try:
            fh = self.path.open("rb")
        except OSError as exc:
            raise LoaderError(self.path, f"cannot read: {exc.strerror or exc}") from None
        with fh:
            for k in range(start, stop):
                out[k - start] = self._decode(fh, self.order[k])
        return out


def load_dataset(path: Path, ds: Any, options: Any, *, extra_meta: dict[str, Any] | None = None) -> Volume:
    """The multi-frame CT image ``ds`` (read from ``path``, header only is enough) as a lazy HU volume."""
    path = Path(path)
    dcm.check_ct_image(path, ds, need_pixels=False, allow_frames=True)
    rows, cols = int(dcm._int(ds, "Rows")), int(dcm._int(ds, "Columns"))
    n = n_frames(ds)
    check_memory(path, n * rows * cols * 4 * 2, options.max_bytes, what="decoded multi-frame image")
    rescale = []
    for f in range(n):
        slope, intercept = frame_rescale(ds, f)
        if slope is None or intercept is None or slope == 0.0 or abs(slope) > 1e6 or abs(intercept) > 1e9:
            raise LoaderError(path, f"frame {f + 1}: invalid rescale: slope {slope!r}, intercept {intercept!r}")
        rescale.append((slope, intercept))
    order, affine, spacing_known, warnings = frame_geometry(path, ds)
    source = FrameSlices(path, order, rescale, rows, cols)
    for k in range(0, n, 32):  # refuse broken pixel data now, a batch of frames at a time
        source.read_slab(k, min(n, k + 32))
    meta: dict[str, Any] = dcm.series_meta(ds)
    meta["files"] = [str(path)]
    meta["sop_instance_uids"] = [str(dcm._get(ds, "SOPInstanceUID", ""))]
    meta["frame_numbers"] = [f + 1 for f in order]
    meta["n_frames"] = n
    meta["sop_class"] = str(dcm._get(ds, "SOPClassUID", ""))
    if warnings:
        meta["warning"] = "; ".join(warnings)
    meta["lazy"] = "frames decoded from the file per batch"
    meta.update(extra_meta or {})
    return Volume(
        array=source,
        affine=affine,
        intensity=Intensity.HU,
        source=str(path),
        loader=NAME,
        spacing_known=spacing_known,
        meta=meta,
    )
