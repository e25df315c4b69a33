"""Hand editing of label maps: brush discs in mm, flood fill, lasso, label rules, undo."""

from __future__ import annotations

import numpy as np
import pytest

from liverseg_studio.core.editing import (
    StrokeRecorder,
    UndoStack,
    apply_label,
    capsule_region,
    changed_voxels,
    disc_offsets,
    flood_region,
    polygon_region,
)
from liverseg_studio.core.volume import Label
from liverseg_studio.core.volumetry import compute_stats


def _brute_capsule(a, b, r, spacing, shape):
    """Every voxel centre within r mm of segment a-b, by brute force."""
    idx = np.indices(shape).reshape(len(shape), -1).T.astype(float)
    sp = np.asarray(spacing, float)
    pa, pb = np.asarray(a, float), np.asarray(b, float)
    seg = (pb - pa) * sp
    rel = (idx - pa) * sp
    L2 = seg @ seg
    t = np.clip(rel @ seg / L2, 0, 1) if L2 else np.zeros(len(rel))
    d = np.linalg.norm(rel - t[:, None] * seg, axis=1)
    out = (d <= r + 1e-9).reshape(shape)
    for p in (pa, pb):
        out[tuple(np.rint(p).astype(int))] = True
    return out


def test_disc_is_round_in_mm_on_anisotropic_pixels() -> None:
    # 0.5 mm rows, 1.0 mm columns: a 2 mm disc spans +-4 rows but only +-2 columns
    off = disc_offsets(2.0, (0.5, 1.0))
    assert off[:, 0].min() == -4 and off[:, 0].max() == 4
    assert off[:, 1].min() == -2 and off[:, 1].max() == 2
    d = np.hypot(off[:, 0] * 0.5, off[:, 1] * 1.0)
    assert d.max() <= 2.0
    # exactly the voxels within 2 mm
    ys, xs = np.mgrid[-6:7, -6:7]
    expected = {(int(y), int(x)) for y, x in zip(ys.ravel(), xs.ravel()) if np.hypot(y * 0.5, x * 1.0) <= 2.0}
    assert {tuple(map(int, o)) for o in off} == expected


@pytest.mark.parametrize(
    "a,b,r,spacing",
    [((10, 10), (10, 10), 3.0, (0.7, 1.4)), ((5, 3), (20, 30), 2.5, (0.8, 0.8)), ((2, 40), (30, 2), 1.2, (1.5, 0.6))],
)
def test_capsule_matches_brute_force(a, b, r, spacing) -> None:
    shape = (32, 44)
    box, mask = capsule_region(a, b, r, spacing, shape)
    full = np.zeros(shape, bool)
    full[box] = mask
    np.testing.assert_array_equal(full, _brute_capsule(a, b, r, spacing, shape))


def test_sphere_in_3d_and_clipping_at_the_edges() -> None:
    shape = (9, 20, 20)
    box, mask = capsule_region((4, 0, 0), (4, 0, 0), 5.0, (2.5, 1.0, 1.0), shape)
    full = np.zeros(shape, bool)
    full[box] = mask
    np.testing.assert_array_equal(full, _brute_capsule((4, 0, 0), (4, 0, 0), 5.0, (2.5, 1.0, 1.0), shape))
    assert set(np.flatnonzero(full.any(axis=(1, 2)))) == {2, 3, 4, 5, 6}  # +-2 slices of 2.5 mm
    box, mask = capsule_region((-30, -30), (-25, -25), 2.0, (1.0, 1.0), (10, 10))
    assert mask.size == 0 or not mask.any()


def test_flood_fill_stays_in_range_and_connected() -> None:
    hu = np.full((20, 20), -1000.0)
    hu[2:8, 2:8] = 60  # region A
    hu[10:15, 10:15] = 60  # region B, not connected to A
    hu[8, 8] = 60  # touches A only by a corner: not joined
    r = flood_region(hu, (3, 3), 40, 80)
    assert r.sum() == 36 and r[2:8, 2:8].all() and not r[10:15, 10:15].any() and not r[8, 8]
    assert not flood_region(hu, (0, 0), 40, 80).any()  # seed outside the range: nothing
    within = np.ones_like(r)
    within[:, 5:] = False
    assert flood_region(hu, (3, 3), 40, 80, within=within).sum() == 18


