"""DICOM SEG frames for a multi-frame source image (enhanced or legacy-converted CT, issue 28).

highdicom references a multi-frame source by its SOP Instance UID and frame numbers, and wants
the segmentation's ``pixel_array`` with one plane per *source frame*, in the file's frame order.
:func:`slices_for_frames` maps each frame, from its own Plane Position functional group, to the
volume slice the loader put it on (the loader sorted the frames along the normal), so the SEG
never depends on the order the file stores its frames in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liverseg_studio.core.errors import LiversegError


def is_multiframe_source(sources: list[Any]) -> bool:
    return len(sources) == 1 and int(getattr(sources[0], "NumberOfFrames", 1) or 1) > 1


def slices_for_frames(volume: Any, ds: Any) -> list[int]:
    """The volume slice (0-based) of each frame of ``ds``, in frame order."""
    from liverseg_studio.loaders import dicom_multiframe as mf

    inv = np.linalg.inv(volume.affine)
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    out = []
    for f in range(mf.n_frames(ds)):
        pos = mf.frame_position(ds, f)
        if pos is None:
            raise LiversegError(f"{volume.source}: frame {f + 1} has no ImagePositionPatient; cannot place it in a DICOM SEG")
        x, y, z = (inv @ np.append(np.asarray(pos) * lps_to_ras, 1.0))[:3]
        k = int(round(z))
        if abs(x) > 0.05 or abs(y) > 0.05 or abs(z - k) > 0.05 or not 0 <= k < volume.n_slices:
            raise LiversegError(f"{volume.source}: frame {f + 1} does not match the segmented volume's geometry")
        out.append(k)
    return out


def has_frame_geometry(ds: Any) -> bool:
    """Whether every frame of a multi-frame image has a position, an orientation and a pixel spacing."""
    from liverseg_studio.loaders import dicom_multiframe as mf

    try:
        return all(
            mf.frame_position(ds, f) is not None and mf.frame_orientation(ds, f) is not None and mf.frame_spacing(ds, f) is not None
            for f in range(mf.n_frames(ds))
        )
    except Exception:  # noqa: BLE001
        return False


def shorten_decimal_strings(ds: Any) -> int:
    """Rewrite decimal strings (DS) longer than the 16 characters DICOM allows, in ``ds`` and its
    sequences (functional groups copied from old files hold e.g. ``1.6000000238418579``); returns how many.

    highdicom copies a multi-frame source's Pixel Measures into the SEG, and dciodvfy refuses such values.
    """
    from pydicom.valuerep import format_number_as_ds

    count = 0
    for elem in ds.iterall():
        if elem.VR != "DS" or elem.value is None or elem.value == "":
            continue
        values = list(elem.value) if elem.VM > 1 else [elem.value]
        if all(len(str(getattr(v, "original_string", None) or v)) <= 16 for v in values):
            continue
        new = [format_number_as_ds(float(v)) for v in values]
        elem.value = new if elem.VM > 1 else new[0]
        count += 1
    return count
