"""The local cache of retrieved series: only complete series are visible; retrievals resume.

Layout under the cache root::

    <StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm     complete series
    .partial/<SeriesInstanceUID>/<SOPInstanceUID>.dcm                a retrieval under way

Each instance is written atomically (``core.io``: hidden temporary file, fsync, rename), so a
file in the cache is always whole.  A series is moved out of ``.partial`` into its study
folder with one directory rename once every expected instance is there; a retrieval that
was cancelled, dropped or refused leaves only whole instances in ``.partial``, and the next
retrieval of that series asks only for the instances still missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

from liverseg_studio.core.io import TEMP_PREFIX, atomic_write_bytes
from liverseg_studio.pacs.config import PacsError

PARTIAL = ".partial"
SUFFIX = ".dcm"


def _safe_uid(uid: str) -> str:
    uid = str(uid).strip()
    if not uid or any(c not in "0123456789." for c in uid) or len(uid) > 64:
        raise PacsError(f"{uid!r} is not a DICOM UID")
    return uid


class SeriesCache:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- complete series ----------------------------------------------------------------
    def series_dir(self, study_uid: str, series_uid: str) -> Path:
        return self.root / _safe_uid(study_uid) / _safe_uid(series_uid)

    def complete(self, study_uid: str, series_uid: str) -> Path | None:
        d = self.series_dir(study_uid, series_uid)
        return d if d.is_dir() else None

    # -- retrievals under way ------------------------------------------------------------
    def partial_dir(self, series_uid: str, *, create: bool = False) -> Path:
        d = self.root / PARTIAL / _safe_uid(series_uid)
        if create:
            d.mkdir(parents=True, exist_ok=True)
        return d

    def have(self, series_uid: str) -> set[str]:
        """SOPInstanceUIDs already retrieved (whole files) for a retrieval under way."""
        d = self.partial_dir(series_uid)
        if not d.is_dir():
            return set()
        return {p.name[: -len(SUFFIX)] for p in d.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith(".")}

    def write_instance(self, series_uid: str, sop_uid: str, data: bytes) -> Path:
        """Store one instance (a whole DICOM file's bytes) atomically; a second copy replaces the first."""
        d = self.partial_dir(series_uid, create=True)
        return atomic_write_bytes(d / f"{_safe_uid(sop_uid)}{SUFFIX}", data, overwrite=True)

    def finish(self, study_uid: str, series_uid: str, expected: Iterable[str]) -> Path:
        """Move a retrieval whose every ``expected`` instance is present into place; else PacsError."""
        expected = set(expected)
        have = self.have(series_uid)
        missing = expected - have
        if missing or not expected:
            raise PacsError(
                f"series {series_uid}: incomplete, {len(expected & have)} of {len(expected)} instance(s) "
                "retrieved (run the same command again to fetch the rest)"
            )
        src = self.partial_dir(series_uid)
        for extra in have - expected:  # instances the node sent that it did not list
            (src / f"{extra}{SUFFIX}").unlink(missing_ok=True)
        for stale in src.glob(f"{TEMP_PREFIX}*"):
            stale.unlink(missing_ok=True)
        dest = self.series_dir(study_uid, series_uid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():  # another process finished it first
            shutil.rmtree(src, ignore_errors=True)
        else:
            os.replace(src, dest)
        self._prune_partial_root()
        return dest

    def discard(self, series_uid: str) -> None:
        shutil.rmtree(self.partial_dir(series_uid), ignore_errors=True)
        self._prune_partial_root()

    def _prune_partial_root(self) -> None:
        try:
            (self.root / PARTIAL).rmdir()
        except OSError:
            pass
