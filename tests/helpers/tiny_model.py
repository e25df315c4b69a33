"""A tiny but *meaningful* model directory for backend and export tests.

The real architecture (fastai ResNet-34 U-Net, ``liverseg_studio.model.arch``)
at input size 64, made meaningful on synthetic CT slices (body, a liver
ellipse at random positions, a darker tumour disc, noise): BatchNorm statistics
re-estimated, the 1x1 classifier fitted on the decoder's features, then 12
end-to-end Adam steps (a random-feature classifier alone segments the liver
but its tumour decisions flip under int8: measured int8-vs-fp32 tumour Dice
0.93; after the 12 steps 0.976, mean 0.987), then saved as ``model.safetensors`` + ``model.json`` and
exported to ``model.onnx`` (fp32) and ``model.int8.onnx`` with the real
``liverseg export`` code.  Everything is synthetic; nothing is downloaded.

Built once per test session (memoised in this module) no matter how many
conftest files ask for it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 64
AIR_HU, BODY_HU, LIVER_HU, TUMOUR_HU = -1000.0, 0.0, 100.0, 45.0


def synthetic_slice(rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic abdominal slice: (HU float32 (size, size), labels uint8 0/1/2)."""
    yy, xx = np.meshgrid((np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size, indexing="ij")
    hu = np.full((size, size), AIR_HU, dtype=np.float32)
    lab = np.zeros((size, size), dtype=np.uint8)
    body = ((yy - 0.5) / rng.uniform(0.38, 0.46)) ** 2 + ((xx - 0.5) / rng.uniform(0.40, 0.47)) ** 2 <= 1
    hu[body] = BODY_HU
    if rng.random() < 0.85:
        cy, cx = rng.uniform(0.4, 0.6), rng.uniform(0.35, 0.6)
        ry, rx = rng.uniform(0.18, 0.25), rng.uniform(0.17, 0.23)
        liver = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1) & body
        hu[liver] = LIVER_HU
        lab[liver] = 1
        if rng.random() < 0.7:
            r = rng.uniform(0.45, 0.6) * min(ry, rx)
            ty, tx = cy + rng.uniform(-0.3, 0.3) * ry, cx + rng.uniform(-0.3, 0.3) * rx
            tum = (((yy - ty) / r) ** 2 + ((xx - tx) / r) ** 2 <= 1) & liver
            hu[tum] = TUMOUR_HU
            lab[tum] = 2
    hu += rng.normal(0.0, 4.0, size=hu.shape).astype(np.float32)
    return np.rint(hu).astype(np.float32), lab


