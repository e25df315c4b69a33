"""Atomic output files: a temporary file in the same folder, then a rename.

Every file the CLI or the studio writes goes through :func:`atomic_output`
(or the ``atomic_write_*`` helpers built on it):

* the data is written to a hidden temporary file next to the destination
  (same folder, so the final rename never crosses file systems) whose name
  ends with the destination's own suffixes (``.nii.gz`` stays ``.nii.gz``,
  which libraries such as nibabel look at);
* on success the temporary file is renamed onto the destination;
* on *any* exception -- ``KeyboardInterrupt`` and ``SystemExit`` included --
  the temporary file is removed, so an interrupted run leaves no partial file;
* an existing destination is never replaced unless ``overwrite=True``
  (:class:`OutputExistsError`, a :class:`LiversegError`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Callable, Iterable, Iterator

from liverseg_studio.core.errors import LiversegError

#: Prefix of temporary files (hidden on POSIX); used by cleanup and tests.
TEMP_PREFIX = ".liverseg-tmp-"


class OutputExistsError(LiversegError):
    """An output file exists and overwriting was not allowed."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: output exists (use --overwrite to replace it)")


def os_error_reason(exc: BaseException) -> str:
    """The operating system's reason for ``exc`` on one line, without any traceback.

    Libraries re-raise OSErrors with their own text (pydicom puts a whole
    traceback into the message of a ``type(exc)(msg) from exc``): the first
    OSError with a ``strerror`` in the cause chain gives the reason.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            return str(e.strerror)
        e = e.__cause__ or e.__context__
    text = str(exc).split("Traceback (most recent call last)")[0]
    text = text.split("\n", 1)[0]
    return " ".join(text.split()) or type(exc).__name__


class OutputWriteError(LiversegError):
    """An output could not be written (e.g. the disk is full); nothing partial is left behind."""

    def __init__(self, path: Path, exc: BaseException) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: cannot write: {os_error_reason(exc)}")


class OutputFolderError(LiversegError):
    """The output folder cannot be created or written to, or has too little free space."""


#: Free space an output folder needs before a run starts.
MIN_FREE_BYTES = 64 * 1024**2


def prepare_output_dir(folder: os.PathLike[str] | str, *, need_bytes: int = MIN_FREE_BYTES) -> Path:
    """Create ``folder`` (with parents) and check, before any long work, that files can be written there.

    Raises :class:`OutputFolderError` with one line (no traceback) when it cannot be created
    (read-only file system, permission, a file in the way), cannot be written to (a probe
    file is created and removed), or has less than ``need_bytes`` free.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out}: the output path exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"{out}: cannot create the output folder: {os_error_reason(exc)}") from None
    probe = temp_path_for(out / "probe")
    try:
        with open(probe, "xb") as fh:
            fh.write(b"0")
    except OSError as exc:
        raise OutputFolderError(f"{out}: cannot write in the output folder: {os_error_reason(exc)}") from None
    finally:
        _unlink_quietly(probe)
    check_free_space(out, need_bytes)
    return out


def output_bytes_needed(volume: object) -> int:
    """A generous bound on the bytes one input's outputs take: half a byte per voxel plus :data:`MIN_FREE_BYTES`."""
    shape = getattr(volume, "shape", (0,))
    n = 1
    for s in shape:
        n *= int(s)
    return n // 2 + MIN_FREE_BYTES


def check_free_space(folder: os.PathLike[str] | str, need_bytes: int) -> None:
    """Raise :class:`OutputFolderError` when ``folder``'s file system has less than ``need_bytes`` free."""
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the writes will say
    if free < need_bytes:
        raise OutputFolderError(
            f"{folder}: not enough free space for the outputs ({free / 1024**2:.0f} MB free, "
            f"about {need_bytes / 1024**2:.0f} MB needed); free some space or choose another --out"
        )


def temp_path_for(path: os.PathLike[str] | str) -> Path:
    """A fresh temporary path beside ``path`` that keeps its suffixes."""
    p = Path(path)
    return p.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{p.name}")


def check_can_write(paths: Iterable[os.PathLike[str] | str], *, overwrite: bool = False) -> None:
    """Raise :class:`OutputExistsError` for the first of ``paths`` that exists (unless ``overwrite``).

    Use this *before* long work so the user learns about a clash at once.
    """
    if overwrite:
        return
    for path in paths:
        if Path(path).exists() or Path(path).is_symlink():
            raise OutputExistsError(path)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, OSError):
        path.unlink()


def _commit(tmp: Path, dest: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, dest)
        return
    # Without overwrite the rename must not clobber a file that appeared
    # meanwhile: a hard link fails atomically if ``dest`` exists.
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise OutputExistsError(dest) from None
    except OSError:
        # file systems without hard links: check, then rename (small race)
        if dest.exists() or dest.is_symlink():
            raise OutputExistsError(dest) from None
        os.replace(tmp, dest)
        return
    _unlink_quietly(tmp)


@contextlib.contextmanager
def atomic_output(path: os.PathLike[str] | str, *, overwrite: bool = False) -> Iterator[Path]:
    """Context manager yielding a temporary path to write; renamed onto ``path`` on success.

    >>> with atomic_output("out/case_mask.nii.gz") as tmp:   # doctest: +SKIP
    ...     nib.save(img, tmp)

    The destination folder must exist.  If the block raises (anything,
    ``KeyboardInterrupt`` included) the temporary file is deleted and
    ``path`` is left as it was.
    """
    dest = Path(path)
    check_can_write([dest], overwrite=overwrite)
    if not dest.parent.is_dir():
        raise LiversegError(f"{dest.parent}: output folder does not exist")
    tmp = temp_path_for(dest)
    try:
        yield tmp
        if not tmp.exists():
            raise LiversegError(f"{dest}: nothing was written")
        _commit(tmp, dest, overwrite)
    except OSError as exc:  # full disk, read-only folder, quota...: one clear line, nothing half-written
        raise OutputWriteError(dest, exc) from exc
    finally:
        # after a successful os.replace/os.link+unlink the temp no longer exists
        _unlink_quietly(tmp)


def atomic_write(path: os.PathLike[str] | str, write: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically; returns ``path``."""
    dest = Path(path)
    with atomic_output(dest, overwrite=overwrite) as tmp:
        write(tmp)
    return dest


def atomic_write_bytes(path: os.PathLike[str] | str, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (flushed and fsynced before the rename)."""

    def _write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write(path, _write, overwrite=overwrite)


def atomic_write_text(
    path: os.PathLike[str] | str, text: str, *, overwrite: bool = False, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite)


def remove_stale_temps(folder: os.PathLike[str] | str) -> list[Path]:
    """Delete temporary files of *this* process left in ``folder`` (e.g. after a crash in a writer).

    Only files named ``TEMP_PREFIX<pid>-`` with the current process id are
    touched, never other processes' files or user data.  Returns what was removed.
    """
    removed = []
    prefix = f"{TEMP_PREFIX}{os.getpid()}-"
    for p in Path(folder).glob(f"{prefix}*"):
        if p.is_file():
            _unlink_quietly(p)
            removed.append(p)
    return removed
