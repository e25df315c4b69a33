"""MRC / CCP4 volumes (``mrcfile``), so that LiTS case 117 loads directly.

Axis order (checked by eye on LiTS case 117, ``img_117.mrc`` 128^3 float32,
saving slices along each axis of ``mrcfile``'s ``data`` as PNGs):

* ``data[i, :, :]`` and ``data[:, i, :]`` are coronal/sagittal-like cuts
  through the liver (no vertebral body cross-section);
* ``data[:, :, i]`` are **axial** slices (vertebral body, kidneys, the liver
  in cross-section), and ``data[:, :, i].T`` shows them as a radiologist
  does: liver on the image left, spine at the bottom; ``i`` increasing goes
  from the kidneys towards the liver dome (feet to head).

So the file's fastest axis (MRC "x", columns) is the axial direction: the
file was written from a NIfTI-style ``(x, y, z)`` array.  This loader
therefore returns ``array = data.T`` for 3D files, exactly the nibabel
convention of :mod:`liverseg_studio.loaders.nifti`; the label map
``lab_117.mrc`` loads the same way and lines up voxel for voxel.  A single
image (``nz == 1``) stays ``[1, y, x]``.

Voxel size: ``mrcfile``'s ``voxel_size`` (x, y, z).  When any component is 0
(LiTS case 117: all are 0) the size is unknown: ``spacing_known=False`` and
the identity affine, so volumetry reports voxels.  A non-zero voxel size is
taken as millimetres (the MRC standard says Ångström, but CT data written
into MRC by medical tools stores mm) and recorded in ``meta``.

The header is checked before anything is allocated: dimensions, mode, and
that the file really holds the data it promises; a size beyond
``LoadOptions.max_bytes`` is refused.

The volume is **lazy** (:mod:`liverseg_studio.core.slices`) over ``mrcfile``'s
memory map: a slab of slices is copied out as float32 when asked for.  (Axial
slices are the file's columns, so each slab touches the whole file; its mapped
pages count in the RSS up to the file's size.)
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.slices import SliceSource
from liverseg_studio.core.volume import Intensity, Volume
from liverseg_studio.loaders._common import quiet, check_memory, check_side, human_bytes, require_nonempty, sniff_by

NAME = "mrc"
EXTENSIONS = (".mrc", ".map", ".mrcs", ".ccp4")
HEADER_BYTES = 1024
#: MRC mode -> bytes per voxel, for the modes we read (real-valued).
_MODE_ITEMSIZE = {0: 1, 1: 2, 2: 4, 6: 2, 12: 2}


def sniff(path: Path, head: bytes) -> bool:
    """``MAP `` at byte 208, or an MRC extension when the magic is unknown."""
    return sniff_by(path, head, ("mrc",), EXTENSIONS)


def _read_header(path: Path, size: int) -> tuple[int, int, int, int, int]:
    """(nx, ny, nz, mode, nsymbt) parsed with struct; validated against the file size."""
    if size < HEADER_BYTES:
        raise LoaderError(path, f"MRC file is truncated: {size} bytes, shorter than the 1024-byte header")
    with path.open("rb") as fh:
        head = fh.read(HEADER_BYTES)
    stamp = head[212:214]
    orders = ["<", ">"] if stamp != b"\x11\x11" else [">", "<"]
    for order in orders:
        nx, ny, nz, mode = struct.unpack(order + "4i", head[:16])
        (nsymbt,) = struct.unpack(order + "i", head[92:96])
        if mode in _MODE_ITEMSIZE and min(nx, ny, nz) >= 1 and nsymbt >= 0:
            return nx, ny, nz, mode, nsymbt
    nx, ny, nz, mode = struct.unpack("<4i", head[:16])
    if mode not in _MODE_ITEMSIZE:
        raise LoaderError(path, f"unsupported MRC mode {mode} (supported: {sorted(_MODE_ITEMSIZE)})")
    raise LoaderError(path, f"broken MRC header: dimensions {nx} x {ny} x {nz}")


class MrcSlices(SliceSource):
    """Slices of an MRC file through ``mrcfile.mmap``: float32, non-finite values set to -1024."""

    def __init__(self, path: Path, mrc: object, data: np.ndarray) -> None:
        import weakref

        super().__init__()
        self.path = path
        self._data = data  # (sections, rows, columns) memmap
        self.shape = tuple(int(v) for v in (data.shape if data.shape[0] == 1 else data.shape[::-1]))
        self.dtype = np.dtype(np.float32)
        self.description = str(path)
        self._finalizer = weakref.finalize(self, mrc.close)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._finalizer()
        super().close()

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        if self.closed:
            raise LoaderError(self.path, "the volume was closed; load it again")
        try:
            if self._data.shape[0] == 1:  # a single image: [1, y, x]
                out = np.array(self._data[start:stop], dtype=np.float32)
            else:  # the file's column axis is axial: array = data.T
                out = np.ascontiguousarray(np.array(self._data[:, :, start:stop], dtype=np.float32).T)
        except OSError as exc:
            raise LoaderError(self.path, f"cannot read MRC data: {exc}") from None
        bad = ~np.isfinite(out)
        if bad.any():
            out[bad] = -1024.0
        return out


@quiet
def load(path: Path, options) -> Volume:
    """Read an MRC file as an HU :class:`Volume` (see the module docstring for the axis order)."""
    path = Path(path)
    size = require_nonempty(path)
    nx, ny, nz, mode, nsymbt = _read_header(path, size)
    n_vox = nx * ny * nz
    check_memory(path, n_vox * 4 * 2, options.max_bytes, what="decoded volume")
    needed = HEADER_BYTES + nsymbt + n_vox * _MODE_ITEMSIZE[mode]
    if needed > size:
        raise LoaderError(
            path, f"MRC data is truncated: the header promises {human_bytes(needed)}, the file has {human_bytes(size)}"
        )
    import mrcfile

    mrc = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mrc = mrcfile.mmap(str(path), mode="r", permissive=True)
            data = mrc.data
            if data is None:
                raise LoaderError(path, "MRC file holds no readable data")
            vs = mrc.voxel_size
            voxel = (float(vs.x), float(vs.y), float(vs.z))
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3 or data.size != n_vox:
            raise LoaderError(path, f"MRC data has shape {data.shape}, the header says {nz} x {ny} x {nx}")
        source = MrcSlices(path, mrc, data)
        nonfinite = 0
        if data.dtype.kind == "f":  # count what the slabs will replace
            for start in range(0, source.shape[0], 16):
                stop = min(source.shape[0], start + 16)
                sub = data[start:stop] if data.shape[0] == 1 else data[:, :, start:stop]
                nonfinite += int(np.count_nonzero(~np.isfinite(sub)))
    except LoaderError:
        if mrc is not None:
            mrc.close()
        raise
    except MemoryError:
        if mrc is not None:
            mrc.close()
        raise LoaderError(path, "not enough memory to decode the volume") from None
    except Exception as exc:  # noqa: BLE001 - mrcfile raises ValueError, OSError ...
        if mrc is not None:
            mrc.close()
        raise LoaderError(path, f"corrupt MRC file: {type(exc).__name__}: {exc}") from None
    meta: dict = {"mrc_mode": mode, "lazy": "slabs copied out of mrcfile's memory map"}
    if nz == 1:  # a single image: keep [1, y, x]
        sx, sy, sz = voxel
        meta["axis_order"] = "single image [1, y, x]"
    else:  # file (sections, rows, columns); the column axis is axial (see module docstring)
        sz, sy, sx = voxel[0], voxel[1], voxel[2]
        meta["axis_order"] = "array = data.T (the file's column axis is axial)"
    try:
        check_side(path, source.shape[1], source.shape[2])
    except LoaderError:
        source.close()
        raise
    if nonfinite:
        meta["nonfinite_voxels"] = nonfinite
    valid = all(np.isfinite(v) and 0 < v < 1e4 for v in (sx, sy, sz))
    if valid:
        affine = np.diag([sx, sy, sz, 1.0])
        meta["voxel_size"] = f"{sz:g} x {sy:g} x {sx:g} (z, y, x), taken as mm"
    else:
        affine = np.eye(4)
        meta["voxel_size"] = "0 (unknown): volumes in voxels"
    return Volume(
        array=source,
        affine=affine,
        intensity=Intensity.HU,
        source=str(path),
        loader=NAME,
        spacing_known=bool(valid),
        meta=meta,
    )
