"""liverseg evaluate: false-positive liver area per slice, above all on slices without liver (issue 14, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from liverseg_studio.backends.base import Prediction
from liverseg_studio.core.volume import Volume
from liverseg_studio.training.evaluate import Case, evaluate_cases, false_positive_area, split_slices

SPACING = (2.0, 0.5, 0.8)  # z, y, x mm: 0.4 mm^2 per pixel


def _truth_and_pred() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((6, 20, 20), np.uint8)
    truth[2:4, 5:15, 5:15] = 1  # liver on slices 2 and 3 only
    pred = truth.copy()
    pred[0, 0:5, 0:6] = 1  # 30 px of liver on a liver-free slice
    pred[5, 10:15, 10:20] = 1  # 50 px on another
    pred[2, 0:2, 0:5] = 2  # 10 px outside the liver on a liver slice
    return truth, pred


class BySliceValue:
    """Returns ``pred`` for the slices whose (constant) intensity is their index in the volume."""

    name = "by-slice"

    def __init__(self, pred: np.ndarray) -> None:
        self.pred = pred

    def predict(self, volume: Volume, *, progress=None, is_cancelled=None) -> Prediction:
        idx = [int(round(float(np.asarray(volume.array[k]).flat[0]))) for k in range(volume.n_slices)]
        return Prediction(labels=self.pred[idx].astype(np.uint8), timings={"inference": 0.0})


def _case(truth: np.ndarray) -> Case:
    arr = np.repeat(np.arange(truth.shape[0], dtype=np.float32)[:, None, None], 20, axis=1).repeat(20, axis=2)
    vol = Volume(arr, affine=np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0]), source="v")
    return Case(id="v", volume=vol, truth=truth, patient="p")


def test_false_positive_area_on_liver_free_slices():
    truth, pred = _truth_and_pred()
    row = false_positive_area(pred, truth, pixel_mm2=0.4)
    assert row["liver_free_slices"] == 4 and row["liver_free_slices_with_fp"] == 2
    assert row["fp_px"] == [30, 0, 0, 50]
    assert row["liver_free_fp_px_mean"] == pytest.approx(20.0) and row["liver_free_fp_px_max"] == 50
    assert row["liver_free_fp_mm2_mean"] == pytest.approx(8.0)
    assert row["fp_px_per_slice"] == pytest.approx((30 + 50 + 10) / 6)
    perfect = false_positive_area(truth, truth)
    assert perfect["liver_free_slices_with_fp"] == 0 and perfect["fp_px_per_slice"] == 0.0


def test_evaluate_reports_it_per_case_and_pooled(tmp_path: Path):
    truth, pred = _truth_and_pred()
    report = evaluate_cases([_case(truth)], BySliceValue(pred), tmp_path / "r", postprocess=False, log=lambda s: None)
    fp = report["summary"]["liver_free_fp"]
    assert (fp["n"], fp["with_fp"], fp["px_max"]) == (4, 2, 50.0)
    assert fp["px_mean"] == pytest.approx(20.0) and fp["fraction_with_fp"] == 0.5
    assert report["cases"][0]["liver_free_fp_mm2_mean"] == pytest.approx(8.0)
    assert "liver_free_fp" in report["definitions"]
    on_disk = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert on_disk["summary"]["liver_free_fp"]["n"] == 4
    header = (tmp_path / "r" / "metrics.csv").read_text().splitlines()[0]
    assert "liver_free_fp_px_mean" in header


def test_per_slice_cases_score_each_slice_alone(tmp_path: Path):
    truth, pred = _truth_and_pred()
    cases = split_slices([_case(truth)])
    assert [c.id for c in cases] == [f"v#z{z}" for z in range(6)] and all(c.volume.n_slices == 1 for c in cases)
    report = evaluate_cases(cases, BySliceValue(pred), tmp_path / "r", postprocess=True, log=lambda s: None)
    fp = report["summary"]["liver_free_fp"]
    assert (fp["n"], fp["with_fp"], fp["px_max"]) == (4, 2, 50.0)  # single slices are never post-processed
    assert [r["liver_free_slices"] for r in report["cases"]] == [1, 1, 0, 0, 1, 1]
