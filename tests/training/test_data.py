"""training/data.py: the canonical recipe never flips or turns a slice by 90 degrees; the old recipes still can."""

from __future__ import annotations

import numpy as np

from liverseg_studio.training.data import AugmentConfig, SliceStore, augment_for, make_sample


def _store() -> SliceStore:
    hu = np.full((1, 32, 32), 40, np.int16)
    labels = np.zeros((1, 32, 32), np.uint8)
    labels[0, 4:20, 2:10] = 1  # liver on the left, high up: no flip or turn keeps it there
    hu[0, labels[0] == 1] = 60
    return SliceStore(ids=["a"], entries=[{}], hu=hu, hu_known=np.array([True]), rgb=None, labels=labels,
                      partial=np.array([False]), synthetic_ok=np.array([False]), estimated=np.array([False]), size=32)


def _plain(**kw: object) -> AugmentConfig:
    return AugmentConfig(synthetic_tumours=0.0, small_rotation_deg=0.0, zoom_p=0.0, brightness=0.0, contrast=0.0,
                         window_scale=0.0, window_shift_hu=0.0, **kw)  # type: ignore[arg-type]


def test_canonical_augmentation_never_flips_or_turns() -> None:
    store = _store()
    canon = _plain(**augment_for("canonical", {}))
    old = _plain(**augment_for("dihedral", {}))
    changed = 0
    for seed in range(40):
        _, t = make_sample(store, 0, np.random.default_rng(seed), canon)
        assert np.array_equal(t, store.labels[0]), seed
        _, t_old = make_sample(store, 0, np.random.default_rng(seed), old)
        changed += not np.array_equal(t_old, store.labels[0])
    assert changed >= 20  # the old recipes' dihedral turns are still there


def test_augment_auto_follows_the_prepared_orientation() -> None:
    assert augment_for("auto", {"orientation": {"mode": "canonical"}}) == {"flips": False, "rot90": False}
    assert augment_for("auto", {"orientation": {"mode": "as-stored"}}) == {"flips": True, "rot90": True}
    assert augment_for("auto", {}) == {"flips": True, "rot90": True}  # sets prepared before the option
    assert augment_for("dihedral", {"orientation": {"mode": "canonical"}}) == {"flips": True, "rot90": True}
