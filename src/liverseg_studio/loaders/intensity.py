"""The intensity policy every loaded HU volume goes through (``LoaderRegistry.load`` calls it).

:func:`liverseg_studio.core.plausibility.check_ct_intensities` judges a sample
of the voxels; then, by ``LoadOptions.intensity`` (``--intensity``):

* ``auto`` (default): a volume that looks like CT is used as it is; a DICOM CT
  stored unsigned (PixelRepresentation 0) *without* RescaleIntercept whose
  values look like HU + 1024 is corrected (minus 1024) with a warning in
  ``meta["warning"]`` (printed, written to the report, shown in the studio's
  case panel); anything else that does not look like CT in HU is refused with
  one line saying what was seen and what to do;
* ``hu``: the values are taken as HU without a check (the user says so);
* ``hu+1024``: the values are HU + 1024 (unsigned without offset): 1024 is subtracted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.plausibility import UNSIGNED_OFFSET, check_ct_intensities, sample_voxels
from liverseg_studio.core.slices import LazyArray, SliceSource
from liverseg_studio.core.volume import Intensity, Volume

#: Values of ``--intensity``.
CHOICES = ("auto", "hu", "hu+1024")


class OffsetSource(SliceSource):
    """Slices of another source with ``offset`` added (float32)."""

    def __init__(self, parent: SliceSource, offset: float) -> None:
        super().__init__()
        self.parent, self.offset = parent, float(offset)
        self.shape = tuple(parent.shape)
        self.dtype = np.dtype(np.float32)
        self.description = f"{parent.description} {self.offset:+g} HU"

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.parent.read_slab(start, stop), dtype=np.float32) + np.float32(self.offset)

    def close(self) -> None:
        self.parent.close()
        super().close()


def shifted(volume: Volume, offset: float, warning: str) -> Volume:
    """``volume`` with ``offset`` added to every voxel (lazy stays lazy) and ``warning`` in its meta."""
    arr = volume.array
    if isinstance(arr, LazyArray):
        new: Any = LazyArray(OffsetSource(arr.source, offset))
    else:
        new = np.asarray(arr, dtype=np.float32) + np.float32(offset)
    meta = dict(volume.meta)
    meta["warning"] = "; ".join(w for w in (meta.get("warning"), warning) if w)
    meta["intensity_correction"] = f"{offset:+g} HU"
    return volume.with_array(new, meta=meta)


def unsigned_without_intercept(volume: Volume) -> bool:
    """True when the volume's first DICOM file stores unsigned pixels and has no RescaleIntercept."""
    if "dicom" not in (volume.loader or "").lower():
        return False
    files = volume.meta.get("files") or []
    if not files:
        return False
    try:
        import pydicom

        ds = pydicom.dcmread(str(files[0]), stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - the loader read it; a header we cannot re-read is no evidence
        return False
    return int(getattr(ds, "PixelRepresentation", 1)) == 0 and "RescaleIntercept" not in ds


def apply_intensity_policy(volume: Volume, path: Path | str, mode: str = "auto") -> Volume:
    """``volume`` checked, corrected or refused as the module docstring says."""
    if volume.intensity is not Intensity.HU:
        return volume
    mode = mode or "auto"
    if mode not in CHOICES:
        raise LoaderError(path, f"unknown --intensity {mode!r} (choose from {', '.join(CHOICES)})")
    if mode == "hu":
        volume.meta["intensity_check"] = "skipped (--intensity hu)"
        return volume
    if mode == "hu+1024":
        return shifted(volume, -UNSIGNED_OFFSET, "--intensity hu+1024: 1024 subtracted from every voxel")
    check = check_ct_intensities(sample_voxels(volume.array))
    if check.plausible:
        volume.meta["intensity_check"] = check.verdict
        return volume
    if check.verdict == "offset_1024" and unsigned_without_intercept(volume):
        fixed = shifted(
            volume,
            -UNSIGNED_OFFSET,
            "unsigned DICOM CT without RescaleIntercept: the values look like HU + 1024, "
            "so 1024 was subtracted (pass --intensity hu to keep them as stored)",
        )
        fixed.meta["intensity_check"] = "offset_1024 corrected"
        return fixed
    volume.close()
    if check.verdict == "offset_1024":
        raise LoaderError(
            path,
            f"intensities do not look like CT in HU ({check.describe()}); "
            "pass --intensity hu+1024 to subtract 1024, or --intensity hu to use them as they are",
        )
    raise LoaderError(
        path,
        f"intensities do not look like CT in HU ({check.describe()}); "
        "convert the volume to Hounsfield units (e.g. undo a 0..1 scaling), "
        "or pass --intensity hu to segment it as it is",
    )
