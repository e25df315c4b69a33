"""The example threshold plugin, end to end through the plugin manager."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.phantom import make_phantom
from liverseg_studio.backends.base import Backend, Prediction
from liverseg_studio.core.errors import CancelledError
from liverseg_studio.core.volume import Intensity
from liverseg_studio.plugins.manager import PluginManager


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


@pytest.fixture(scope="module")
def pm():
    return PluginManager(disabled=()).load_entrypoints()


def test_threshold_registered_without_model(pm):
    spec = pm.backends.get("threshold")
    assert spec.needs_model is False
    assert spec.plugin == "threshold"
    assert isinstance(pm.backends.create("threshold"), Backend)


def test_end_to_end_on_nifti_phantom(pm, nifti_phantom):
    volume = pm.loaders.load(nifti_phantom.path)
    backend = pm.backends.create("threshold")
    backend.load(None)
    calls = []
    pred = backend.predict(volume, progress=lambda d, t: calls.append((d, t)), is_cancelled=lambda: False)
    assert isinstance(pred, Prediction)
    assert pred.labels.shape == volume.shape and pred.labels.dtype == np.uint8
    assert set(np.unique(pred.labels)) <= {0, 1}
    truth = nifti_phantom.phantom.labels >= 1
    assert _dice(pred.labels >= 1, truth) > 0.85
    assert calls and calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_noisy_phantom_and_dicom_series(pm, dicom_series_phantom):
    volume = pm.loaders.load(dicom_series_phantom.path)
    backend = pm.backends.create("threshold")
    backend.load(None)
    pred = backend.predict(volume)
    assert _dice(pred.labels >= 1, dicom_series_phantom.phantom.labels >= 1) > 0.85
    noisy = make_phantom(noise=15.0, seed=2)
    pred = backend.predict(noisy.volume())
    assert _dice(pred.labels >= 1, noisy.labels >= 1) > 0.8


def test_8bit_slice_mapped_through_hu_range(pm):
    ph = make_phantom(shape=(1, 96, 96))
    lo, hi = -160.0, 240.0
    grey = np.clip(np.rint((ph.hu - lo) * 255 / (hi - lo)), 0, 255).astype(np.uint8)
    v = ph.volume().with_array(grey, intensity=Intensity.DISPLAY8, hu_range=(lo, hi), spacing_known=False)
    backend = pm.backends.create("threshold")
    backend.load(None)
    assert _dice(backend.predict(v).labels >= 1, ph.labels >= 1) > 0.8
    # read as grey = HU instead, the liver (60 HU) would be grey 140 = 140 HU: still in the window,
    # but the body (0 HU -> grey 102) too, so the result must be different
    wrong = v.with_array(grey, hu_range=(0.0, 255.0))
    assert _dice(backend.predict(wrong).labels >= 1, ph.labels >= 1) < 0.8


def test_cancellation_raises(pm, phantom):
    backend = pm.backends.create("threshold")
    backend.load(None)
    with pytest.raises(CancelledError):
        backend.predict(phantom.volume(), is_cancelled=lambda: True)


def test_empty_volume_gives_empty_labels(pm):
    from liverseg_studio.core.volume import Volume

    backend = pm.backends.create("threshold")
    backend.load(None)
    pred = backend.predict(Volume(np.full((2, 32, 32), -1000.0, np.float32)))
    assert not pred.labels.any()
