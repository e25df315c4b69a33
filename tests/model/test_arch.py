"""The architecture builder matches fastai's ``unet_learner`` key for key; no downloads."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fastai")

from liverseg_studio.core.errors import BackendError  # noqa: E402
from liverseg_studio.model.arch import (  # noqa: E402
    ARCH_DEFAULTS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    N_CLASSES,
    build_normalized_model,
    build_unet,
    imagenet_weights_available,
    load_unet_weights,
    save_unet_weights,
)


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    """A real fastai unet_learner on a few synthetic 64x64 image/mask pairs (pretrained=False: offline)."""
    from fastai.vision.all import SegmentationDataLoaders, resnet34, unet_learner
    from PIL import Image

    root = tmp_path_factory.mktemp("seg")
    rng = np.random.default_rng(0)
    names = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / f"img{i}.png")
        Image.fromarray(rng.integers(0, 3, (64, 64), dtype=np.uint8)).save(root / f"img{i}_mask.png")
        names.append(root / f"img{i}.png")
    dls = SegmentationDataLoaders.from_label_func(
        root, names, lambda p: p.parent / f"{p.stem}_mask.png", codes=["bg", "liver", "tumour"],
        bs=2, num_workers=0, valid_pct=0.5, seed=0, device="cpu",
    )
    return unet_learner(dls, resnet34, n_out=N_CLASSES, pretrained=False, **ARCH_DEFAULTS)


def test_learner_state_dict_loads_into_build_unet(learner, tmp_path):
    path = tmp_path / "model.safetensors"
    save_unet_weights(learner.model, path)
    ours = build_unet(64)
    assert set(ours.state_dict()) == set(learner.model.state_dict())
    load_unet_weights(ours, path)  # strict: raises on any missing/unexpected key
    model = build_normalized_model(64, weights=path)
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    learner.model.eval()
    with torch.no_grad():
        ref = learner.model((x - mean) / std)
        got = model(x)
    assert type(got) is torch.Tensor and got.shape == (2, 3, 64, 64)
    torch.testing.assert_close(got, ref.as_subclass(torch.Tensor), atol=1e-5, rtol=1e-5)


def test_weights_of_another_architecture_are_refused(learner, tmp_path):
    path = tmp_path / "model.safetensors"
    save_unet_weights(learner.model, path)
    other = build_unet(64, last_cross=True)
    with pytest.raises(BackendError, match="do not fit"):
        load_unet_weights(other, path)


def test_input_size_and_offline_pretrained(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="multiple of 32"):
        build_unet(100)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    assert imagenet_weights_available() is False
    with pytest.raises(RuntimeError, match="not in the local torch cache"):
        build_unet(64, pretrained=True)
    assert not any(tmp_path.rglob("*.pth"))  # nothing was downloaded


def test_normalize_none_passes_input_through(tmp_path):
    a = build_normalized_model(64, {"normalize": "none"})
    b = build_normalized_model(64)
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 64, 64)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(a((x - mean) / std), b(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="normalize"):
        build_normalized_model(64, {"normalize": "zscore"})
