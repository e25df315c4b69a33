"""A misbehaving DICOM node for the refusal tests, on pynetdicom's own SCP handlers: it answers C-FIND
(every instance of one series) and C-GET, but drops the association or leaves instances out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from pacs_orthanc import free_port

FAKE_AET = "FAKEPACS"


class FakePacs:
    def __init__(self, files: list[Path], *, drop_after: int | None = None, omit: int = 0) -> None:
        self.datasets = [pydicom.dcmread(p) for p in files]
        self.drop_after = drop_after  # abort the association after this many C-GET sub-operations
        self.omit = omit  # leave this many instances out of a C-GET, and report success
        self.port = free_port()
        self.server: Any = None
        self.gets = 0

    def _find(self, event: Any):
        ident = event.identifier
        level = ident.QueryRetrieveLevel
        seen = set()
        for ds in self.datasets:
            out = Dataset()
            out.QueryRetrieveLevel = level
            for kw in ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "PatientID", "PatientName"):
                setattr(out, kw, ds.get(kw, ""))
            if level == "IMAGE":
                out.SOPInstanceUID = ds.SOPInstanceUID
            elif level == "SERIES":
                out.NumberOfSeriesRelatedInstances = len(self.datasets)
            key = out.get("SOPInstanceUID") or out.get("SeriesInstanceUID") or out.StudyInstanceUID
            if key in seen:
                continue
            seen.add(key)
            yield 0xFF00, out

    def _get(self, event: Any):
        self.gets += 1
        wanted = event.identifier.get("SOPInstanceUID")
        wanted = set([wanted] if isinstance(wanted, str) else (wanted or []))
        todo = [d for d in self.datasets if not wanted or d.SOPInstanceUID in wanted]
        todo = todo[: len(todo) - self.omit] if self.omit else todo
        yield len(todo)
        for i, ds in enumerate(todo):
            if self.drop_after is not None and i == self.drop_after:
                event.assoc.abort()
                return
            yield 0xFF00, ds

    def start(self) -> "FakePacs":
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
        from pynetdicom.sop_class import (
            CTImageStorage,
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelGet,
        )

        ae = AE(ae_title=FAKE_AET)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
        ae.add_supported_context(CTImageStorage, ALL_TRANSFER_SYNTAXES, scp_role=True, scu_role=True)
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_FIND, self._find), (evt.EVT_C_GET, self._get)])
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()

    def config_toml(self, path: Path) -> Path:
        path.write_text(
            '[local]\nae_title = "LIVERSEG"\n\n[nodes.fake]\n'
            f'ae_title = "{FAKE_AET}"\nhost = "127.0.0.1"\nport = {self.port}\ntimeout_s = 10\n'
        )
        return path
