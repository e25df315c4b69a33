"""NIfTI-1/2 volumes, ``.nii`` and ``.nii.gz`` (nibabel).

``Volume.array = data.T`` (nibabel's (x, y, z) -> our (z, y, x)) and
``Volume.affine = img.affine``, so a mask written back as
``Nifti1Image(mask.T, volume.affine)`` matches the input exactly; the input's
header is kept in ``meta["nifti_header"]`` so the mask keeps its shape (4D with
t = 1 included), qform, sform and their codes (:mod:`segment.export_nifti`).
When both the qform and the sform are set and disagree, the sform is used and
``meta["warning"]`` says so.  Values are
taken as HU after the header's scl_slope/scl_inter.

A 2D image (x, y) becomes one slice; a 4D image is accepted only when every
dimension beyond the third is 1.  A header nibabel cannot parse, data shorter
than the header promises, a size beyond ``LoadOptions.max_bytes`` and
non-numeric data types are refused with a :class:`LoaderError`.  A singular
affine (voxel size 0) gives ``spacing_known=False`` and the identity.
Non-finite voxels (NaN/inf) are replaced by -1024 HU and counted in
``meta["nonfinite_voxels"]``.

The volume is **lazy** (:mod:`liverseg_studio.core.slices`): NIfTI stores
voxels x-fastest, so slices ``z0:z1`` are one contiguous run of bytes, read
with plain file reads when a consumer asks for them.  A ``.nii`` is read in
place; a ``.nii.gz`` is decompressed once, in one streaming pass, into an
anonymous temporary file (deleted when the volume is closed or collected, or
when the process ends) holding the raw voxels in the file's own dtype
(int16/uint16 for CT).  Values are scaled exactly as nibabel's
``get_fdata(dtype=float32)`` scales them (``meta["lazy"]`` says which way).
"""

from __future__ import annotations

import struct
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.slices import SliceSource
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


#: qform and sform further apart than this (mm, in any matrix element) disagree.
QFORM_SFORM_TOLERANCE_MM = 1e-3


def qform_sform_disagreement(img: Any) -> str | None:
    """A warning when both the qform and the sform are set and place the voxels differently, saying which is used."""
    hdr = img.header
    try:
        qform, qcode = hdr.get_qform(coded=True)
        sform, scode = hdr.get_sform(coded=True)
    except Exception:  # noqa: BLE001 - a broken form is reported elsewhere
        return None
    if not qcode or not scode or qform is None or sform is None:
        return None
    diff = float(np.max(np.abs(np.asarray(qform) - np.asarray(sform))))
    if not diff > QFORM_SFORM_TOLERANCE_MM:
        return None
    zq = ", ".join(f"{v:.4g}" for v in np.linalg.norm(np.asarray(qform)[:3, :3], axis=0))
    zs = ", ".join(f"{v:.4g}" for v in np.linalg.norm(np.asarray(sform)[:3, :3], axis=0))
    return (
        f"qform (code {int(qcode)}, voxel {zq} mm) and sform (code {int(scode)}, voxel {zs} mm) disagree "
        f"by up to {diff:.4g} mm: the sform was used (as the NIfTI standard and nibabel do); "
        "volumes depend on it, check the header"
    )


#: Bytes decompressed per step while a .nii.gz is copied into its temporary file.
_COPY_CHUNK = 8 * 1024 * 1024


class NiftiSlices(SliceSource):
    """Slices of a NIfTI volume read from ``fh`` (the .nii itself or a temporary file of raw voxels).

    ``read_slab`` returns float32 (z, y, x) HU, scaled as nibabel's
    ``get_fdata(dtype=np.float32)`` does, with non-finite values set to -1024.
    """

    def __init__(
        self,
        path: Path,
        fh: Any,
        offset: int,
        raw_dtype: np.dtype,
        nxyz: tuple[int, int, int],
        slope: Any,
        inter: Any,
        description: str,
    ) -> None:
        super().__init__()
        self.path = path
        self._fh = fh
        self._offset = int(offset)
        self.raw_dtype = np.dtype(raw_dtype)
        nx, ny, nz = nxyz
        self.shape = (nz, ny, nx)
        self.dtype = np.dtype(np.float32)
        self._slope, self._inter = slope, inter
        self.description = description
        self._finalizer = weakref.finalize(self, fh.close)

    def close(self) -> None:
        self._finalizer()
        super().close()

    def read_raw(self, start: int, stop: int) -> np.ndarray:
        """Slices ``start:stop`` unscaled, in the file's dtype, (z, y, x)."""
        nz, ny, nx = self.shape
        per_slice = nx * ny * self.raw_dtype.itemsize
        n_bytes = (stop - start) * per_slice
        buf = bytearray(n_bytes)
        with self._lock:
            if self.closed:
                raise LoaderError(self.path, "the volume was closed; load it again")
            try:
                self._fh.seek(self._offset + start * per_slice)
                got = self._fh.readinto(buf)
            except OSError as exc:
                raise LoaderError(self.path, f"cannot read NIfTI voxel data: {exc}") from None
        if got != n_bytes:
            raise LoaderError(self.path, f"NIfTI data is truncated: slices {start}..{stop - 1} are missing")
        return np.frombuffer(buf, dtype=self.raw_dtype).reshape(stop - start, ny, nx)

    def scale(self, raw: np.ndarray) -> np.ndarray:
        """nibabel's ``ArrayProxy._get_scaled(dtype=float32)`` then ``astype(float32)``, on a slab."""
        from nibabel.volumeutils import apply_read_scaling

        slope, inter = np.asanyarray(self._slope), np.asanyarray(self._inter)
        if np.can_cast(slope, np.float32):
            slope = slope.astype(np.float32)
        if np.can_cast(inter, np.float32):
            inter = inter.astype(np.float32)
        scaled = apply_read_scaling(raw, slope, inter)
        scaled = scaled.astype(np.promote_types(scaled.dtype, np.float32), copy=False)
        return np.array(scaled, dtype=np.float32, copy=True)

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        out = self.scale(self.read_raw(start, stop))
        bad = ~np.isfinite(out)
        if bad.any():
            out[bad] = -1024.0
        return out

    def count_nonfinite(self, batch: int = 16) -> int:
        """Non-finite values after scaling, counted slab by slab (0 without reading for plain integers)."""
        identity = float(np.asarray(self._slope)) == 1.0 and float(np.asarray(self._inter)) == 0.0
        if self.raw_dtype.kind in "iu" and identity:
            return 0
        total = 0
        for start in range(0, self.shape[0], batch):
            stop = min(self.shape[0], start + batch)
            total += int(np.count_nonzero(~np.isfinite(self.scale(self.read_raw(start, stop)))))
        return total


