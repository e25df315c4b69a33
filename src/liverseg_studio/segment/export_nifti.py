"""The NIfTI label mask (``<name>_mask.nii.gz``), with the input's header kept exactly.

For a NIfTI input (the loader keeps its header in ``meta["nifti_header"]``)
the mask is written with a copy of that header: the same shape (a 2D image
stays 2D, a 4D image with t = 1 stays 4D), the same qform and sform *and their
codes* (bit for bit: the quaternion, offsets and srow fields are copied, not
recomputed), the same units; only the data type (uint8, no scaling), the
intent ("label"), the description, cal_min/cal_max and the extension (our
label table, colours, model and source) change.  Any other input gets a fresh
NIfTI-1 header from the volume's affine (codes 1 = scanner, or 0 when the
voxel size is unknown).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from liverseg_studio import __version__
from liverseg_studio.core.colours import LABEL_COLOURS, LABEL_NAMES
from liverseg_studio.core.io import atomic_output
from liverseg_studio.core.volume import Label

SOFTWARE_NAME = "LiverSeg Studio"
LABEL_TABLE = {str(int(lab)): LABEL_NAMES[lab] for lab in Label}


def _from_input_header(labels: np.ndarray, header: Any) -> Any | None:
    """A NIfTI image of ``labels`` (z, y, x) in the input header's shape, or None when they do not fit."""
    import nibabel as nib

    shape = tuple(int(s) for s in header.get_data_shape())
    data = np.ascontiguousarray(labels.T)
    if int(np.prod(shape)) != data.size or tuple(shape[:2]) != data.shape[:2]:
        return None  # the labels are not in the input's storage order: do not pretend
    data = data.reshape(shape)
    hdr = header.copy()
    hdr.set_data_dtype(np.uint8)
    hdr.set_slope_inter(1.0, 0.0)
    hdr.extensions.clear()
    cls = nib.Nifti2Image if isinstance(hdr, nib.Nifti2Header) else nib.Nifti1Image
    return cls(data, None, header=hdr)  # affine None: qform/sform fields stay as they are


def nifti_mask_image(result: Any) -> Any:
    """The mask of ``result`` (a :class:`SegmentationResult`) as a nibabel image."""
    import nibabel as nib

    vol = result.volume
    labels = np.asarray(result.labels, dtype=np.uint8)
    header = vol.meta.get("nifti_header")
    img = _from_input_header(labels, header) if header is not None else None
    if img is None:
        img = nib.Nifti1Image(labels.T, vol.affine)
        code = 1 if vol.spacing_known else 0
        img.set_qform(vol.affine, code=code)
        img.set_sform(vol.affine, code=code)
        if vol.spacing_known:
            img.header.set_xyzt_units("mm")
        img.header.set_data_dtype(np.uint8)
    hdr = img.header
    hdr.set_intent("label", name="labels")
    hdr["descrip"] = b"liverseg labels 0=background 1=liver 2=liver tumour"
    hdr["cal_min"], hdr["cal_max"] = 0, 2
    ext = {
        "software": f"{SOFTWARE_NAME} {__version__}",
        "labels": LABEL_TABLE,
        "colours": {str(int(k)): list(v) for k, v in LABEL_COLOURS.items()},
        "model": result.model.to_json(),
        "source": vol.source,
    }
    hdr.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(ext).encode("utf-8")))
    return img


def save_nifti_mask(result: Any, path: str | Path) -> None:
    """Write the mask to ``path`` (no atomicity: the caller's temporary file)."""
    import nibabel as nib

    nib.save(nifti_mask_image(result), str(path))


def write_nifti_mask(result: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """``<name>_mask.nii.gz`` with the input's shape and header, written atomically."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_nifti_mask(result, tmp)
    return Path(path)
