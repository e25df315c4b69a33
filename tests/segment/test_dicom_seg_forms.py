"""DICOM SEG from compressed series and from a multi-frame CT (issue 28): dciodvfy 0 errors, highdicom reads
it back with every plane on its source image or frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from helpers.dciodvfy import requires_dciodvfy, run_dciodvfy
from helpers.dicom_forms import LOSSLESS_DCMTK, base_series, dcmtk_form, multiframe, pydicom_form, requires_dcmtk, requires_ircad
from liverseg_studio.backends.base import Prediction
from liverseg_studio.plugins.manager import get_plugin_manager
from liverseg_studio.plugins.registry import LoadOptions
from liverseg_studio.segment import exporters as ex
from liverseg_studio.segment.pipeline import segment_volume

pytestmark = [requires_ircad, requires_dciodvfy]


class BoxBackend:
    """Liver in a box, tumour inside, different on every slice (so a frame mix-up shows)."""

    name = "box"

    def predict(self, volume, *, progress=None, is_cancelled=None):
        nz, ny, nx = volume.shape[:3]
        lab = np.zeros((nz, ny, nx), dtype=np.uint8)
        for k in range(nz):
            lab[k, 40 : 120 + 10 * k, 30:130] = 1
            lab[k, 60 : 70 + 4 * k, 60:80] = 2
        return Prediction(labels=lab)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segforms") / "series"
    base_series(folder)
    return folder


def _seg(path: Path, tmp_path: Path):
    vol = get_plugin_manager().loaders.load(path, LoadOptions())
    res = segment_volume(vol, BoxBackend(), postprocess=False)
    seg_path = ex.write_dicom_seg(res, tmp_path / "seg.dcm")
    n_errors, output = run_dciodvfy(seg_path)
    assert n_errors == 0, output
    return vol, res, seg_path


@requires_dcmtk
@pytest.mark.parametrize("form", ["jpeg-lossless-sv1", "rle"])
def test_seg_of_compressed_series(form, plain, tmp_path):
    import highdicom as hd

    folder = dcmtk_form(plain, tmp_path / form, LOSSLESS_DCMTK[form])
    vol, res, seg_path = _seg(folder, tmp_path)
    seg = hd.seg.segread(str(seg_path))
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in vol.meta["files"]]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True, skip_overlap_checks=True)
    np.testing.assert_array_equal(pixels, np.asarray(res.labels))


def test_seg_of_jpeg2000_series(plain, tmp_path):
    import highdicom as hd
    from pydicom.uid import JPEG2000Lossless

    folder = pydicom_form(plain, tmp_path / "j2k", JPEG2000Lossless)
    vol, res, seg_path = _seg(folder, tmp_path)
    assert hd.seg.segread(str(seg_path)).number_of_frames > 0


@pytest.mark.parametrize("reverse", [False, True])
def test_seg_of_multiframe_references_its_frames(plain, tmp_path, reverse):
    import highdicom as hd

    path = multiframe(plain, tmp_path / "ct.dcm", reverse=reverse)
    vol, res, seg_path = _seg(path, tmp_path)
    seg = hd.seg.segread(str(seg_path))
    src = pydicom.dcmread(path, stop_before_pixels=True)
    frame_numbers = list(range(1, 7))
    pixels = seg.get_pixels_by_source_frame(
        source_sop_instance_uid=src.SOPInstanceUID, source_frame_numbers=frame_numbers,
        combine_segments=True, skip_overlap_checks=True,
    )
    # frame f of the file is volume slice k where meta["frame_numbers"][k] == f
    by_frame = {f: k for k, f in enumerate(vol.meta["frame_numbers"])}
    expected = np.stack([np.asarray(res.labels[by_frame[f]]) for f in frame_numbers])
    np.testing.assert_array_equal(pixels, expected)
