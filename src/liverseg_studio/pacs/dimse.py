"""DIMSE client on pynetdicom: C-FIND, C-GET, C-MOVE (to our own storage SCP) and C-STORE.

Every exchange opens one association with pynetdicom's ``AE`` and turns pynetdicom's outcomes
(rejected, aborted, no connection, failure statuses) into one-line :class:`PacsError`\\ s.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Sequence

from pydicom.dataset import Dataset

from liverseg_studio.core.errors import CancelledError
from liverseg_studio.pacs.config import LocalNode, Node, PacsError
from liverseg_studio.pacs.model import (
    IsCancelled,
    Progress,
    Query,
    SeriesInfo,
    StoreInstance,
    StudyInfo,
    series_from,
    study_from,
    text,
)

#: C-FIND / C-GET statuses
_PENDING = (0xFF00, 0xFF01)


def storage_sop_classes() -> list[str]:
    """Storage SOP classes a retrieval accepts (CT first; pydicom's test files hold MR, CR, US ...)."""
    from pynetdicom import sop_class as sc

    names = [
        "CTImageStorage", "EnhancedCTImageStorage", "MRImageStorage", "EnhancedMRImageStorage",
        "SecondaryCaptureImageStorage", "SegmentationStorage", "ComputedRadiographyImageStorage",
        "DigitalXRayImageStorageForPresentation", "UltrasoundImageStorage", "UltrasoundMultiFrameImageStorage",
        "PositronEmissionTomographyImageStorage", "NuclearMedicineImageStorage", "RTImageStorage",
        "RTDoseStorage", "RTStructureSetStorage", "EncapsulatedPDFStorage", "ComprehensiveSRStorage",
        "BasicTextSRStorage", "EnhancedSRStorage", "XRayAngiographicImageStorage",
        "MultiFrameGrayscaleByteSecondaryCaptureImageStorage", "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
        "MultiFrameTrueColorSecondaryCaptureImageStorage", "DigitalMammographyXRayImageStorageForPresentation",
    ]
    return [getattr(sc, n) for n in names if hasattr(sc, n)]


def _transfer_syntaxes() -> list[str]:
    from pynetdicom import ALL_TRANSFER_SYNTAXES

    return list(ALL_TRANSFER_SYNTAXES)


def _unreachable(host: str, port: int, timeout: float) -> str:
    """Why a TCP connection to ``host:port`` fails ('' if it opens): tells "unreachable" from "aborted"."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ""
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _status(ds: Dataset | None) -> int | None:
    return int(ds.Status) if ds is not None and "Status" in ds else None


class DimseClient:
    protocol = "dimse"

    def __init__(self, node: Node, local: LocalNode) -> None:
        if not node.has_dimse:
            raise PacsError(f"PACS node {node.name!r} has no DIMSE address (ae_title, host, port)")
        self.node = node
        self.local = local

    # -- associations ----------------------------------------------------------------------
    def _ae(self) -> Any:
        from pynetdicom import AE

        ae = AE(ae_title=self.local.ae_title)
        t = self.node.timeout_s
        ae.acse_timeout = t
        ae.dimse_timeout = t
        ae.network_timeout = t
        ae.connection_timeout = min(t, 10.0)
        return ae

    @contextlib.contextmanager
    def _association(self, ae: Any, what: str, **kwargs: Any) -> Iterator[Any]:
        n = self.node
        tls = n.ssl_context()
        assoc = ae.associate(
            n.host, n.port, ae_title=n.ae_title, tls_args=(tls, n.host) if tls else None, **kwargs
        )
        if not assoc.is_established:
            if assoc.is_rejected:
                raise PacsError(
                    f"{n.describe()} refused the association for {what} (called AE {n.ae_title!r}, "
                    f"calling AE {self.local.ae_title!r}: check both AE titles on the PACS)"
                )
            why = _unreachable(n.host, n.port, min(n.timeout_s, 5.0))
            if why:
                raise PacsError(f"cannot reach {n.describe()} for {what} ({why})")
            raise PacsError(f"{n.describe()} aborted the association for {what}")
        try:
            yield assoc
        except BaseException:  # Ctrl-C, cancel, an error: drop the association at once
            if assoc.is_established:
                assoc.abort()
            raise
        if assoc.is_established:
            assoc.release()

    def _check_context(self, assoc: Any, abstract: str, what: str) -> None:
        if not any(cx.abstract_syntax == abstract for cx in assoc.accepted_contexts):
            raise PacsError(f"{self.node.describe()} does not offer {what}")

    # -- C-FIND ------------------------------------------------------------------------------
    def _find(self, identifier: Dataset, what: str) -> list[Dataset]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

        ae = self._ae()
        ae.add_requested_context(FIND)
        out: list[Dataset] = []
        with self._association(ae, what) as assoc:
            self._check_context(assoc, FIND, "C-FIND (study root)")
            for status, ident in assoc.send_c_find(identifier, FIND):
                code = _status(status)
                if code is None:
                    raise PacsError(f"{self.node.describe()}: association dropped during {what}")
                if code in _PENDING:
                    if ident is not None:
                        out.append(ident)
                elif code != 0x0000:
                    raise PacsError(f"{self.node.describe()} refused {what} (C-FIND status 0x{code:04X})")
        return out

    def find_studies(self, query: Query) -> list[StudyInfo]:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = query.study_uid
        ds.PatientID = query.patient_id
        ds.PatientName = query.patient_name
        ds.AccessionNumber = query.accession
        ds.StudyDate = query.study_date
        ds.ModalitiesInStudy = query.modality
        ds.StudyDescription = ""
        studies = [study_from(d) for d in self._find(ds, "a study query")]
        return [s for s in studies if s.study_uid]

    def find_series(self, study_uid: str) -> list[SeriesInfo]:
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = ""
        ds.Modality = ""
        ds.SeriesDescription = ""
        ds.SeriesNumber = ""
        ds.NumberOfSeriesRelatedInstances = ""
        return [series_from(d, study_uid) for d in self._find(ds, "a series query") if text(d, "SeriesInstanceUID")]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ""
        return sorted({text(d, "SOPInstanceUID") for d in self._find(ds, "an instance query")} - {""})

    # -- C-GET / C-MOVE ------------------------------------------------------------------------
    def _retrieve_identifier(self, study_uid: str, series_uid: str, sop_uids: Sequence[str], n_total: int) -> Dataset:
        ds = Dataset()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        if len(sop_uids) < n_total:  # resume: only what is missing
            ds.QueryRetrieveLevel = "IMAGE"
            ds.SOPInstanceUID = list(sop_uids)
        else:
            ds.QueryRetrieveLevel = "SERIES"
        return ds

    def retrieve(
        self,
        study_uid: str,
        series_uid: str,
        sop_uids: Sequence[str],
        store: StoreInstance,
        *,
        n_total: int | None = None,
        progress: Progress | None = None,
        is_cancelled: IsCancelled | None = None,
    ) -> None:
        """Retrieve ``sop_uids`` of a series (``store`` gets each one); the node's ``retrieve`` picks C-GET or C-MOVE."""
        if not sop_uids:
            return
        n_total = n_total or len(sop_uids)
        if self.node.retrieve == "move":
            self._move(study_uid, series_uid, sop_uids, store, n_total, progress, is_cancelled)
        else:
            self._get(study_uid, series_uid, sop_uids, store, n_total, progress, is_cancelled)

    def _handler(self, wanted: set[str], store: StoreInstance, counter: list[int], errors: list[str]) -> Any:
        lock = threading.Lock()

        def handle_store(event: Any) -> int:
            sop = str(event.request.AffectedSOPInstanceUID)
            if sop not in wanted:
                return 0x0000  # not ours (a resent or unrelated instance): accept, ignore
            try:
                store(sop, event.encoded_dataset())
            except Exception as exc:  # noqa: BLE001 - reported by the retrieving thread
                errors.append(f"{sop}: {exc}")
                return 0xA700
            with lock:
                counter[0] += 1
            return 0x0000

        return handle_store

    def _run_retrieve(
        self, assoc: Any, responses: Iterator[Any], what: str, wanted: set[str], counter: list[int],
        errors: list[str], progress: Progress | None, is_cancelled: IsCancelled | None,
    ) -> None:
        n = len(wanted)
        final: int | None = None
        for status, _ident in responses:
            if progress:
                progress(counter[0], n)
            if is_cancelled and is_cancelled():
                assoc.abort()
                raise CancelledError(f"retrieval cancelled after {counter[0]} of {n} instance(s) (run again to resume)")
            code = _status(status)
            if code is None:
                raise PacsError(
                    f"{self.node.describe()}: association dropped during {what} after {counter[0]} of {n} "
                    "instance(s) (run the same command again to resume)"
                )
            if code not in _PENDING:
                final = code
        if errors:
            raise PacsError(f"cannot store a retrieved instance in the cache: {errors[0]}")
        if final not in (0x0000, 0xB000) and counter[0] < n:
            raise PacsError(f"{self.node.describe()} refused {what} (status 0x{final or 0:04X})")
        if progress:
            progress(counter[0], n)

    def _get(self, study_uid, series_uid, sop_uids, store, n_total, progress, is_cancelled) -> None:  # noqa: ANN001
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

        ae = self._ae()
        ae.add_requested_context(GET)
        roles = []
        for uid in storage_sop_classes():
            ae.add_requested_context(uid, _transfer_syntaxes())
            roles.append(build_role(uid, scp_role=True))
        wanted, counter, errors = set(sop_uids), [0], []
        handlers = [(evt.EVT_C_STORE, self._handler(wanted, store, counter, errors))]
        with self._association(ae, "C-GET", ext_neg=roles, evt_handlers=handlers) as assoc:
            self._check_context(assoc, GET, "C-GET (study root)")
            ident = self._retrieve_identifier(study_uid, series_uid, sop_uids, n_total)
            self._run_retrieve(assoc, assoc.send_c_get(ident, GET), "C-GET", wanted, counter, errors,
                               progress, is_cancelled)

    def _move(self, study_uid, series_uid, sop_uids, store, n_total, progress, is_cancelled) -> None:  # noqa: ANN001
        from pynetdicom import evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

        wanted, counter, errors = set(sop_uids), [0], []
        scp = self._ae()
        for uid in storage_sop_classes():
            scp.add_supported_context(uid, _transfer_syntaxes())
        try:
            server = scp.start_server(
                (self.local.host, self.local.port), block=False,
                evt_handlers=[(evt.EVT_C_STORE, self._handler(wanted, store, counter, errors))],
            )
        except OSError as exc:
            raise PacsError(f"C-MOVE: cannot listen on port {self.local.port} for the images: {exc.strerror}") from None
        try:
            ae = self._ae()
            ae.add_requested_context(MOVE)
            with self._association(ae, "C-MOVE") as assoc:
                self._check_context(assoc, MOVE, "C-MOVE (study root)")
                ident = self._retrieve_identifier(study_uid, series_uid, sop_uids, n_total)
                responses = assoc.send_c_move(ident, self.local.ae_title, MOVE)
                self._run_retrieve(assoc, responses, f"C-MOVE to {self.local.ae_title}", wanted, counter, errors,
                                   progress, is_cancelled)
        finally:
            server.shutdown()

    # -- C-STORE ------------------------------------------------------------------------------
    def store(self, datasets: Sequence[Dataset], *, progress: Progress | None = None) -> None:
        ae = self._ae()
        for sop_class, ts in sorted({(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets}):
            ae.add_requested_context(sop_class, [ts])
        with self._association(ae, "C-STORE") as assoc:
            for i, ds in enumerate(datasets, start=1):
                status = assoc.send_c_store(ds)
                code = _status(status)
                if code is None:
                    raise PacsError(f"{self.node.describe()}: association dropped during C-STORE")
                if code not in (0x0000, 0xB000, 0xB007, 0xB006):
                    raise PacsError(
                        f"{self.node.describe()} refused to store {ds.SOPInstanceUID} (C-STORE status 0x{code:04X})"
                    )
                if progress:
                    progress(i, len(datasets))
