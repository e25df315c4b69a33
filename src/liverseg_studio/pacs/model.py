"""What a query returns, whichever protocol answered it (frozen records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from pydicom.dataset import Dataset

#: ``progress(done, total)``: instances retrieved or sent so far
Progress = Callable[[int, int], None]
#: polled between instances; True stops the transfer (``CancelledError``)
IsCancelled = Callable[[], bool]
#: ``store(sop_instance_uid, whole DICOM file bytes)``
StoreInstance = Callable[[str, bytes], None]


@dataclass(frozen=True)
class Query:
    patient_id: str = ""
    patient_name: str = ""
    accession: str = ""
    study_date: str = ""  # YYYYMMDD or a range YYYYMMDD-YYYYMMDD
    modality: str = ""
    study_uid: str = ""


@dataclass(frozen=True)
class SeriesInfo:
    study_uid: str
    series_uid: str
    modality: str = ""
    description: str = ""
    number: str = ""
    n_instances: int | None = None


@dataclass(frozen=True)
class StudyInfo:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    accession: str = ""
    description: str = ""
    modalities: str = ""
    series: tuple[SeriesInfo, ...] = field(default_factory=tuple)


def text(ds: Dataset | None, keyword: str) -> str:
    if ds is None:
        return ""
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or value.__class__.__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def study_from(ds: Dataset) -> StudyInfo:
    return StudyInfo(
        study_uid=text(ds, "StudyInstanceUID"),
        patient_id=text(ds, "PatientID"),
        patient_name=text(ds, "PatientName"),
        study_date=text(ds, "StudyDate"),
        accession=text(ds, "AccessionNumber"),
        description=text(ds, "StudyDescription"),
        modalities=text(ds, "ModalitiesInStudy"),
    )


def series_from(ds: Dataset, study_uid: str = "") -> SeriesInfo:
    n = text(ds, "NumberOfSeriesRelatedInstances")
    return SeriesInfo(
        study_uid=text(ds, "StudyInstanceUID") or study_uid,
        series_uid=text(ds, "SeriesInstanceUID"),
        modality=text(ds, "Modality"),
        description=text(ds, "SeriesDescription"),
        number=text(ds, "SeriesNumber"),
        n_instances=int(n) if n.isdigit() else None,
    )


class Client(Protocol):
    """What ``pacs.dimse.DimseClient`` and ``pacs.dicomweb.WebClient`` both offer."""

    protocol: str

    def find_studies(self, query: Query) -> list[StudyInfo]: ...

    def find_series(self, study_uid: str) -> list[SeriesInfo]: ...

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]: ...

    def retrieve(
        self,
        study_uid: str,
        series_uid: str,
        sop_uids: Sequence[str],
        store: StoreInstance,
        *,
        progress: Progress | None = None,
        is_cancelled: IsCancelled | None = None,
    ) -> None: ...

    def store(self, datasets: Sequence[Dataset], *, progress: Progress | None = None) -> None: ...
