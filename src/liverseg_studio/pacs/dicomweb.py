"""DICOMweb client on dicomweb-client: QIDO-RS searches, WADO-RS retrieval (instance by instance, so
that progress, cancel and resume work), STOW-RS storage."""

from __future__ import annotations

import io
from typing import Any, Callable, Sequence, TypeVar

from pydicom import dcmwrite
from pydicom.dataset import Dataset

from liverseg_studio.core.errors import CancelledError
from liverseg_studio.pacs.config import Node, PacsError
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

T = TypeVar("T")
#: results per QIDO-RS page
PAGE = 500


def dataset_bytes(ds: Dataset) -> bytes:
    """A whole DICOM file (preamble, file meta) for ``ds``."""
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


class WebClient:
    protocol = "dicomweb"

    def __init__(self, node: Node) -> None:
        if not node.has_dicomweb:
            raise PacsError(f"PACS node {node.name!r} has no dicomweb_url")
        import requests
        from dicomweb_client.api import DICOMwebClient

        class _Session(requests.Session):
            # QIDO-RS wildcards go as '*' and '?' (both legal in a query string): Orthanc matches
            # the percent-encoded %2A / %3F literally
            def send(self, request: Any, **kwargs: Any) -> Any:
                if request.url and "?" in request.url:
                    base, query = request.url.split("?", 1)
                    request.url = base + "?" + query.replace("%2A", "*").replace("%3F", "?")
                return super().send(request, **kwargs)

        self.node = node
        session = _Session()
        if node.tls_ca:
            session.verify = node.tls_ca
        if node.tls_cert:
            session.cert = (node.tls_cert, node.tls_key) if node.tls_key else node.tls_cert
        self.client = DICOMwebClient(url=node.dicomweb_url.rstrip("/"), session=session, timeout=node.timeout_s)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import requests

        try:
            return fn(*args, **kwargs)
        except requests.exceptions.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            if code == 404:
                raise PacsError(f"{self.node.describe()}: {what}: not found (HTTP 404)") from None
            if code in (401, 403):
                raise PacsError(f"{self.node.describe()} refused {what} (HTTP {code})") from None
            raise PacsError(f"{self.node.describe()}: {what} failed (HTTP {code})") from None
        except requests.exceptions.ConnectionError:
            raise PacsError(f"cannot reach {self.node.describe()} for {what} (no connection)") from None
        except requests.exceptions.Timeout:
            raise PacsError(f"{self.node.describe()}: {what} timed out") from None
        except requests.exceptions.RequestException as exc:
            raise PacsError(f"{self.node.describe()}: {what} failed: {exc}") from None

    @staticmethod
    def _datasets(items: list[dict]) -> list[Dataset]:
        return [Dataset.from_json(item) for item in items]

    def _search(self, what: str, fn: Callable[..., list[dict]], key: str, **kwargs: Any) -> list[dict]:
        """Every match, page by page (offset); stops at a page that adds nothing new (some servers
        ignore ``offset`` with some filters, and dicomweb-client's ``get_remaining`` then never ends)."""
        out: dict[str, dict] = {}
        for _page in range(1000):
            page = self._call(what, fn, offset=len(out), limit=PAGE, **kwargs) or []
            before = len(out)
            for item in page:
                uid = (item.get(key) or {}).get("Value", [""])[0]
                out.setdefault(uid or str(len(out)), item)
            if len(page) < PAGE or len(out) == before:
                break
        return list(out.values())

    def find_studies(self, query: Query) -> list[StudyInfo]:
        filters = {
            "PatientID": query.patient_id,
            "PatientName": query.patient_name,
            "AccessionNumber": query.accession,
            "StudyDate": query.study_date,
            "ModalitiesInStudy": query.modality,
            "StudyInstanceUID": query.study_uid,
        }
        filters = {k: v for k, v in filters.items() if v}
        fields = ["PatientID", "PatientName", "StudyDate", "AccessionNumber", "StudyDescription", "ModalitiesInStudy"]
        found = self._search("a study query", self.client.search_for_studies, "0020000D", search_filters=filters,
                             fields=fields)
        return [s for s in (study_from(d) for d in self._datasets(found)) if s.study_uid]

    def find_series(self, study_uid: str) -> list[SeriesInfo]:
        fields = ["Modality", "SeriesDescription", "SeriesNumber", "NumberOfSeriesRelatedInstances"]
        found = self._search("a series query", self.client.search_for_series, "0020000E",
                             study_instance_uid=study_uid, fields=fields)
        return [series_from(d, study_uid) for d in self._datasets(found) if text(d, "SeriesInstanceUID")]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        found = self._search("an instance query", self.client.search_for_instances, "00080018",
                             study_instance_uid=study_uid, series_instance_uid=series_uid)
        return sorted({text(d, "SOPInstanceUID") for d in self._datasets(found)} - {""})

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
        n = len(sop_uids)
        for i, sop in enumerate(sop_uids):
            if is_cancelled and is_cancelled():
                raise CancelledError(f"retrieval cancelled after {i} of {n} instance(s) (run again to resume)")
            ds = self._call(f"WADO-RS of instance {sop}", self.client.retrieve_instance, study_uid, series_uid, sop,
                            media_types=(("application/dicom", "*"),))
            store(sop, dataset_bytes(ds))
            if progress:
                progress(i + 1, n)

    def store(self, datasets: Sequence[Dataset], *, progress: Progress | None = None) -> None:
        response = self._call("STOW-RS", self.client.store_instances, list(datasets))
        failed = response.get("FailedSOPSequence") if response is not None else None
        if failed:
            reason = text(failed[0], "FailureReason")
            raise PacsError(f"{self.node.describe()} refused to store {len(failed)} instance(s) (reason {reason})")
        if progress:
            progress(len(datasets), len(datasets))
