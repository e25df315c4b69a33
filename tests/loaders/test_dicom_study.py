"""Whole-study folders (issue 28): which series the rule picks, and why, in one line."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from helpers.dicom_forms import base_series, requires_ircad, study_folder
from helpers.phantom import make_phantom, write_ct_series
from liverseg_studio.core.errors import LoaderError, MultipleSeriesError
from liverseg_studio.loaders import study
from liverseg_studio.loaders.dicom_series import scan_study
from liverseg_studio.plugins.registry import LoadOptions


@requires_ircad
def test_study_folder_picks_portal_venous_and_says_why(tmp_path, loaders):
    ids = study_folder(tmp_path / "study")
    v = loaders.load(tmp_path / "study")
    assert v.meta["series_uid"] == ids["venous"]
    line = v.meta["series_choice"]
    assert "\n" not in line
    assert "PORTAL VENOUS" in line and "portal-venous phase by its description" in line
    assert "Topogram" in line and "localizer" in line
    # --series still picks another one
    a = loaders.load(tmp_path / "study", LoadOptions(series_uid=ids["arterial"]))
    np.testing.assert_array_equal(np.asarray(a.array), np.asarray(v.array) + 40)
    assert "series_choice" not in a.meta


@requires_ircad
def test_scan_study_lists_every_series(tmp_path):
    ids = study_folder(tmp_path / "study")
    choice = scan_study(tmp_path / "study")
    by_uid = {s.uid: s for s in choice.summaries}
    assert set(by_uid) == set(ids.values())
    assert by_uid[ids["scout"]].skipped and not by_uid[ids["venous"]].skipped
    assert by_uid[ids["arterial"]].phase == "arterial" and by_uid[ids["venous"]].phase == "portal venous"
    assert by_uid[ids["venous"]].n_images == 6 and by_uid[ids["venous"]].thickness_mm == pytest.approx(1.6)
    assert choice.chosen.uid == ids["venous"]


def _series(folder, shape, spacing_z, uid, desc, thickness=None, number=None, image_type=None):
    ph = make_phantom(shape=shape)
    aff = ph.affine.copy()
    aff[2, 2] = spacing_z
    paths = write_ct_series(folder, ph.hu, aff, series_uid=uid, series_description=desc)
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.SliceThickness = thickness or spacing_z
        if number is not None:
            ds.SeriesNumber = number
        if image_type:
            ds.ImageType = image_type
        ds.save_as(p)
    return paths


def test_thinnest_series_covering_most_is_chosen(tmp_path, loaders):
    _series(tmp_path / "thick", (6, 16, 16), 5.0, "1.2.3.1", "Abdomen 5mm", number=2)  # 25 mm
    _series(tmp_path / "thin", (21, 16, 16), 1.25, "1.2.3.2", "Abdomen 1.25mm", number=3)  # 25 mm
    _series(tmp_path / "short", (6, 16, 16), 1.0, "1.2.3.3", "Abdomen 1mm partial", number=4)  # 5 mm only
    v = loaders.load(tmp_path)
    assert v.meta["series_uid"] == "1.2.3.2"
    assert "thinnest complete series covering the most" in v.meta["series_choice"]


def test_derived_and_non_axial_series_skipped(tmp_path, loaders):
    _series(tmp_path / "ax", (5, 16, 16), 2.0, "1.2.3.1", "Abdomen", number=2)
    _series(tmp_path / "mip", (5, 16, 16), 1.0, "1.2.3.2", "MIP", number=3, image_type=["DERIVED", "SECONDARY", "MIP"])
    paths = _series(tmp_path / "cor", (5, 16, 16), 1.0, "1.2.3.3", "Coronal", number=4)
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.save_as(p)
    v = loaders.load(tmp_path)
    assert v.meta["series_uid"] == "1.2.3.1"
    line = v.meta["series_choice"]
    assert "derived" in line and "coronal slices, not axial" in line


def test_incomplete_series_skipped_when_a_complete_one_exists(tmp_path, loaders):
    paths = _series(tmp_path / "gappy", (8, 16, 16), 1.0, "1.2.3.1", "portal venous 1mm", number=2)
    paths[4].unlink()
    _series(tmp_path / "ok", (4, 16, 16), 2.0, "1.2.3.2", "portal venous 2mm", number=3)
    v = loaders.load(tmp_path)
    assert v.meta["series_uid"] == "1.2.3.2"
    assert "uneven slice spacing" in v.meta["series_choice"]


def test_nothing_to_segment_is_one_line(tmp_path, loaders):
    paths = _series(tmp_path / "gappy", (8, 16, 16), 1.0, "1.2.3.1", "venous", number=2)
    paths[4].unlink()
    _series(tmp_path / "scout", (2, 16, 16), 1.0, "1.2.3.2", "scout", number=1, image_type=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    with pytest.raises(LoaderError) as exc:
        loaders.load(tmp_path)
    text = str(exc.value)
    assert "\n" not in text and "uneven slice spacing" in text and "localizer" in text


def test_exact_tie_asks(tmp_path, loaders):
    _series(tmp_path / "a", (4, 16, 16), 2.0, "1.2.3.1", "arterial", number=2)
    _series(tmp_path / "d", (4, 16, 16), 2.0, "1.2.3.2", "delayed", number=3)
    with pytest.raises(MultipleSeriesError) as exc:
        loaders.load(tmp_path)
    assert {s[0] for s in exc.value.series} == {"1.2.3.1", "1.2.3.2"}


@pytest.mark.parametrize(
    "desc, phase",
    [
        ("PORTAL VENOUS 1.0 B30f", "portal venous"),
        ("Abd/Pel PV 3mm", "portal venous"),
        ("VENOUS PHASE", "portal venous"),
        ("ARTERIAL 1.0", "arterial"),
        ("Delayed 3 min", "delayed"),
        ("NATIVE 5mm", "non-contrast"),
        ("Abdomen 1.0 B30f", ""),
    ],
)
def test_phase_from_description(desc, phase):
    assert study.phase_of(desc) == phase


def test_scan_study_suggests_the_first_of_a_tie(tmp_path):
    _series(tmp_path / "a", (4, 16, 16), 2.0, "1.2.3.1", "arterial", number=2)
    _series(tmp_path / "d", (4, 16, 16), 2.0, "1.2.3.2", "delayed", number=3)
    choice = scan_study(tmp_path)
    assert choice.chosen.uid == "1.2.3.1" and "cannot choose" in choice.reason
