"""Helpers shared by the built-in loaders: format sniffing and input guards.

Sniffing only looks at the first bytes of a file (``head``, 1 KiB) and its
name; it never imports pydicom, nibabel, PIL or mrcfile (only the standard
library's ``zlib`` for peeking into gzip'd NIfTI headers).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from liverseg_studio.core.errors import LoaderError

#: Smallest accepted in-plane size (rows and columns).  A 1x1 "image" is
#: certainly not a CT slice; anything under 8 pixels cannot be segmented.
MIN_SIDE = 8
#: Largest accepted 2D image (pixels): 8192^2, four times a 4k CT slice.
MAX_IMAGE_PIXELS = 8192 * 8192

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
GZIP_MAGIC = b"\x1f\x8b"


def lower_name(path: Path) -> str:
    return path.name.lower()


def has_extension(path: Path, extensions: tuple[str, ...]) -> bool:
    name = lower_name(path)
    return any(name.endswith(ext) for ext in extensions)


def _nifti_in(head: bytes) -> str | None:
    if len(head) >= 348:
        for fmt in ("<i", ">i"):
            (size,) = struct.unpack(fmt, head[:4])
            if size == 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
                return "nifti"
            if size == 540 and head[4:8] in (b"n+2\x00", b"ni2\x00"):
                return "nifti"
    return None


def detect_format(head: bytes) -> str | None:
    """The format the magic bytes of ``head`` announce, or None.

    One of ``"png"``, ``"jpeg"``, ``"bmp"``, ``"tiff"``, ``"dicom"``,
    ``"nifti"`` (plain or gzip'd), ``"gzip"`` (gzip but not NIfTI inside) or
    ``"mrc"``.
    """
    # DICOM first: its 128-byte preamble may itself hold a TIFF header
    # (dual-format files such as pydicom's CT_small.dcm).
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    if head[:4] in TIFF_MAGICS:
        return "tiff"
    nifti = _nifti_in(head)
    if nifti:
        return nifti
    if head.startswith(GZIP_MAGIC):
        try:
            inner = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 1024)
        except zlib.error:
            return "gzip"
        return _nifti_in(inner) or "gzip"
    if len(head) >= 212 and head[208:212] in (b"MAP ", b"MAP\x00"):
        return "mrc"
    # BMP last: "BM" is a weak two-byte signature; check the header size field too.
    if head[:2] == b"BM" and len(head) >= 18:
        (dib,) = struct.unpack("<I", head[14:18])
        if dib in (12, 16, 40, 52, 56, 64, 108, 124):
            return "bmp"
    return None


def looks_like_raw_dicom(head: bytes) -> bool:
    """A DICOM file without preamble starts with an element of group 0x0002 or 0x0008."""
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[2:4] < b"\x40\x00"


def sniff_by(path: Path, head: bytes, formats: tuple[str, ...], extensions: tuple[str, ...]) -> bool:
    """True when the magic bytes announce one of ``formats``; when the magic is
    unknown, fall back to the file extension (so that a broken ``.png`` reaches
    the image loader and gets a precise error rather than "unknown format")."""
    fmt = detect_format(head)
    if fmt is not None and fmt != "gzip":
        return fmt in formats
    return has_extension(path, extensions)


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} TiB"  # pragma: no cover


def check_memory(path: Path, n_bytes: int, max_bytes: int, what: str = "decoded image") -> None:
    """Refuse to allocate ``n_bytes`` when it exceeds ``max_bytes`` (LoadOptions.max_bytes)."""
    if n_bytes > max_bytes:
        raise LoaderError(
            path,
            f"{what} would need {human_bytes(n_bytes)} of memory, more than the limit of "
            f"{human_bytes(max_bytes)} (raise LoadOptions.max_bytes if this is intended)",
        )


def check_side(path: Path, rows: int, cols: int) -> None:
    """Refuse images smaller than :data:`MIN_SIDE` in either direction."""
    if rows < MIN_SIDE or cols < MIN_SIDE:
        raise LoaderError(
            path, f"image is only {cols}x{rows} pixels; at least {MIN_SIDE}x{MIN_SIDE} are needed for a CT slice"
        )


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise LoaderError(path, f"cannot read: {exc.strerror or exc}") from exc


def require_nonempty(path: Path) -> int:
    size = file_size(path)
    if size == 0:
        raise LoaderError(path, "file is empty (0 bytes)")
    return size


_NOISY_LOGGERS = ("nibabel", "pydicom", "PIL", "mrcfile")


def quiet(func):
    """Run a loader with library warnings and log messages silenced.

    pydicom, nibabel, Pillow and mrcfile warn (or log to stderr) about odd but
    readable headers; the loader reports what matters through ``Volume.meta``
    or a :class:`LoaderError`, and the CLI promises one line on stderr.
    """
    import functools
    import logging
    import warnings

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        loggers = [logging.getLogger(n) for n in _NOISY_LOGGERS]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return func(*args, **kwargs)
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)

    return wrapper