def synthetic_volume(n: int = 6, size: int = 96, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(HU (n, size, size), labels (n, size, size)) stack of independent synthetic slices."""
    rng = np.random.default_rng(seed)
    pairs = [synthetic_slice(rng, size) for _ in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _train(model: Any, steps: int, seed: int, l2: float = 1e-3, finetune_steps: int = 0) -> None:
    """Make the random U-Net meaningful in seconds on 2 cores.

    1. re-estimate every BatchNorm's running statistics on synthetic slices
       (forward passes only; a fresh network's mean 0 / var 1 statistics make
       its eval-mode activations explode or vanish);
    2. fit the final 1x1 convolution (a per-pixel linear classifier on the
       decoder's features) with ``steps`` Adam steps of class-weighted
       cross-entropy on features computed once.

    Full backpropagation through ResNet-34 takes ~10 s per step on a busy
    2-core machine; this takes a few seconds and segments the synthetic liver
    with Dice > 0.8.
    """
    import torch
    from torch import nn

    from liverseg_studio.core.preprocess import windowed_rgb

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [synthetic_slice(rng) for _ in range(n)]
        x = windowed_rgb(np.stack([p[0] for p in pairs]), as_float=True)  # (n, S, S, 3)
        x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
        y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.int64))
        return x, y

    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(batch(8)[0])
    model.eval()

    head = model.unet.layers[-2]  # ConvLayer(ni, 3, ks=1) before ToTensorBase
    conv = head[0] if isinstance(head, nn.Sequential) else head
    assert isinstance(conv, nn.Conv2d) and conv.out_channels == 3 and conv.kernel_size == (1, 1), conv
    feats: list[torch.Tensor] = []
    hook = conv.register_forward_hook(lambda mod, inp, out: feats.append(inp[0].detach()))
    ys = []
    with torch.no_grad():
        for _ in range(6):
            x, y = batch(8)
            model(x)
            ys.append(y)
    hook.remove()
    f = torch.cat(feats).permute(0, 2, 3, 1).reshape(-1, conv.in_channels)
    y = torch.cat(ys).reshape(-1)
    # Fit on the raw features with an L2 penalty: low-variance features would
    # need large weights to matter, which the penalty discourages, so the
    # classifier relies on strong features and tolerates int8 noise.
    with torch.no_grad():
        scale = float(f.std()) + 1e-6
    fs = f / scale
    w = torch.zeros(3, conv.in_channels, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 6.0]))
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(fs @ w.T + b, y) + l2 * (w**2).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        conv.weight.copy_((w / scale).view(3, conv.in_channels, 1, 1))
        if conv.bias is None:
            conv.bias = nn.Parameter(b.detach().clone())
        else:
            conv.bias.copy_(b)
    if finetune_steps:
        # a few steps of end-to-end training sharpen the decisions (int8-robust margins)
        opt2 = torch.optim.Adam(model.parameters(), lr=5e-4)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()  # keep the estimated statistics; train the affine parameters only
        for _ in range(finetune_steps):
            x, y = batch(4)
            opt2.zero_grad()
            loss_fn(model(x), y).backward()
            opt2.step()
        model.eval()


@dataclass(frozen=True)
class TinyModel:
    """The model folder (read-only for tests: copy before changing) and what building it measured."""

    model_dir: Path
    data_dir: Path
    export_report: dict[str, Any]
    build_seconds: float


_CACHE: dict[str, TinyModel] = {}


def write_prepared_set(root: Path, n_train: int = 12, n_valid: int = 16, seed: int = 5) -> Path:
    """A folder shaped like ``liverseg prepare`` output: images/*.jpg, masks/*.png, manifest.json."""
    from PIL import Image

    from liverseg_studio.core.preprocess import windowed_rgb

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    slices = []
    for i in range(n_train + n_valid):
        hu, lab = synthetic_slice(rng)
        name = f"case{i:03d}_000"
        Image.fromarray(windowed_rgb(hu)).save(root / "images" / f"{name}.jpg", quality=95)
        Image.fromarray(lab).save(root / "masks" / f"{name}.png")
        split = "train" if i < n_train else "valid"
        slices.append({"image": f"images/{name}.jpg", "mask": f"masks/{name}.png", "split": split,
                       "patient": f"synthetic:{i}", "source": "synthetic"})
    (root / "manifest.json").write_text(json.dumps({"slices": slices}, indent=1))
    return root


def build_tiny_model(root: Path, *, steps: int = 300, finetune_steps: int = 24, seed: int = 0) -> TinyModel:
    """Train, save and export the tiny model under ``root`` (see the module docstring)."""
    import torch

    from liverseg_studio.core.modelcard import ModelCard, write_card
    from liverseg_studio.model.arch import ARCH_DEFAULTS, ENCODER, build_normalized_model, save_unet_weights
    from liverseg_studio.training.export import export_model

    t0 = time.perf_counter()
    torch.set_num_threads(2)
    model_dir = root / "tiny-model"
    model_dir.mkdir(parents=True)
    data_dir = write_prepared_set(root / "tiny-data")
    model = build_normalized_model(SIZE)
    _train(model, steps, seed, finetune_steps=finetune_steps)
    save_unet_weights(model.unet, model_dir / "model.safetensors")
    card = ModelCard(
        name="tiny-test-model",
        version="0.0.1",
        architecture={"encoder": ENCODER, **ARCH_DEFAULTS, "normalize": "imagenet"},
        input_size=SIZE,
        training={"data": "synthetic slices (tests/helpers/tiny_model.py)", "steps": steps,
                  "imagenet_pretrained": False},
        licence="MIT (synthetic test model)",
    )
    card.record_file("safetensors", model_dir)
    write_card(model_dir, card)
    report = export_model(model_dir, int8=True, calib=data_dir, n_calib=12, n_valid=16, log=lambda s: None)
    return TinyModel(model_dir, data_dir, report.to_json(), time.perf_counter() - t0)


def get_tiny_model(tmp_path_factory: Any) -> TinyModel:
    """The session's tiny model (built on first use)."""
    if "model" not in _CACHE:
        _CACHE["model"] = build_tiny_model(tmp_path_factory.mktemp("tiny-model-session"))
    return _CACHE["model"]


def copy_model_dir(src: Path, dest: Path, kinds: tuple[str, ...] = ("model.json", "model.int8.onnx")) -> Path:
    """Copy some files of a model folder (tests that tamper with files must not touch the shared one)."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for name in kinds:
        shutil.copy2(src / name, dest / name)
    return dest
