"""Warm start: the weights of a shipped int8 QDQ ONNX model back in the PyTorch U-Net.

The default model ships only ``model.int8.onnx`` (the fp32 weights are not in
git).  Its graph still holds every weight: per-channel int8 tensors behind
``DequantizeLinear`` (``w = (q - zero_point) * scale``), the head in float32,
and the encoder's BatchNorm folded into the convolutions by the exporter
(``conv(x) * gamma / sqrt(var + eps) + beta`` became one conv with a bias).

:func:`unet_from_onnx` rebuilds :func:`liverseg_studio.model.arch.build_unet`
and loads those weights: a folded convolution gets the folded kernel, and its
BatchNorm becomes the identity plus the folded bias (``gamma = 1``,
``mean = 0``, ``var = 1 - eps``), which is exact in eval mode.  Fine-tuning
from it should keep BatchNorm statistics frozen (``FreezeBatchNorm``), as the
folded layers have none of their own.

Each ``Conv`` node is named after its module (``/unet/layers.0/layers.0.4/
layers.0.4.0/conv1/Conv`` is ``layers.0.4.0.conv1``); every module is matched
by name and shape, and a missing or extra weight is an error.
torch and onnx are imported inside the functions.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np


class WarmStartError(ValueError):
    """The ONNX file does not hold the weights of this architecture."""


def _module_name(node_name: str) -> str:
    """``/unet/layers.7/conv2/conv2.0/Conv`` -> ``layers.7.conv2.0`` (torch's scope names merged)."""
    segs = [s for s in node_name.split("/") if s][:-1]
    if segs and segs[0] == "unet":
        segs = segs[1:]
    full: list[str] = []
    for seg in segs:
        parts = seg.split(".")
        # a scope name repeats the end of its parent's name: merge on the longest overlap
        k = min(len(full), len(parts))
        while k > 0 and full[len(full) - k :] != parts[:k]:
            k -= 1
        full.extend(parts[k:])
    return ".".join(full)


def _constants(model: Any) -> dict[str, np.ndarray]:
    """Initializers and ``Constant`` outputs, plus every ``DequantizeLinear`` of constants, dequantised."""
    from onnx import numpy_helper

    g = model.graph
    const: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    const[n.output[0]] = numpy_helper.to_array(a.t)
    for n in g.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in const:
            continue
        q = const[n.input[0]].astype(np.float64)
        scale = const[n.input[1]].astype(np.float64)
        zp = const[n.input[2]].astype(np.float64) if len(n.input) > 2 and n.input[2] else np.zeros_like(scale)
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * q.ndim
            shape[axis % q.ndim] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        const[n.output[0]] = ((q - zp) * scale).astype(np.float32)
    return const


def _folded_bn_name(conv_name: str) -> str | None:
    """The BatchNorm the exporter folded into encoder conv ``conv_name`` (ResNet naming)."""
    if m := re.fullmatch(r"(.*\.)conv(\d)", conv_name):
        return f"{m.group(1)}bn{m.group(2)}"
    if m := re.fullmatch(r"(.*\.downsample\.)0", conv_name):
        return f"{m.group(1)}1"
    if conv_name == "layers.0.0":  # the stem conv, then bn1 (layers.0.1)
        return "layers.0.1"
    return None


def unet_from_onnx(path: os.PathLike[str] | str, input_size: int) -> Any:
    """A :func:`~liverseg_studio.model.arch.build_unet` U-Net (expects ImageNet-normalised input) with the
    weights of ONNX file ``path`` (a model folder's ``model.int8.onnx`` or ``model.onnx``)."""
    import onnx
    import torch

    from liverseg_studio.model.arch import build_unet

    model = onnx.load(os.fspath(path))
    const = _constants(model)
    net = build_unet(int(input_size))
    modules = dict(net.named_modules())
    state = {k: v.clone() for k, v in net.state_dict().items()}
    seen: set[str] = set()

    def put(key: str, value: np.ndarray) -> None:
        if key not in state:
            raise WarmStartError(f"{path}: weight {key} has no place in the ResNet-34 U-Net")
        if tuple(state[key].shape) != tuple(value.shape):
            raise WarmStartError(f"{path}: {key} has shape {tuple(value.shape)}, expected {tuple(state[key].shape)}")
        state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        seen.add(key)

    for n in model.graph.node:
        if n.op_type == "Conv":
            name = _module_name(n.name)
            mod = modules.get(name)
            if not isinstance(mod, torch.nn.Conv2d):
                raise WarmStartError(f"{path}: Conv node {n.name!r} matches no convolution ({name!r})")
            if n.input[1] not in const:
                raise WarmStartError(f"{path}: the weight of {n.name!r} is not a constant")
            put(f"{name}.weight", const[n.input[1]])
            bias = const.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            if mod.bias is not None:
                put(f"{name}.bias", bias if bias is not None else np.zeros(mod.out_channels, np.float32))
            else:
                bn = _folded_bn_name(name)
                bn_mod = modules.get(bn) if bn else None
                if not isinstance(bn_mod, torch.nn.BatchNorm2d):
                    raise WarmStartError(f"{path}: {name} has no bias and no BatchNorm to fold it into")
                c = bn_mod.num_features
                put(f"{bn}.weight", np.ones(c, np.float32))
                put(f"{bn}.bias", bias if bias is not None else np.zeros(c, np.float32))
                put(f"{bn}.running_mean", np.zeros(c, np.float32))
                put(f"{bn}.running_var", np.full(c, 1.0 - bn_mod.eps, np.float32))
        elif n.op_type == "BatchNormalization":
            scale, b, mean, var = (const.get(i) for i in n.input[1:5])
            key = re.sub(r"\.weight(_DequantizeLinear_Output)?$", "", n.input[1])
            key = key.removeprefix("unet.")
            if any(v is None for v in (scale, b, mean, var)):
                raise WarmStartError(f"{path}: BatchNormalization {n.name!r} has non-constant parameters")
            for suffix, v in (("weight", scale), ("bias", b), ("running_mean", mean), ("running_var", var)):
                put(f"{key}.{suffix}", v)
    missing = sorted(k for k in state if k not in seen and not k.endswith("num_batches_tracked"))
    if missing:
        raise WarmStartError(f"{path}: no weights for {len(missing)} tensors (e.g. {missing[:3]})")
    net.load_state_dict(state)
    return net.eval()
