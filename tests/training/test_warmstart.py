"""Warm start: a model folder's ONNX weights (fp32, or int8 QDQ with BatchNorm folded) back in the torch U-Net."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers.tiny_model import SIZE, TinyModel, synthetic_slice

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")


def _inputs(n: int = 6, seed: int = 11) -> np.ndarray:
    from liverseg_studio.core.preprocess import windowed_rgb

    rng = np.random.default_rng(seed)
    x = np.stack([windowed_rgb(synthetic_slice(rng)[0], as_float=True) for _ in range(n)])
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def _torch_logits(unet, x: np.ndarray) -> np.ndarray:
    from liverseg_studio.model.arch import IMAGENET_MEAN, IMAGENET_STD

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return unet((torch.from_numpy(x) - mean) / std).numpy()


def _ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {"image": x})[0]


def test_fp32_onnx_weights_reproduce_the_graph(tiny_model: TinyModel) -> None:
    from liverseg_studio.training.warmstart import unet_from_onnx

    x = _inputs()
    unet = unet_from_onnx(tiny_model.model_dir / "model.onnx", SIZE)
    got, want = _torch_logits(unet, x), _ort_logits(tiny_model.model_dir / "model.onnx", x)
    assert np.abs(got - want).max() < 1e-3 * max(1.0, float(np.abs(want).max()))


def test_int8_weights_dequantised_agree_with_the_int8_graph(tiny_model: TinyModel) -> None:
    from liverseg_studio.core.metrics import dice
    from liverseg_studio.training.warmstart import unet_from_onnx

    x = _inputs(12)
    unet = unet_from_onnx(tiny_model.model_dir / "model.int8.onnx", SIZE)
    a = _torch_logits(unet, x).argmax(1)
    b = _ort_logits(tiny_model.model_dir / "model.int8.onnx", x).argmax(1)
    # the int8 graph also quantises activations: labels agree, logits only roughly
    assert dice(a >= 1, b >= 1) > 0.97
    assert dice(a == 2, b == 2) > 0.9


def test_folded_batchnorm_is_identity_plus_bias(tiny_model: TinyModel) -> None:
    from liverseg_studio.training.warmstart import unet_from_onnx

    unet = unet_from_onnx(tiny_model.model_dir / "model.onnx", SIZE)
    bn = dict(unet.named_modules())["layers.0.4.0.bn1"]
    assert torch.allclose(bn.weight, torch.ones_like(bn.weight))
    assert torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    # standalone BatchNorms (not after a conv) keep their own statistics
    mid = dict(unet.named_modules())["layers.1"]
    assert not torch.allclose(mid.running_var, torch.ones_like(mid.running_var))


def test_a_foreign_onnx_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    from liverseg_studio.training.warmstart import WarmStartError, unet_from_onnx

    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["image", "w"], ["logits"], name="/net/conv/Conv")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [w])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(g), str(path))
    with pytest.raises(WarmStartError):
        unet_from_onnx(path, 64)


def test_train_init_from_a_model_folder_without_safetensors(tiny_model: TinyModel, tmp_path: Path) -> None:
    from liverseg_studio.model.arch import build_unet
    from liverseg_studio.training.train import warm_start

    folder = tmp_path / "shipped"
    folder.mkdir()
    shutil.copy2(tiny_model.model_dir / "model.int8.onnx", folder / "model.int8.onnx")
    net = build_unet(SIZE)
    what = warm_start(net, folder, SIZE)
    assert "dequantised" in what
    x = _inputs(4)
    b = _ort_logits(folder / "model.int8.onnx", x).argmax(1)
    assert (_torch_logits(net, x).argmax(1) == b).mean() > 0.95
