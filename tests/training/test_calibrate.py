"""The tumour decision: offset sweep on validation slices, choice under the tumour-free share cap, baked bias."""

from __future__ import annotations

import numpy as np
import pytest

from liverseg_studio.training.calibrate import apply_offset, choose, decide, sweep
from liverseg_studio.training.data import SliceStore


def _store(labels: np.ndarray, partial: list[bool]) -> SliceStore:
    n, s = labels.shape[0], labels.shape[1]
    return SliceStore(ids=[str(i) for i in range(n)], entries=[{"id": str(i), "set": "x", "patient": "p"} for i in range(n)],
                      hu=np.zeros((n, s, s), np.int16), hu_known=np.ones(n, bool), rgb=None, labels=labels,
                      partial=np.array(partial), synthetic_ok=np.zeros(n, bool), estimated=np.zeros(n, bool), size=s)


def test_offset_trades_tumour_false_positives_on_free_livers_for_recall() -> None:
    s = 32
    labels = np.zeros((2, s, s), np.uint8)
    labels[:, 4:28, 4:28] = 1
    labels[0, 10:18, 10:18] = 2  # slice 0: a real tumour; slice 1: a tumour-free liver
    logits = np.zeros((2, 3, s, s), np.float32)
    logits[:, 0] = 5.0
    logits[:, 0, 4:28, 4:28] = -5.0
    logits[:, 1, 4:28, 4:28] = 0.0
    logits[0, 2, 10:18, 10:18] = 2.0  # the real tumour: confident
    logits[1, 2, 4:28, 4:28] = 0.5  # the free liver: a weak, wrong tumour signal
    rows = sweep(logits, _store(labels, [False, False]), offsets=(0.0, 1.0, 3.0))
    by = {r["offset"]: r for r in rows}
    assert by[0.0]["tumour_share_tumour_free"] == 1.0
    assert by[1.0]["tumour_share_tumour_free"] == 0.0 and by[1.0]["tumour_dice"] == 1.0
    assert by[3.0]["tumour_dice"] == 0.0 or by[3.0]["tumour_dice"] is None
    assert choose(rows)["offset"] == 1.0
    assert (decide(logits, 1.0)[0] == labels[0]).all()


def test_partial_slices_are_not_scored() -> None:
    s = 16
    labels = np.zeros((1, s, s), np.uint8)
    labels[0, 2:14, 2:14] = 3
    logits = np.zeros((1, 3, s, s), np.float32)
    logits[0, 2] = 1.0
    rows = sweep(logits, _store(labels, [True]), offsets=(0.0,))
    assert rows[0]["tumour_dice"] is None and rows[0]["tumour_share_tumour_free"] is None


def test_apply_offset_lowers_the_tumour_bias_of_the_head() -> None:
    torch = pytest.importorskip("torch")
    from liverseg_studio.model.arch import build_unet
    from liverseg_studio.training.calibrate import HEAD

    net = build_unet(64)
    head = dict(net.named_modules())[HEAD]
    before = head.bias.detach().clone()
    apply_offset(net, 1.5)
    assert torch.allclose(head.bias[:2], before[:2])
    assert float(head.bias[2]) == pytest.approx(float(before[2]) - 1.5)
