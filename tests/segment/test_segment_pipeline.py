"""segment_volume: progress, cancellation, checks of backend output, post-processing, model info."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from segment_helpers import LIVER_HU, TruthBackend, make_phantom

from liverseg_studio.backends.base import Prediction
from liverseg_studio.core.errors import BackendError, CancelledError, LiversegError
from liverseg_studio.segment import SegmentationResult, model_info, segment_volume


@pytest.fixture(scope="module")
def small():
    return make_phantom((12, 48, 48), (2.5, 0.8, 0.8))


def test_result_matches_truth_with_stats_and_timings(small):
    progress = []
    res = segment_volume(small.volume(), TruthBackend(), progress=lambda d, t: progress.append((d, t)))
    assert isinstance(res, SegmentationResult)
    np.testing.assert_array_equal(res.labels, small.labels)
    assert res.labels.dtype == np.uint8 and res.labels.shape == small.shape
    assert progress[-1] == (12, 12) and len(progress) == 3  # batches of 4
    vox = 2.5 * 0.8 * 0.8
    assert res.stats.liver_ml == pytest.approx(np.count_nonzero(small.labels >= 1) * vox / 1000)
    assert res.stats.tumour_voxels == np.count_nonzero(small.labels == 2)
    for key in ("inference", "postprocess", "volumetry", "total", "backend_preprocess"):
        assert res.timings[key] >= 0
    assert res.backend == "truth"
    assert res.model.name == "truth-model" and res.model.version == "9.9.9"
    assert res.model.sha256 == "ab" * 32 and res.model.file == "model.int8.onnx"
    assert res.postprocessed and res.postprocess_report is not None
    with pytest.raises(Exception):
        res.labels = None  # frozen


def test_postprocess_keeps_raw_labels(small):
    vol = small.volume()
    hu = vol.array.copy()
    hu[0, 40:44, 40:44] = LIVER_HU  # a distant island
    vol = vol.with_array(hu)
    res = segment_volume(vol, TruthBackend())
    assert res.raw_labels[0, 40:44, 40:44].all()
    assert not res.labels[0, 40:44, 40:44].any()
    off = segment_volume(vol, TruthBackend(), postprocess=False)
    assert off.labels is off.raw_labels and off.labels[0, 40:44, 40:44].all()
    assert not off.postprocessed and off.postprocess_report is None


def test_cancellation_before_and_during(small):
    backend = TruthBackend()
    with pytest.raises(CancelledError):
        segment_volume(small.volume(), backend, is_cancelled=lambda: True)
    assert backend.calls == 0
    polls = []

    def cancel_after_first_batch() -> bool:
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(CancelledError):
        segment_volume(small.volume(), backend, is_cancelled=cancel_after_first_batch)
    assert backend.calls == 1


class _Bad:
    name = "bad"

    def __init__(self, labels=None, exc=None):
        self.labels, self.exc = labels, exc

    def predict(self, volume, *, progress=None, is_cancelled=None):
        if self.exc is not None:
            raise self.exc
        return Prediction(labels=self.labels)


def test_backend_output_is_checked(small):
    vol = small.volume()
    with pytest.raises(BackendError, match="shape"):
        segment_volume(vol, _Bad(np.zeros((12, 48, 47), np.uint8)))
    with pytest.raises(BackendError, match="label value 3"):
        segment_volume(vol, _Bad(np.full(small.shape, 3, np.uint8)))
    with pytest.raises(BackendError, match="float"):
        segment_volume(vol, _Bad(np.zeros(small.shape, np.float32)))
    res = segment_volume(vol, _Bad(small.labels.astype(np.int64)))
    assert res.labels.dtype == np.uint8


def test_backend_exceptions_become_backend_errors(small):
    with pytest.raises(BackendError, match="RuntimeError: boom"):
        segment_volume(small.volume(), _Bad(exc=RuntimeError("boom")))
    with pytest.raises(LiversegError, match="no model"):
        segment_volume(small.volume(), _Bad(exc=LiversegError("no model")))


def test_model_info_from_a_model_card_object():
    from liverseg_studio.core.modelcard import ModelCard

    card = ModelCard(
        name="liverseg-resnet34-unet",
        version="1.2.0",
        files={
            "onnx_int8": {"path": "model.int8.onnx", "sha256": "aa" * 32},
            "onnx": {"path": "model.onnx", "sha256": "bb" * 32},
        },
    )

    class B:
        name = "onnx"

    b = B()
    b.card = card
    b.model_dir = Path("/models/default")
    b.model_path = Path("/models/default/model.onnx")
    info = model_info(b)
    assert (info.name, info.version) == ("liverseg-resnet34-unet", "1.2.0")
    assert (info.sha256, info.file) == ("bb" * 32, "model.onnx")
    assert info.files == {"model.int8.onnx": "aa" * 32, "model.onnx": "bb" * 32}
    b.model_path = None
    assert model_info(b).sha256 == "aa" * 32  # int8 is the default inference file
    assert model_info(_Bad()).name == "bad" and model_info(_Bad()).sha256 == ""


def test_pipeline_is_free_of_qt_torch_onnxruntime():
    code = (
        "import sys, liverseg_studio.segment, liverseg_studio.segment.exporters, liverseg_studio.commands.segment;"
        "bad=[m for m in ('PySide6','torch','onnxruntime','pyqtgraph') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
