"""``liverseg listen``: a DICOM node (C-STORE SCP on pynetdicom) that segments the CT series it receives.

* Instances are written whole (atomically) into ``WORK/spool/.partial/<SeriesInstanceUID>/``.
* A series is complete when no instance of it arrived for ``quiet_s`` seconds.
* A complete CT series goes through the same pipeline as ``liverseg segment`` (loader plugins,
  ``segment_volume``, ``export_outputs``: the DICOM SEG and the JSON report in ``WORK/out/<series>/``),
  and the SEG is sent (C-STORE / STOW-RS) to the destination node.
* The journal (``WORK/journal.jsonl``, :mod:`pacs.journal`) makes it idempotent: a series is segmented
  and sent once, across kill and restart; instances of a finished series that arrive again are ignored.
  The SEG's UIDs are derived from the source series' UID, so even a send repeated after a crash
  (sent, killed before ``done`` was journalled) replaces the same instance in the PACS.
* Only calling AE titles on the allow-list may associate (pynetdicom's ``require_calling_aet``);
  with a certificate the server speaks TLS.
* Log lines are JSON objects on stderr, one per event.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TextIO

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.pacs.cache import SeriesCache
from liverseg_studio.pacs.journal import Journal

SEGMENTABLE = ("CT",)


class Log:
    """Structured log lines (JSON, one per event) on a stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def __call__(self, event: str, level: str = "info", **fields: Any) -> None:
        rec = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "level": level,
               "event": event, **fields}
        with self._lock:
            self.stream.write(json.dumps(rec, default=str) + "\n")
            self.stream.flush()


@dataclass
class ListenOptions:
    work: Path
    ae_title: str = "LIVERSEG"
    host: str = "127.0.0.1"
    port: int = 11112
    quiet_s: float = 10.0
    allow: tuple[str, ...] = ()  # empty: any calling AE
    once: bool = False
    max_wait_s: float | None = None  # --once: give up when nothing arrives for this long
    ssl_context: Any = None
    send: Callable[[Path], None] | None = None  # sends one SEG file to the destination
    destination: str = ""
    segment: Callable[[Path, Path, str], Path] | None = None  # (series folder, out dir, name) -> SEG path
    poll_s: float = 0.2


@dataclass
class _Pending:
    study: str
    modality: str
    last: float
    n: int = 0
    calling: str = ""


def seg_uids(series_uid: str) -> tuple[str, str]:
    """Deterministic (SeriesInstanceUID, SOPInstanceUID) of the SEG made from ``series_uid``."""
    from pydicom.uid import generate_uid

    return (generate_uid(entropy_srcs=["liverseg-seg-series", series_uid]),
            generate_uid(entropy_srcs=["liverseg-seg-instance", series_uid]))


def stamp_seg_uids(path: Path, series_uid: str) -> None:
    """Give the SEG file at ``path`` its deterministic UIDs (rewritten atomically)."""
    import pydicom

    from liverseg_studio.core.io import atomic_write

    ds = pydicom.dcmread(path)
    ds.SeriesInstanceUID, ds.SOPInstanceUID = seg_uids(series_uid)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    atomic_write(path, lambda tmp: ds.save_as(tmp, enforce_file_format=True), overwrite=True)


