"""liverseg train: a 1-epoch run on a tiny synthetic prepared set, resume, the model directory it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastai")
torch = pytest.importorskip("torch")

from helpers.prepared import prepared_phantoms  # noqa: E402
from liverseg_studio.training.train import TrainConfig, TrainError, train  # noqa: E402


@pytest.fixture(scope="module")
def tiny_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_phantoms(tmp_path_factory.mktemp("tiny-train"))


def _cfg(**kw: object) -> TrainConfig:
    # 64x64 prepared slices trained at 32 px, one thread: seconds per batch on a busy 2-core machine
    base = dict(epochs=1, size=32, bs=2, lr=1e-3, bf16=False, device="cpu", pretrained="no", workers=0,
                max_train_slices=10, synthetic_tumours=0.5, seed=0, threads=1)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.mark.slow
def test_one_epoch_loss_decreases_and_model_dir_is_complete(tiny_prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    res = train(tiny_prepared, out, _cfg(), log=lambda s: None)
    losses = res.batch_losses
    assert len(losses) == 5
    print(f"batch losses {[round(v, 3) for v in losses]}; s/batch {[round(v, 2) for v in res.batch_seconds]}")
    assert np.mean(losses[-2:]) < np.mean(losses[:2]), losses
    for name in ("model.safetensors", "model.json", "training_log.csv", "training_plot.png", "checkpoints/state.json",
                 "checkpoints/last.pth", "checkpoints/best.pth"):
        assert (out / name).is_file(), name
    card = json.loads((out / "model.json").read_text())
    assert card["input_size"] == 32
    assert card["architecture"]["normalize"] == "imagenet"
    assert card["training"]["imagenet_pretrained"] is False
    assert card["training"]["epochs"] == 1
    assert card["files"]["safetensors"]["sha256"]
    assert "non-commercial" in card["licence"]
    v = card["metrics"]["validation"]["dice_liver"]
    assert v["n"] > 0 and 0.0 <= v["mean"] <= 1.0
    syn = card["metrics"]["validation"]["synthetic_tumours"]
    assert syn["n_slices"] > 0 and "monitoring only" in syn["what"]
    assert card["preprocessing"]["windows"] == [[150.0, 30.0], [200.0, 60.0]]

    # the weights load strictly into the shared architecture builder
    from liverseg_studio.model.arch import build_unet, load_unet_weights

    unet = build_unet(32, **{k: card["architecture"][k] for k in ("last_cross", "self_attention", "blur")})
    load_unet_weights(unet, out / "model.safetensors")

    # a non-empty MODEL_DIR is never overwritten silently
    with pytest.raises(TrainError):
        train(tiny_prepared, out, _cfg(), log=lambda s: None)

    # --resume continues at epoch 2 and appends to the log
    res2 = train(tiny_prepared, out, _cfg(epochs=2, resume=True), log=lambda s: None)
    assert len(res2.batch_losses) == 5  # only the second epoch ran
    rows = [r for r in (out / "training_log.csv").read_text().splitlines() if r and not r.startswith("epoch")]
    assert len(rows) == 2
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epoch_done"] == 1


def test_bad_options(tiny_prepared: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError):
        train(tiny_prepared, tmp_path / "m", _cfg(size=50))
    with pytest.raises(TrainError):
        train(tiny_prepared, tmp_path / "m2", _cfg(resume=True))
    with pytest.raises(TrainError):
        train(tiny_prepared, tmp_path / "m3", _cfg(synthetic_tumours=1.5))
