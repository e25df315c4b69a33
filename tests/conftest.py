"""Shared test fixtures: synthetic CT phantoms written as NIfTI and DICOM.

Everything here is synthetic (no real patient data).  The plain helpers live
in ``tests/helpers/phantom.py``: import them with
``from helpers.phantom import make_phantom, write_ct_series, ct_dataset``
(``from conftest import ...`` is ambiguous once a test folder has its own
conftest.py).  They are re-exported here for older imports.
"""

from __future__ import annotations

import os

# Qt must never try to open a display in tests; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from helpers.phantom import (  # noqa: E402,F401  (re-exported)
    AIR_HU,
    BODY_HU,
    LIVER_HU,
    LPS_TO_RAS,
    TUMOUR_HU,
    Phantom,
    PhantomFiles,
    ct_dataset,
    make_phantom,
    phantom_affine,
    write_ct_series,
    write_nifti,
)


# -- fixtures -------------------------------------------------------------------
@pytest.fixture
def phantom() -> Phantom:
    """The default small phantom (12 x 64 x 64, spacing 2.5 x 0.8 x 0.8 mm)."""
    return make_phantom()


@pytest.fixture
def nifti_phantom(tmp_path: Path) -> PhantomFiles:
    """The default phantom as ``phantom.nii.gz`` (int16 HU) + ``phantom_labels.nii.gz`` (uint8)."""
    ph = make_phantom()
    img = write_nifti(tmp_path / "phantom.nii.gz", ph.hu, ph.affine, dtype="int16")
    lab = write_nifti(tmp_path / "phantom_labels.nii.gz", ph.labels, ph.affine, dtype="uint8")
    return PhantomFiles(path=img, labels_path=lab, phantom=ph)


@pytest.fixture
def dicom_series_phantom(tmp_path: Path) -> PhantomFiles:
    """The default phantom as a CT DICOM series in ``tmp_path/series`` with
    shuffled file names, plus its labels as ``phantom_labels.nii.gz``."""
    ph = make_phantom()
    folder = tmp_path / "series"
    write_ct_series(folder, ph.hu, ph.affine, shuffle_names=True)
    lab = write_nifti(tmp_path / "phantom_labels.nii.gz", ph.labels, ph.affine, dtype="uint8")
    return PhantomFiles(path=folder, labels_path=lab, phantom=ph)
