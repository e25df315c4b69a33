"""One interface over DIMSE and DICOMweb: pick the protocol, retrieve series into the cache,
resolve ``pacs://NODE/STUDY_UID[/SERIES_UID]`` inputs, and send results back."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from liverseg_studio.pacs.cache import SeriesCache
from liverseg_studio.pacs.config import Node, PacsConfig, PacsError
from liverseg_studio.pacs.model import Client, IsCancelled, Progress, SeriesInfo

SCHEME = "pacs://"
PROTOCOLS = ("auto", "dimse", "dicomweb")
#: modalities `segment` accepts from a PACS
SEGMENTABLE = ("CT",)


def open_client(config: PacsConfig, node_name: str, via: str = "auto") -> Client:
    """A client for ``node_name``: DIMSE unless the node retrieves by ``wado`` or has only a DICOMweb URL."""
    node = config.node(node_name)
    if via == "auto":
        via = "dicomweb" if (node.retrieve == "wado" or not node.has_dimse) else "dimse"
    if via == "dimse":
        from liverseg_studio.pacs.dimse import DimseClient

        return DimseClient(node, config.local)
    if via == "dicomweb":
        from liverseg_studio.pacs.dicomweb import WebClient

        return WebClient(node)
    raise PacsError(f"unknown protocol {via!r} (one of {', '.join(PROTOCOLS)})")


@dataclass(frozen=True)
class PacsRef:
    node: str
    study_uid: str
    series_uid: str = ""


def is_pacs_ref(text: str) -> bool:
    return str(text).startswith(SCHEME)


def parse_ref(text: str) -> PacsRef:
    rest = str(text)[len(SCHEME):].strip("/")
    parts = [p for p in rest.split("/") if p]
    if len(parts) not in (2, 3):
        raise PacsError(f"{text}: expected pacs://NODE/STUDY_UID or pacs://NODE/STUDY_UID/SERIES_UID")
    return PacsRef(*parts)


def choose_series(client: Client, node: str, study_uid: str, series_uid: str = "",
                  modalities: Sequence[str] = SEGMENTABLE) -> list[SeriesInfo]:
    """The series of a study to segment (every CT series, or the one named); PacsError if none."""
    series = client.find_series(study_uid)
    if not series:
        raise PacsError(f"study {study_uid} not found on PACS node {node!r}")
    if series_uid:
        series = [s for s in series if s.series_uid == series_uid]
        if not series:
            raise PacsError(f"series {series_uid} not found in study {study_uid} on PACS node {node!r}")
    chosen = [s for s in series if s.modality.upper() in modalities]
    if not chosen:
        found = ", ".join(sorted({s.modality or "?" for s in series}))
        raise PacsError(
            f"study {study_uid} on {node!r}: no {'/'.join(modalities)} series to segment (found {found})"
        )
    return chosen


def retrieve_series(
    client: Client,
    cache: SeriesCache,
    series: SeriesInfo,
    *,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
) -> Path:
    """The series' folder in the cache: retrieved if missing, resumed if a previous retrieval stopped.

    Only whole instances are ever written; the series appears in the cache only when complete.
    """
    done = cache.complete(series.study_uid, series.series_uid)
    if done is not None:
        if progress:
            n = sum(1 for _ in done.glob("*.dcm"))
            progress(n, n)
        return done
    expected = client.find_instances(series.study_uid, series.series_uid)
    if not expected:
        raise PacsError(f"series {series.series_uid}: the PACS lists no instances")
    have = cache.have(series.series_uid)
    missing = [uid for uid in expected if uid not in have]
    n_have = len(expected) - len(missing)

    def _progress(done_now: int, _total: int) -> None:
        if progress:
            progress(n_have + done_now, len(expected))

    def _store(sop: str, data: bytes) -> None:
        cache.write_instance(series.series_uid, sop, data)

    client.retrieve(series.study_uid, series.series_uid, missing, _store, n_total=len(expected),
                    progress=_progress, is_cancelled=is_cancelled)
    return cache.finish(series.study_uid, series.series_uid, expected)


def store_files(client: Client, paths: Iterable[str | os.PathLike[str]], *, progress: Progress | None = None) -> int:
    """Send DICOM files (a SEG, a report) to the node; returns how many."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    datasets = []
    for p in paths:
        try:
            datasets.append(dcmread(p))
        except (OSError, InvalidDicomError) as exc:
            raise PacsError(f"{p}: cannot read as DICOM: {exc}") from None
    if datasets:
        client.store(datasets, progress=progress)
    return len(datasets)


def describe_node(node: Node) -> str:
    return node.describe()
