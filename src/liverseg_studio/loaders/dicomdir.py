"""A CD/DVD/USB ``DICOMDIR`` read through pydicom's :class:`~pydicom.fileset.FileSet`.

The DICOMDIR lists patients, studies, series and their image files.  The
series it lists are grouped by SeriesInstanceUID; ``--series UID`` picks one,
a single series is taken as it is, and among several the whole-study rule of
:mod:`liverseg_studio.loaders.study` chooses (skip scouts and reformats, prefer
portal venous, then the thinnest covering series), saying why in
``meta["series_choice"]``.  The chosen series is then read by the
DICOM-series loader from the folder that holds its files (restricted to that
series), so everything else (geometry, lazy slices, multi-frame) is the same
as for a series folder.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from liverseg_studio.core.errors import LoaderError, MultipleSeriesError
from liverseg_studio.core.volume import Volume

NAME = "dicomdir"
EXTENSIONS: tuple[str, ...] = ()
#: Media Storage Directory Storage: the SOP class of a DICOMDIR.
MEDIA_DIRECTORY_UID = b"1.2.840.10008.1.3.10"


def sniff(path: Path, head: bytes) -> bool:
    """A file named DICOMDIR, or a DICOM file whose meta header says Media Storage Directory."""
    if path.name.upper() == "DICOMDIR":
        return True
    return head[128:132] == b"DICM" and MEDIA_DIRECTORY_UID in head


def series_files(path: Path) -> dict[str, list[Path]]:
    """SeriesInstanceUID -> the image files the DICOMDIR lists for it (in its order)."""
    import pydicom
    from pydicom.fileset import FileSet

    try:
        fs = FileSet(pydicom.dcmread(str(path)))
    except Exception as exc:  # noqa: BLE001 - InvalidDicomError, ValueError, a broken record tree ...
        raise LoaderError(path, f"cannot read the DICOMDIR: {type(exc).__name__}: {exc}") from None
    groups: dict[str, list[Path]] = {}
    for inst in fs:
        try:
            uid = str(inst.SeriesInstanceUID)
            file = Path(inst.path)
        except Exception:  # noqa: BLE001 - a record without a series or a file: not an image we can read
            continue
        groups.setdefault(uid, []).append(file)
    return groups


def _choose(path: Path, groups: dict[str, list[Path]], series_uid: str | None) -> tuple[str, str]:
    if series_uid is not None:
        if series_uid not in groups:
            raise LoaderError(path, f"the DICOMDIR lists no series {series_uid!r} (found: {', '.join(sorted(groups))})")
        return series_uid, ""
    if len(groups) == 1:
        return next(iter(groups)), ""
    import pydicom

    from liverseg_studio.loaders import study

    headers: dict[str, list[tuple[Path, Any]]] = {}
    for uid, files in groups.items():
        items = []
        for f in files:
            try:
                items.append((f, pydicom.dcmread(str(f), stop_before_pixels=True)))
            except Exception:  # noqa: BLE001 - a listed file that is missing or broken
                continue
        if items:
            headers[uid] = items
    if not headers:
        raise LoaderError(path, "none of the files the DICOMDIR lists can be read")
    try:
        choice = study.choose(path.parent, study.summarise(path.parent, headers))
    except MultipleSeriesError as exc:
        raise MultipleSeriesError(path, exc.series) from None
    return choice.chosen.uid, choice.reason


def load(path: Path, options: Any) -> Volume:
    """The series of the DICOMDIR ``path`` (see the module docstring) as an HU volume."""
    from liverseg_studio.loaders import dicom_series

    path = Path(path)
    groups = series_files(path)
    if not groups:
        raise LoaderError(path, "the DICOMDIR lists no images")
    uid, reason = _choose(path, groups, options.series_uid)
    files = groups[uid]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise LoaderError(path, f"{len(missing)} of the {len(files)} files the DICOMDIR lists are missing (e.g. {missing[0]})")
    folder = Path(os.path.commonpath([str(f.parent) for f in files]))
    volume = dicom_series.load(folder, dataclasses.replace(options, series_uid=uid))
    meta = dict(volume.meta)
    meta["dicomdir"] = str(path)
    meta["dicomdir_series"] = len(groups)
    if reason:
        meta["series_choice"] = reason
    return dataclasses.replace(volume, meta=meta, source=str(path), loader=NAME)
