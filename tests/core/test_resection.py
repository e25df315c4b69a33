"""core.resection: a plane splits the liver; FLR figures on volumes with known answers (issue 25)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liverseg_studio.core import resection as R

AFF = np.diag([1.0, 1.0, 1.0, 1.0])


def _ball(shape, centre, r):
    z, y, x = np.indices(shape)
    return ((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2) <= r * r


def test_box_cut_by_a_plane_known_volumes():
    lab = np.zeros((20, 30, 40), np.uint8)
    lab[5:15, 5:25, 10:30] = 1  # 10 x 20 x 20 voxels of 2 x 1.5 x 1 mm = 12 mL
    aff = np.diag([1.0, 1.5, 2.0, 1.0])  # x 1 mm, y 1.5 mm, z 2 mm
    # x = 14.5 mm: voxel centres x = 10..14 (5 of 20 columns) remnant, 15..29 resected
    res = R.evaluate_plan(lab, aff, R.ResectionPlan((14.5, 0, 0), (1, 0, 0)))
    assert res.liver_ml == pytest.approx(12.0)
    assert res.remnant_ml == pytest.approx(3.0)
    assert res.resected_ml == pytest.approx(9.0)
    assert res.remnant_percent == pytest.approx(25.0)
    assert any("remnant 25.0 % < 30 %" in w for w in res.warnings)
    flipped = R.evaluate_plan(lab, aff, R.ResectionPlan((14.5, 0, 0), (1, 0, 0)).flipped())
    assert flipped.remnant_percent == pytest.approx(75.0) and not flipped.warnings
    lenient = R.evaluate_plan(lab, aff, R.ResectionPlan((14.5, 0, 0), (1, 0, 0), min_remnant_percent=20))
    assert not lenient.warnings


def test_sphere_cut_by_a_plane_matches_the_cap_formula():
    r, n = 20.0, 48
    lab = _ball((n, n, n), (24, 24, 24), r).astype(np.uint8)
    h = 7.5  # plane at distance r - h from the centre (between voxel centres): the cap of height h is resected
    plan = R.ResectionPlan((24 + r - h, 24, 24), (1, 0, 0))
    res = R.evaluate_plan(lab, AFF, plan)
    cap = np.pi * h * h * (3 * r - h) / 3 / 1000
    ball = 4 / 3 * np.pi * r**3 / 1000
    assert res.liver_ml == pytest.approx(ball, rel=0.01)
    assert res.resected_ml == pytest.approx(cap, rel=0.03)
    assert res.remnant_percent == pytest.approx(100 * (1 - cap / ball), abs=0.5)


def test_oblique_plane_through_the_centre_halves_a_sphere():
    lab = _ball((40, 40, 40), (20, 20, 20), 15).astype(np.uint8)
    res = R.evaluate_plan(lab, AFF, R.ResectionPlan((20, 20, 20), (1, 2, -1.5)))
    assert res.remnant_percent == pytest.approx(50.0, abs=1.0)
    assert R.ResectionPlan((0, 0, 0), (0, 3, 4)).normal == pytest.approx((0, 0.6, 0.8))


def test_lesion_sides_margins_and_touch_warning():
    lab = np.zeros((40, 40, 60), np.uint8)
    lab[2:38, 2:38, 2:58] = 1
    lab[_ball(lab.shape, (20, 20, 10), 4)] = 2   # x 6..14: remnant, margin to x=30 is 16 mm
    lab[_ball(lab.shape, (20, 20, 45), 3)] = 2   # x 42..48: resected, margin 12 mm
    lab[_ball(lab.shape, (20, 10, 30), 2)] = 2   # crosses x = 30
    plan = R.ResectionPlan((30.0, 0, 0), (1, 0, 0))
    res = R.evaluate_plan(lab, AFF, plan)
    by_size = sorted(res.lesions, key=lambda s: s.lesion_id)  # lesion 1 = largest
    assert [s.side for s in by_size] == ["remnant", "resected", "both"]
    assert by_size[0].margin_mm == pytest.approx(16.0, abs=0.5)
    assert by_size[1].margin_mm == pytest.approx(12.0, abs=0.5)
    assert by_size[2].touches and by_size[2].margin_mm == 0.0
    assert "lesion 3 touches the cut" in res.warnings
    strict = R.evaluate_plan(lab, AFF, R.ResectionPlan((30.0, 0, 0), (1, 0, 0), min_margin_mm=15))
    assert any(w.startswith("lesion 2: margin 12.0 mm < 15 mm") for w in strict.warnings)


def test_plan_label_map_third_value():
    lab = np.zeros((4, 4, 10), np.uint8)
    lab[:, :, 1:9] = 1
    lab[1, 1, 7] = 2
    out = R.plan_label_map(lab, AFF, R.ResectionPlan((4.5, 0, 0), (1, 0, 0)))
    assert set(np.unique(out)) == {0, 1, 2, 3}
    assert (out[:, :, 5:9][lab[:, :, 5:9] == 1] == 3).all()
    assert (out[:, :, 1:5] == 1).all()
    assert out[1, 1, 7] == 2  # tumours keep their value on either side


def test_plan_json_round_trip(tmp_path):
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[2:8, 2:8, 2:8] = 1
    plan = R.ResectionPlan((1.0, 2.0, 3.0), (0, 0, 2), min_remnant_percent=40, min_margin_mm=5, note="left")
    path = R.plan_path_for(tmp_path / "case_mask.nii.gz")
    assert path.name == "case_plan.json"
    R.save_plan(plan, path, result=R.evaluate_plan(lab, AFF, plan))
    data = json.loads(path.read_text())
    assert data["coordinates"] == "RAS" and "remnant_ml" in data["figures"]
    assert R.load_plan(path) == plan


def test_bad_plans_are_one_line_errors(tmp_path):
    with pytest.raises(R.PlanError):
        R.ResectionPlan((0, 0, 0), (0, 0, 0))
    with pytest.raises(R.PlanError, match="no resection plan"):
        R.load_plan(tmp_path / "missing_plan.json")
    (tmp_path / "bad.json").write_text('{"kind": "plane", "point_mm": [1, 2]}')
    with pytest.raises(R.PlanError):
        R.load_plan(tmp_path / "bad.json")
