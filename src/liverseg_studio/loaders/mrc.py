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
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np

from liverseg_studio.core.errors import LoaderError
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

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(str(path), mode="r", permissive=True) as mrc:
                data = mrc.data
                if data is None:
                    raise LoaderError(path, "MRC file holds no readable data")
                data = np.array(data, dtype=np.float32)
                vs = mrc.voxel_size
                voxel = (float(vs.x), float(vs.y), float(vs.z))
    except LoaderError:
        raise
    except MemoryError:
        raise LoaderError(path, "not enough memory to decode the volume") from None
    except Exception as exc:  # noqa: BLE001 - mrcfile raises ValueError, OSError ...
        raise LoaderError(path, f"corrupt MRC file: {type(exc).__name__}: {exc}") from None
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.size != n_vox:
        raise LoaderError(path, f"MRC data has shape {data.shape}, the header says {nz} x {ny} x {nx}")
    meta: dict = {"mrc_mode": mode}
    if nz == 1:  # a single image: keep [1, y, x]
        arr = np.ascontiguousarray(data)
        sx, sy, sz = voxel
        meta["axis_order"] = "single image [1, y, x]"
    else:  # file (sections, rows, columns); the column axis is axial (see module docstring)
        arr = np.ascontiguousarray(data.T)
        sz, sy, sx = voxel[0], voxel[1], voxel[2]
        meta["axis_order"] = "array = data.T (the file's column axis is axial)"
    check_side(path, arr.shape[1], arr.shape[2])
    bad = ~np.isfinite(arr)
    if bad.any():
        meta["nonfinite_voxels"] = int(bad.sum())
        arr[bad] = -1024.0
    valid = all(np.isfinite(v) and 0 < v < 1e4 for v in (sx, sy, sz))
    if valid:
        affine = np.diag([sx, sy, sz, 1.0])
        meta["voxel_size"] = f"{sz:g} x {sy:g} x {sx:g} (z, y, x), taken as mm"
    else:
        affine = np.eye(4)
        meta["voxel_size"] = "0 (unknown): volumes in voxels"
    return Volume(
        array=arr,
        affine=affine,
        intensity=Intensity.HU,
        source=str(path),
        loader=NAME,
        spacing_known=bool(valid),
        meta=meta,
    )