def test_polygon_fill_uses_voxel_centres() -> None:
    # a square from (1.5, 1.5) to (5.5, 5.5): centres 2..5 inside
    box, mask = polygon_region([(1.5, 1.5), (1.5, 5.5), (5.5, 5.5), (5.5, 1.5)], (10, 10))
    full = np.zeros((10, 10), bool)
    full[box] = mask
    exp = np.zeros((10, 10), bool)
    exp[2:6, 2:6] = True
    np.testing.assert_array_equal(full, exp)
    # a triangle: brute-force even-odd check on centres
    tri = np.array([(0.2, 0.3), (8.7, 2.1), (3.3, 9.4)])
    box, mask = polygon_region(tri, (10, 10))
    full = np.zeros((10, 10), bool)
    full[box] = mask
    mpath = pytest.importorskip("matplotlib.path")

    ys, xs = np.mgrid[0:10, 0:10]
    inside = mpath.Path(tri).contains_points(np.c_[ys.ravel(), xs.ravel()]).reshape(10, 10)
    np.testing.assert_array_equal(full, inside)


def test_label_rules_keep_tumour_inside_liver() -> None:
    lab = np.zeros((1, 4, 4), np.uint8)
    lab[0, :2] = Label.LIVER
    lab[0, 0, 0] = Label.TUMOUR
    region = np.zeros((4, 4), bool)
    region[1:3, :2] = True
    # paint tumour outside the liver (row 2): it becomes tumour, hence liver as volumetry counts it
    t = lab[0].copy()
    assert apply_label(t, region, Label.TUMOUR) == 4
    assert (t[1:3, :2] == 2).all()
    stats = compute_stats(t[None], spacing=(1, 1, 1))
    assert stats.liver_voxels == 10 and stats.tumour_voxels == 5
    # paint liver keeps tumour and fills background
    t = lab[0].copy()
    assert apply_label(t, np.ones((4, 4), bool), Label.LIVER) == 8 and t[0, 0] == 2
    # erase tumour leaves liver; erase liver removes tumour too
    t = lab[0].copy()
    assert apply_label(t, np.ones((4, 4), bool), Label.TUMOUR, erase=True) == 1 and t[0, 0] == 1
    t = lab[0].copy()
    assert apply_label(t, np.ones((4, 4), bool), Label.LIVER, erase=True) == 8 and not t.any()
    with pytest.raises(ValueError):
        apply_label(t, region, 0)


def test_changed_voxels_per_label() -> None:
    a = np.zeros((2, 3, 3), np.uint8)
    a[0, 0] = 1
    b = a.copy()
    b[0, 0, 0] = 2  # tumour added (liver unchanged)
    b[1, 1, 1] = 2  # tumour and liver added
    b[0, 0, 2] = 0  # liver removed
    assert changed_voxels(a, b) == {"liver": {"added": 1, "removed": 1}, "tumour": {"added": 2, "removed": 0}}
    one = {"liver": {"added": 1, "removed": 0}, "tumour": {"added": 1, "removed": 0}}
    assert changed_voxels(a, b, slices=[1]) == one


def test_undo_stores_changed_boxes_only_and_round_trips() -> None:
    labels = np.zeros((50, 128, 128), np.uint8)
    stack = UndoStack(max_steps=60)
    states = [labels.copy()]
    for i in range(55):
        rec = StrokeRecorder(labels, f"step {i}")
        z = i % 50
        rec.touch(z)
        labels[z, i : i + 3, 10:14] = 1 + i % 2
        step = rec.finish()
        assert step is not None and step.slices == [z]
        assert step.nbytes == 2 * 3 * 4  # the changed box only, not the slice or the volume
        stack.push(step)
        states.append(labels.copy())
    rec = StrokeRecorder(labels, "nothing")
    rec.touch(range(3))
    assert rec.finish() is None  # no change: no undo step
    for k in range(1, 51):
        assert stack.undo(labels) is not None
        np.testing.assert_array_equal(labels, states[-1 - k])
    for k in range(50, 48, -1):
        stack.redo(labels)
        np.testing.assert_array_equal(labels, states[-k])
    # a new edit drops the redo history
    rec = StrokeRecorder(labels, "new")
    rec.touch(0)
    labels[0, 0, 0] = 2
    stack.push(rec.finish())
    assert not stack.can_redo
    # the oldest steps beyond max_steps are dropped
    big = UndoStack(max_steps=3)
    for i in range(5):
        rec = StrokeRecorder(labels, "x")
        rec.touch(1)
        labels[1, 100, i] = 1
        big.push(rec.finish())
    assert big.depth == 3
