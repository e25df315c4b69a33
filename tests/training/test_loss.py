"""The partial-label (marginal) loss and the Dice metrics of training."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fastai")

import torch.nn.functional as F  # noqa: E402

from liverseg_studio.training.fastai_parts import MarginalCrossEntropy  # noqa: E402


def test_equals_cross_entropy_without_partial_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 6, generator=g)
    target = torch.randint(0, 3, (2, 5, 6), generator=g)
    loss = MarginalCrossEntropy()(logits, target)
    assert torch.allclose(loss, F.cross_entropy(logits, target), atol=1e-6)


def test_marginal_on_partial_pixels_and_ce_elsewhere() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 4, 4, generator=g)
    target = torch.randint(0, 4, (2, 4, 4), generator=g)  # 3 = liver-or-tumour
    assert (target == 3).any() and (target < 3).any()
    per_pixel = MarginalCrossEntropy(reduction="none")(logits, target)
    p = logits.softmax(1)
    part = target == 3
    expected_part = -torch.log(p[:, 1] + p[:, 2])[part]
    assert torch.allclose(per_pixel[part], expected_part, atol=1e-5)
    t_plain = target.clone()
    t_plain[part] = 0
    expected_plain = F.cross_entropy(logits, t_plain, reduction="none")[~part]
    assert torch.allclose(per_pixel[~part], expected_plain, atol=1e-5)
    assert torch.allclose(MarginalCrossEntropy()(logits, target), per_pixel.mean())


def test_marginal_does_not_push_tumour_towards_liver() -> None:
    # on a partial pixel the loss is indifferent to how liver-or-tumour mass is shared
    a = torch.tensor([[[[0.0]], [[3.0]], [[0.0]]]])  # mostly liver
    b = torch.tensor([[[[0.0]], [[0.0]], [[3.0]]]])  # mostly tumour
    t = torch.full((1, 1, 1), 3)
    lf = MarginalCrossEntropy()
    assert torch.allclose(lf(a, t), lf(b, t), atol=1e-6)
    # while plain CE with target liver would prefer a
    assert F.cross_entropy(a, torch.ones(1, 1, 1, dtype=torch.long)) < F.cross_entropy(b, torch.ones(1, 1, 1, dtype=torch.long))


def test_loss_is_float32_under_bf16_logits() -> None:
    logits = torch.randn(1, 3, 4, 4).to(torch.bfloat16).requires_grad_()
    loss = MarginalCrossEntropy()(logits, torch.randint(0, 4, (1, 4, 4)))
    assert loss.dtype == torch.float32
    loss.backward()
    assert logits.grad is not None


def test_tumour_weight_scales_only_tumour_pixels() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 6, 6, generator=g)
    target = torch.randint(0, 4, (2, 6, 6), generator=g)
    plain = MarginalCrossEntropy(reduction="none")(logits, target)
    weighted = MarginalCrossEntropy(reduction="none", tumour_weight=3.0)(logits, target)
    tum = target == 2
    assert tum.any() and (~tum).any()
    assert torch.allclose(weighted[tum], 3.0 * plain[tum])
    assert torch.allclose(weighted[~tum], plain[~tum])