class Listener:
    def __init__(self, opts: ListenOptions, log: Log | None = None) -> None:
        self.o = opts
        self.log = log or Log()
        self.o.work.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.o.work / "journal.jsonl")
        self.spool = SeriesCache(self.o.work / "spool")
        self.out = self.o.work / "out"
        self._lock = threading.Lock()
        self.pending: dict[str, _Pending] = {}
        self.active_assocs = 0
        self.processed = 0
        self.failed = 0
        self.received_any = False
        self.server: Any = None
        now = time.monotonic()
        for uid, st in self.journal.open_series().items():  # restart: what was under way
            have = self.spool.have(uid)
            if have:
                self.pending[uid] = _Pending(st.get("study", ""), st.get("modality", ""), now, len(have))
                self.log("resume", series=uid, instances=len(have), state=st.get("event"))

    # -- SCP handlers (pynetdicom threads) ---------------------------------------------------------
    def _on_store(self, event: Any) -> int:
        try:
            ds = event.dataset
            series = str(ds.SeriesInstanceUID)
            sop = str(event.request.AffectedSOPInstanceUID)
            calling = str(event.assoc.requestor.ae_title).strip()
        except Exception as exc:  # noqa: BLE001 - a malformed dataset: refuse this instance
            self.log("refused-instance", level="warning", reason=f"{type(exc).__name__}: {exc}")
            return 0xC210
        self.received_any = True
        if self.journal.is_final(series):
            self.log("ignored", series=series, sop=sop, reason=f"series already {self.journal.status(series)}")
            return 0x0000
        try:
            self.spool.write_instance(series, sop, event.encoded_dataset())
        except (OSError, LiversegError) as exc:
            self.log("store-failed", level="error", series=series, sop=sop, reason=str(exc))
            return 0xA700
        first = False
        with self._lock:
            p = self.pending.get(series)
            if p is None:
                p = self.pending[series] = _Pending(str(ds.get("StudyInstanceUID", "")), str(ds.get("Modality", "")),
                                                   time.monotonic(), 0, calling)
                first = self.journal.status(series) is None
            p.last = time.monotonic()
            p.n += 1
        if first:
            self.journal.record(series, "received", study=p.study, modality=p.modality, calling=calling)
            self.log("series-started", series=series, study=p.study, modality=p.modality, calling=calling)
        return 0x0000

    def _on_assoc(self, delta: int) -> Callable[[Any], None]:
        def handler(event: Any) -> None:
            with self._lock:
                self.active_assocs += delta
            self.log("association-open" if delta > 0 else "association-closed",
                     calling=str(event.assoc.requestor.ae_title).strip(), address=event.assoc.requestor.address)

        return handler

    def _on_rejected(self, event: Any) -> None:
        self.log("association-rejected", level="warning", calling=str(event.assoc.requestor.ae_title).strip(),
                 address=event.assoc.requestor.address, reason="calling AE title not on the allow-list")

    # -- server ------------------------------------------------------------------------------------
    def start(self) -> None:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
        from pynetdicom.presentation import StoragePresentationContexts

        from liverseg_studio.pacs.config import PacsError

        ae = AE(ae_title=self.o.ae_title)
        for cx in StoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        from pynetdicom.sop_class import Verification

        ae.add_supported_context(Verification)
        if self.o.allow:
            ae.require_calling_aet = list(self.o.allow)
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_ACCEPTED, self._on_assoc(+1)),
            (evt.EVT_RELEASED, self._on_assoc(-1)),
            (evt.EVT_ABORTED, self._on_assoc(-1)),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        try:
            self.server = ae.start_server((self.o.host, self.o.port), block=False, evt_handlers=handlers,
                                          ssl_context=self.o.ssl_context)
        except OSError as exc:
            raise PacsError(f"cannot listen on {self.o.host}:{self.o.port}: {exc.strerror or exc}") from None
        self.log("listening", ae_title=self.o.ae_title, host=self.o.host, port=self.server.server_address[1],
                 tls=self.o.ssl_context is not None, allow=list(self.o.allow) or "any", quiet_s=self.o.quiet_s,
                 destination=self.o.destination or None, work=str(self.o.work))

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    # -- completion and processing (main thread) -----------------------------------------------------
    def due(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [uid for uid, p in self.pending.items() if now - p.last >= self.o.quiet_s]

    def process(self, series: str) -> None:
        with self._lock:
            p = self.pending.pop(series)
        if self.journal.is_final(series):
            return
        folder = self.spool.partial_dir(series)
        n = len(self.spool.have(series))
        if p.modality.upper() not in SEGMENTABLE:
            self.journal.record(series, "skipped", reason=f"modality {p.modality or '?'}, not CT")
            self.log("skipped", series=series, modality=p.modality, reason="not a CT series")
            shutil.rmtree(folder, ignore_errors=True)
            return
        self.journal.record(series, "started", study=p.study, modality=p.modality, instances=n)
        self.log("segmenting", series=series, instances=n)
        t0 = time.perf_counter()
        try:
            out_dir = self.out / series
            out_dir.mkdir(parents=True, exist_ok=True)
            assert self.o.segment is not None
            seg = self.o.segment(folder, out_dir, series)
            stamp_seg_uids(seg, series)
            if self.o.send is not None:
                self.o.send(seg)
                self.log("sent", series=series, seg=str(seg), destination=self.o.destination)
        except LiversegError as exc:
            self.failed += 1
            self.journal.record(series, "skipped", reason=str(exc))
            self.log("failed", level="error", series=series, reason=" ".join(str(exc).split()))
            return
        except Exception as exc:  # noqa: BLE001 - keep serving; retried at the next start
            self.failed += 1
            self.journal.record(series, "failed", reason=f"{type(exc).__name__}: {exc}")
            self.log("failed", level="error", series=series, reason=f"internal: {type(exc).__name__}: {exc}")
            return
        self.journal.record(series, "done", seg=str(seg), destination=self.o.destination,
                            seconds=round(time.perf_counter() - t0, 2))
        self.processed += 1
        self.log("done", series=series, seg=str(seg), seconds=round(time.perf_counter() - t0, 2))
        shutil.rmtree(folder, ignore_errors=True)

    def serve(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Run until interrupted (or, with ``once``, until what arrived is handled); the exit code."""
        self.start()
        started = time.monotonic()
        seen_any = bool(self.pending)
        try:
            while not should_stop():
                for series in self.due():
                    self.process(series)
                with self._lock:
                    seen_any = seen_any or bool(self.pending) or self.received_any
                    idle = not self.pending and self.active_assocs == 0
                if self.o.once and idle and (self.processed or self.failed or seen_any):
                    break
                if self.o.once and self.o.max_wait_s is not None and not seen_any \
                        and time.monotonic() - started > self.o.max_wait_s:
                    self.log("nothing-received", level="warning", waited_s=self.o.max_wait_s)
                    return 2
                time.sleep(self.o.poll_s)
        finally:
            self.stop()
            self.log("stopped", processed=self.processed, failed=self.failed)
        return 2 if self.failed else 0


def pipeline_segmenter(backend: Any, *, postprocess: bool = True, min_component_mm3: float | None = None,
                       progress_stream: TextIO | None = None) -> Callable[[Path, Path, str], Path]:
    """``segment(folder, out_dir, name) -> SEG path`` through ``liverseg segment``'s pipeline and exporters."""

    def segment(folder: Path, out_dir: Path, name: str) -> Path:
        from liverseg_studio.plugins.manager import get_plugin_manager
        from liverseg_studio.plugins.registry import LoadOptions
        from liverseg_studio.segment.exporters import export_outputs
        from liverseg_studio.segment.pipeline import segment_volume

        pm = get_plugin_manager()
        volume = pm.loaders.load(folder, LoadOptions())
        kwargs: dict[str, Any] = {"postprocess": postprocess}
        if min_component_mm3 is not None:
            kwargs["min_component_mm3"] = min_component_mm3
        result = segment_volume(volume, backend, **kwargs)
        outcome = export_outputs(result, out_dir, name, ("seg", "report"), explicit_formats=True, overwrite=True,
                                 input_path=folder)
        if "dicom_seg" not in outcome.written:
            why = outcome.failed.get("seg") or outcome.skipped.get("seg") or "not written"
            raise LiversegError(f"series {name}: DICOM SEG not written: {why}")
        return Path(outcome.written["dicom_seg"])

    return segment
