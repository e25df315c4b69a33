"""The optional confidence floor for liver components of single 2D slices (issue 14, item 5)."""

from __future__ import annotations

import numpy as np
import pytest

from liverseg_studio.backends.base import Prediction
from liverseg_studio.core.errors import BackendError
from liverseg_studio.core.slice_floor import DEFAULT_MIN_MEAN_PROB, confidence_floor_2d
from liverseg_studio.core.volume import Volume
from liverseg_studio.segment import segment_volume


def _slice():
    labels = np.zeros((40, 40), np.uint8)
    prob = np.zeros((40, 40), np.float32)
    labels[5:25, 5:25] = 1  # the liver: sure
    prob[5:25, 5:25] = 0.95
    labels[30:35, 30:38] = 1  # a false positive: unsure
    prob[30:35, 30:38] = 0.55
    labels[10:14, 10:14] = 2  # tumour inside the liver stays
    return labels, prob


def test_floor_removes_unsure_components_only():
    labels, prob = _slice()
    out, removed = confidence_floor_2d(labels, prob, min_mean_prob=0.8)
    assert removed == 1 and not out[30:35, 30:38].any()
    np.testing.assert_array_equal(out[:26], labels[:26])
    same, none = confidence_floor_2d(labels, prob, min_mean_prob=0.5)
    assert none == 0 and same is labels
    tiny, n = confidence_floor_2d(labels, prob, min_area_fraction=50 / labels.size)
    assert n == 1 and not tiny[30:35, 30:38].any()
    assert DEFAULT_MIN_MEAN_PROB == 0.0  # measured: every floor lowered the validation slice Dice
    with pytest.raises(ValueError):
        confidence_floor_2d(labels[None], prob)


class ProbBackend:
    name = "probs"

    def __init__(self, labels, prob):
        self.labels, self.prob = labels, prob
        self.asked = []

    def predict(self, volume, *, progress=None, is_cancelled=None, want_probabilities=False):
        self.asked.append(want_probabilities)
        n = volume.n_slices
        lab = np.repeat(self.labels[None], n, axis=0)
        probs = None
        if want_probabilities:
            p = np.repeat(self.prob[None], n, axis=0)
            probs = np.stack([1 - p, p, np.zeros_like(p)], axis=1).astype(np.float32)
        return Prediction(labels=lab, probabilities=probs)


def test_segment_volume_applies_the_floor_to_single_slices_only():
    labels, prob = _slice()
    slice_vol = Volume(np.zeros((1, 40, 40), np.float32), spacing_known=False)
    backend = ProbBackend(labels, prob)
    off = segment_volume(slice_vol, backend)
    assert off.labels[0, 30:35, 30:38].all() and backend.asked == [False]
    on = segment_volume(slice_vol, backend, min_2d_liver_prob=0.8)
    assert not on.labels[0, 30:35, 30:38].any() and on.labels[0, 5:25, 5:25].all()
    assert on.raw_labels[0, 30:35, 30:38].all()  # the backend's labels stay as raw labels
    volume = Volume(np.zeros((3, 40, 40), np.float32))
    segment_volume(volume, backend, min_2d_liver_prob=0.8, postprocess=False)
    assert backend.asked[-1] is False  # volumes: no floor, no probabilities asked


def test_floor_needs_a_backend_with_probabilities():
    class LabelsOnly:
        name = "labels-only"

        def predict(self, volume, *, progress=None, is_cancelled=None):
            return Prediction(labels=np.zeros(volume.shape, np.uint8))

    with pytest.raises(BackendError, match="probabilities"):
        segment_volume(Volume(np.zeros((1, 16, 16), np.float32)), LabelsOnly(), min_2d_liver_prob=0.5)
