"""liverseg evaluate: perfect prediction, a known shift, partial truth, the CLI and its report files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers.phantom import make_phantom, write_nifti
from liverseg_studio.backends.base import Prediction
from liverseg_studio.cli import main
from liverseg_studio.core.volume import Volume
from liverseg_studio.training.evaluate import Case, evaluate_cases


class FixedBackend:
    """Test double: 'predicts' a given label map per volume source (the truth, or the truth shifted)."""

    name = "fixed"

    def __init__(self, labels_by_source: dict[str, np.ndarray]) -> None:
        self.labels = labels_by_source

    def load(self, model_dir: Path | None, *, threads: int | None = None) -> None:
        pass

    def predict(self, volume: Volume, *, progress=None, is_cancelled=None) -> Prediction:
        return Prediction(labels=self.labels[volume.source].astype(np.uint8), timings={"inference": 0.0})


def test_perfect_prediction_gives_dice_1_and_hd95_0(tmp_path: Path) -> None:
    ph = make_phantom((12, 48, 48), spacing=(2.5, 0.8, 0.8))
    vol = ph.volume(source="phantom")
    case = Case(id="phantom", volume=vol, truth=ph.labels, patient="p0")
    report = evaluate_cases([case], FixedBackend({"phantom": ph.labels}), tmp_path / "r", postprocess=False, log=lambda s: None)
    row = report["cases"][0]
    assert row["unit"] == "mm"
    assert row["liver_dice"] == 1.0 and row["liver_hd95"] == 0.0 and row["liver_assd"] == 0.0
    assert row["tumour_dice"] == 1.0 and row["tumour_hd95"] == 0.0
    assert report["summary"]["liver_dice"]["mean"] == 1.0
    assert report["patients"][0]["liver_dice_pooled"] == 1.0
    assert "undefined" in report["definitions"]["empty_masks"]
    for name in ("metrics.json", "metrics.csv", "metrics.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / "r" / "metrics.csv")))
    assert rows[0]["liver_dice"] == "1.0"


@pytest.mark.parametrize("k,dy", [(2, 0.8), (5, 1.25)])
def test_known_shift_gives_the_analytic_hd95(tmp_path: Path, k: int, dy: float) -> None:
    truth = np.zeros((1, 80, 160), np.uint8)
    truth[0, 30:50] = 1  # a full-width slab: shifting it by k rows moves every surface point k rows
    pred = np.roll(truth, k, axis=1)
    vol = Volume(np.zeros((1, 80, 160), np.float32), affine=np.diag([0.9, dy, 3.0, 1.0]), source="slab")
    case = Case(id="slab", volume=vol, truth=truth, patient="p")
    report = evaluate_cases([case], FixedBackend({"slab": pred}), tmp_path / "r", postprocess=False, log=lambda s: None)
    row = report["cases"][0]
    assert row["liver_hd95"] == pytest.approx(k * dy)
    assert row["liver_dice"] == pytest.approx((20 - k) / 20)
    assert row["tumour_dice"] is None  # no tumour in truth or prediction: undefined by convention


def test_partial_truth_scores_liver_only(tmp_path: Path) -> None:
    truth = np.zeros((1, 40, 40), np.uint8)
    truth[0, 10:30, 10:30] = 1
    pred = truth.copy()
    pred[0, 15:20, 15:20] = 2  # a tumour inside liver-or-tumour truth: not an error for liver, not scored for tumour
    vol = Volume(np.zeros((1, 40, 40), np.float32), source="s", spacing_known=False)
    case = Case(id="s", volume=vol, truth=truth, patient="p", partial=True)
    report = evaluate_cases([case], FixedBackend({"s": pred}), tmp_path / "r", postprocess=False, log=lambda s: None)
    row = report["cases"][0]
    assert row["unit"] == "pixels"
    assert row["liver_dice"] == 1.0
    assert row["tumour_dice"] is None and "partial" in row["tumour_note"]


def test_cli_volume_with_labels_and_prepared_split(tmp_path: Path) -> None:
    ph = make_phantom((10, 64, 64), spacing=(2.5, 0.8, 0.8), noise=5.0)
    img = write_nifti(tmp_path / "ct.nii.gz", ph.hu, ph.affine, dtype="int16")
    lab = write_nifti(tmp_path / "ct_labels.nii.gz", ph.labels, ph.affine, dtype="uint8")
    out = tmp_path / "report"
    assert main(["evaluate", "--backend", "threshold", str(img), "--labels", str(lab), "--out", str(out)]) == 0
    rep = json.loads((out / "metrics.json").read_text())
    row = rep["cases"][0]
    assert row["unit"] == "mm" and row["slices"] == 10
    assert row["liver_dice"] is not None and 0.0 < row["liver_dice"] <= 1.0
    assert rep["backend"] == "threshold"
    # an existing report is never overwritten silently
    assert main(["evaluate", "--backend", "threshold", str(img), "--labels", str(lab), "--out", str(out)]) == 2
    assert main(["evaluate", "--backend", "threshold", str(img), "--labels", str(lab), "--out", str(out), "--overwrite"]) == 0
    # inputs and labels must pair up
    assert main(["evaluate", "--backend", "threshold", str(img), str(img), "--labels", str(lab), "--out", str(tmp_path / "x")]) == 2

    # a prepared set's test split: 2D cases in pixels, aggregated per patient
    src = tmp_path / "lits"
    src.mkdir()
    for n in (0, 1):
        p = make_phantom((8, 64, 64), noise=5.0, seed=n)
        write_nifti(src / f"volume-{n}.nii", p.hu, p.affine, dtype="int16")
        write_nifti(src / f"segmentation-{n}.nii", p.labels, p.affine, dtype="uint8")
    assert main(["prepare", str(src), "--out", str(tmp_path / "prep"), "--size", "64", "--split", "50,0,50", "--quiet"]) == 0
    out2 = tmp_path / "report2"
    assert main(["evaluate", "--backend", "threshold", str(tmp_path / "prep"), "--split", "test", "--out", str(out2)]) == 0
    rep2 = json.loads((out2 / "metrics.json").read_text())
    assert rep2["cases"] and all(r["unit"] == "pixels" and r["slices"] == 1 for r in rep2["cases"])
    assert len(rep2["patients"]) == 1
    assert main(["evaluate", "--backend", "threshold", str(tmp_path / "prep"), "--split", "valid", "--out", str(tmp_path / "r3")]) == 2


def test_tumour_inside_and_outside_the_true_liver_are_reported_apart(tmp_path: Path) -> None:
    # a tumour-free liver: one false tumour inside the liver (8 px), one in a neighbouring organ (12 px)
    truth = np.zeros((1, 32, 32), np.uint8)
    truth[0, 4:14, 4:14] = 1  # 100 px of liver
    pred = truth.copy()
    pred[0, 5:7, 5:9] = 2  # 8 px of liver called tumour
    pred[0, 20:23, 20:24] = 2  # 12 px outside the liver called tumour
    vol = Volume(np.zeros((1, 32, 32), np.float32), source="free", spacing_known=False)
    case = Case(id="free", volume=vol, truth=truth, patient="p0")
    report = evaluate_cases([case], FixedBackend({"free": pred}), tmp_path / "r", postprocess=False, log=lambda s: None)
    row = report["cases"][0]
    assert row["tumour_share"] == pytest.approx(20 / 112)
    assert row["tumour_outside_true_liver"] == pytest.approx(12 / 20)
    assert row["tumour_share_of_true_liver"] == pytest.approx(8 / 100)
    with open(tmp_path / "r" / "metrics.csv", newline="") as f:
        csv_row = next(csv.DictReader(f))
    assert float(csv_row["tumour_outside_true_liver"]) == pytest.approx(0.6)
    assert report["summary"]["tumour_share_of_true_liver"]["mean"] == pytest.approx(0.08)
