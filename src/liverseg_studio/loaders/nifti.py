"""NIfTI-1/2 volumes, ``.nii`` and ``.nii.gz`` (nibabel).

``Volume.array = data.T`` (nibabel's (x, y, z) -> our (z, y, x)) and
``Volume.affine = img.affine``, so a mask written back as
``Nifti1Image(mask.T, volume.affine)`` matches the input exactly.  Values are
taken as HU after the header's scl_slope/scl_inter.

A 2D image (x, y) becomes one slice; a 4D image is accepted only when every
dimension beyond the third is 1.  A header nibabel cannot parse, data shorter
than the header promises, a size beyond ``LoadOptions.max_bytes`` and
non-numeric data types are refused with a :class:`LoaderError`.  A singular
affine (voxel size 0) gives ``spacing_known=False`` and the identity.
Non-finite voxels (NaN/inf) are replaced by -1024 HU and counted in
``meta["nonfinite_voxels"]``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.volume import Intensity, Volume
from liverseg_studio.loaders._common import quiet, check_memory, check_side, human_bytes, require_nonempty, sniff_by

NAME = "nifti"
EXTENSIONS = (".nii", ".nii.gz")
#: gzip cannot compress better than about 1032:1.
_MAX_GZIP_RATIO = 1100


def sniff(path: Path, head: bytes) -> bool:
    """NIfTI header magic (plain or inside gzip), or a ``.nii``/``.nii.gz`` name."""
    return sniff_by(path, head, ("nifti",), EXTENSIONS)


def _gzip_isize(path: Path) -> int | None:
    """Uncompressed size modulo 2^32 from the gzip trailer (None when not gzip)."""
    with path.open("rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            return None
        fh.seek(-4, 2)
        return struct.unpack("<I", fh.read(4))[0]


def _raw_voxel_size_missing(path: Path) -> bool:
    """True when the file's own header (before nibabel repairs it) has no
    qform/sform and a zero or negative pixdim[1..3]: the voxel size is unknown."""
    import gzip

    try:
        opener = gzip.open if _gzip_isize(path) is not None else open
        with opener(path, "rb") as fh:
            raw = fh.read(348)
        if len(raw) < 348:
            return False
        order = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
        if struct.unpack(order + "i", raw[:4])[0] != 348:
            return False  # NIfTI-2: trust nibabel
        pixdim = struct.unpack(order + "8f", raw[76:108])
        qcode, scode = struct.unpack(order + "2h", raw[252:256])
    except (OSError, EOFError, struct.error):
        return False
    return qcode == 0 and scode == 0 and any(not d > 0 for d in pixdim[1:4])


@quiet
def load(path: Path, options) -> Volume:
    """Read a NIfTI file as an HU :class:`Volume` (see the module docstring)."""
    path = Path(path)
    size = require_nonempty(path)
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as exc:  # noqa: BLE001 - ImageFileError, HeaderDataError, ValueError, EOFError, zlib.error ...
        raise LoaderError(path, f"broken or unreadable NIfTI header: {type(exc).__name__}: {exc}") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise LoaderError(path, f"not a NIfTI image ({type(img).__name__})")
    try:
        shape = tuple(int(s) for s in img.shape)
        dtype = np.dtype(img.get_data_dtype())
        offset = int(img.header.get_data_offset())
    except Exception as exc:  # noqa: BLE001
        raise LoaderError(path, f"broken NIfTI header: {type(exc).__name__}: {exc}") from None
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise LoaderError(path, f"NIfTI image has an invalid shape {shape}")
    if len(shape) > 3 and any(s != 1 for s in shape[3:]):
        raise LoaderError(
            path, f"NIfTI image is {len(shape)}D with shape {shape}; only a single 3D volume is supported"
        )
    if dtype.kind not in "iuf" or dtype.fields is not None:
        raise LoaderError(path, f"unsupported NIfTI data type {dtype} (expected integer or float voxels)")
    n_vox = int(np.prod(shape, dtype=np.float64))
    check_memory(path, n_vox * 4 * 2, options.max_bytes, what="decoded volume")
    raw_bytes = n_vox * dtype.itemsize
    isize = _gzip_isize(path)
    if isize is None:
        if offset + raw_bytes > size:
            raise LoaderError(
                path, f"NIfTI data is truncated: the header promises {human_bytes(offset + raw_bytes)}, the file has {human_bytes(size)}"
            )
    else:
        if offset + raw_bytes > size * _MAX_GZIP_RATIO:
            raise LoaderError(path, f"compressed file of {human_bytes(size)} cannot hold the {human_bytes(raw_bytes)} its header promises")
        if (offset + raw_bytes) < 2**32 and isize < offset + raw_bytes:
            raise LoaderError(path, f"NIfTI data is truncated: {human_bytes(isize)} uncompressed, the header promises {human_bytes(offset + raw_bytes)}")
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except MemoryError:
        raise LoaderError(path, "not enough memory to decode the volume") from None
    except Exception as exc:  # noqa: BLE001 - truncated gzip, short file, bad scaling ...
        raise LoaderError(path, f"cannot read NIfTI voxel data (truncated or corrupt): {type(exc).__name__}: {exc}") from None
    data = data.reshape(shape[:3] if len(shape) >= 3 else (*shape, 1))
    arr = np.ascontiguousarray(data.T)  # (z, y, x)
    check_side(path, arr.shape[1], arr.shape[2])
    meta: dict = {"dtype": str(dtype)}
    bad = ~np.isfinite(arr)
    if bad.any():
        meta["nonfinite_voxels"] = int(bad.sum())
        arr[bad] = -1024.0
    try:
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001
        raise LoaderError(path, f"broken NIfTI geometry: {exc}") from None
    spacing_known = True
    if _raw_voxel_size_missing(path):
        affine, spacing_known = np.eye(4), False
        meta["warning"] = "voxel size 0 in the header: voxel size unknown"
    elif affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        affine, spacing_known = np.eye(4), False
        meta["warning"] = "invalid or singular affine (voxel size 0): voxel size unknown"
    return Volume(
        array=arr,
        affine=affine,
        intensity=Intensity.HU,
        source=str(path),
        loader=NAME,
        spacing_known=spacing_known,
        meta=meta,
    )
