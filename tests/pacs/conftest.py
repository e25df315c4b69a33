"""Fixtures of the PACS tests: one real Orthanc per session, filled with a small 6-slice subset of
3D-IRCADb 1.01 (helpers.dicom_forms.base_series), pydicom's CT_small and MR_small."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.dicom_forms import IRCAD_CT, base_series
from pacs_orthanc import Orthanc, start_orthanc


@dataclass(frozen=True)
class Filled:
    orthanc: Orthanc
    ct_study: str  # the 6-slice ircad subset
    ct_series: str
    ct_files: tuple[Path, ...]
    mr_study: str  # pydicom's MR_small: a non-CT study


def _uids(path: Path) -> tuple[str, str]:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory):
    o = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield o
    o.stop()


@pytest.fixture(scope="session")
def filled(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    from pydicom.data import get_testdata_file

    if not IRCAD_CT.is_dir():
        pytest.skip(f"shared data absent: {IRCAD_CT}")
    folder = tmp_path_factory.mktemp("subset")
    files = base_series(folder / "ct")
    orthanc.upload(files)
    mr = Path(get_testdata_file("MR_small.dcm"))
    ct_small = Path(get_testdata_file("CT_small.dcm"))
    orthanc.upload([mr, ct_small])
    study, series = _uids(files[0])
    return Filled(orthanc, study, series, tuple(files), _uids(mr)[0])