def _decompress_to_temp(path: Path, offset: int, n_bytes: int) -> Any:
    """The ``n_bytes`` of voxel data after ``offset`` in the gzip file, copied into an anonymous temporary file."""
    import gzip

    tmp = tempfile.TemporaryFile(prefix="liverseg-nifti-")
    try:
        with gzip.open(path, "rb") as gz:
            skip = offset
            while skip > 0:
                got = len(gz.read(min(skip, _COPY_CHUNK)))
                if not got:
                    break
                skip -= got
            left = n_bytes
            while left > 0:
                chunk = gz.read(min(left, _COPY_CHUNK))
                if not chunk:
                    break
                tmp.write(chunk)
                left -= len(chunk)
        if skip > 0 or left > 0:
            raise LoaderError(path, "NIfTI data is truncated: the compressed stream ends before the voxels do")
        tmp.flush()
    except LoaderError:
        tmp.close()
        raise
    except OSError as exc:
        tmp.close()
        if exc.errno:  # the temporary folder (full disk ...), not the input
            raise LoaderError(path, f"cannot decompress the voxels into a temporary file: {exc}") from None
        raise LoaderError(path, f"cannot read NIfTI voxel data (truncated or corrupt): {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - EOFError, zlib.error ...
        tmp.close()
        raise LoaderError(path, f"cannot read NIfTI voxel data (truncated or corrupt): {type(exc).__name__}: {exc}") from None
    return tmp


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
        offset = int(img.dataobj.offset)  # where nibabel reads the voxels (vox_offset may say 0)
        slope, inter = img.dataobj.slope, img.dataobj.inter
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
    nxyz = tuple(shape[:3]) if len(shape) >= 3 else (shape[0], shape[1], 1)
    check_side(path, nxyz[1], nxyz[0])
    if isize is None:
        fh: Any = path.open("rb")
        how = "read in place from the .nii, slab by slab"
    else:
        fh = _decompress_to_temp(path, offset, raw_bytes)
        offset = 0
        how = "decompressed once into a temporary file, read slab by slab"
    source = NiftiSlices(path, fh, offset, dtype, nxyz, slope, inter, description=str(path))  # type: ignore[arg-type]
    meta: dict = {"dtype": str(dtype), "lazy": how}
    try:
        nonfinite = source.count_nonfinite()
    except MemoryError:
        source.close()
        raise LoaderError(path, "not enough memory to decode the volume") from None
    except LoaderError:
        source.close()
        raise
    except Exception as exc:  # noqa: BLE001 - bad scaling ...
        source.close()
        raise LoaderError(path, f"cannot read NIfTI voxel data (truncated or corrupt): {type(exc).__name__}: {exc}") from None
    if nonfinite:
        meta["nonfinite_voxels"] = nonfinite
    try:
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001
        raise LoaderError(path, f"broken NIfTI geometry: {exc}") from None
    meta["nifti_header"] = img.header.copy()  # the mask is written with it (segment.export_nifti)
    disagree = qform_sform_disagreement(img)
    if disagree:
        meta["warning"] = disagree
    spacing_known = True
    if _raw_voxel_size_missing(path):
        affine, spacing_known = np.eye(4), False
        meta["warning"] = "voxel size 0 in the header: voxel size unknown"
    elif affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        affine, spacing_known = np.eye(4), False
        meta["warning"] = "invalid or singular affine (voxel size 0): voxel size unknown"
    return Volume(
        array=source,
        affine=affine,
        intensity=Intensity.HU,
        source=str(path),
        loader=NAME,
        spacing_known=spacing_known,
        meta=meta,
    )
