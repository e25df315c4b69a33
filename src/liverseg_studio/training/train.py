"""``liverseg train``: the paper's ResNet-34 U-Net trained with fastai on a prepared set.

``unet_learner(dls, resnet34, n_out=3, loss_func=MarginalCrossEntropy(),
**ARCH_DEFAULTS)`` -> ``fit_one_cycle``; the network always sees
ImageNet-normalised input (``Normalize`` in ``after_batch``, whether or not the
ImageNet weights were found in the local torch cache), so the saved state_dict
loads into :func:`liverseg_studio.model.arch.build_unet` and the ONNX export
(which bakes the normalisation in) matches.

MODEL_DIR receives ``model.safetensors``, ``export.pkl`` (best effort),
``model.json`` (card), ``training_log.csv``, ``training_plot.png`` and
``checkpoints/`` (``best.pth``, ``last.pth``, ``state.json``; for ``--resume``,
never shipped).

torch and fastai are imported inside the functions only.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.core.preprocess import DEFAULT_SPEC, PreprocessSpec
from liverseg_studio.training.data import AugmentConfig, LiverPrior, SegDataset, SliceStore, check_store
from liverseg_studio.training.prepare import load_manifest

CHECKPOINT_DIR = "checkpoints"
LOG_NAME = "training_log.csv"
PLOT_NAME = "training_plot.png"
DEFAULT_LR = 1e-3


class TrainError(LiversegError):
    """Bad input or configuration for ``liverseg train``."""


@dataclass
class TrainConfig:
    epochs: int = 8
    size: int = 256
    bs: int = 8
    lr: float | None = None  #: None = auto (lr_find on CUDA, DEFAULT_LR on CPU)
    bf16: bool | None = None  #: None = when supported
    resume: bool = False
    synthetic_tumours: float = 0.5
    workers: int | None = None  #: None = auto
    device: str = "auto"
    pretrained: str = "auto"  #: auto (if in the local torch cache) | yes | no
    seed: int = 0
    overwrite: bool = False
    max_train_slices: int | None = None
    threads: int | None = None  #: torch CPU threads (None: torch's default)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    spec: PreprocessSpec = DEFAULT_SPEC
    #: warm start: a model folder (model.safetensors, else model.int8.onnx / model.onnx dequantised)
    init_from: Path | None = None
    #: liver-or-tumour pixels of normal parenchyma intensity become liver (training split; see data.LiverPrior)
    liver_prior: LiverPrior | None = None
    #: each training slice with real (complete) labels is seen this many times per epoch; with real tumour, twice that
    repeat_real_labels: int = 1
    #: keep BatchNorm statistics frozen (eval mode) while training: for warm starts and small batches
    freeze_bn: bool = False
    #: random square crops of this side (pixels) from each augmented training sample; None = the whole slice
    crop: int | None = None
    #: end after this many epochs of the ``epochs``-long one-cycle schedule (None: run it all)
    stop_after: int | None = None
    #: weight of tumour-target pixels in the loss (1 = plain cross-entropy)
    tumour_weight: float = 1.0
    #: "dice_liver": best epoch by validation liver Dice; "last": the last epoch
    select: str = "dice_liver"
    #: while this file exists, training pauses between batches (a benchmark running on the same CPU)
    pause_file: Path | None = None
    name: str = "liverseg-resnet34-unet"
    version: str = "0.1.0"


@dataclass
class TrainResult:
    model_dir: Path
    epochs_run: int
    history: list[dict[str, Any]]
    validation: dict[str, Any]
    seconds: float
    card: dict[str, Any]
    batch_losses: list[float] = field(default_factory=list)
    batch_seconds: list[float] = field(default_factory=list)


def resolve_device(name: str) -> str:
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda: no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise TrainError(f"--device must be auto, cpu or cuda, got {name!r}")
    return name


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    Without it PyTorch emulates bf16 on the CPU, which is several times *slower*
    than float32 (measured here on an AVX2-only AMD EPYC: ~5x slower).
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            flags = fh.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        try:
            import torch

            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except Exception:  # noqa: BLE001
            return False


def bf16_supported(device: str) -> bool:
    """Whether bfloat16 autocast works on ``device`` (tried on a tiny convolution)."""
    import torch

    try:
        if device == "cuda":
            return bool(torch.cuda.is_bf16_supported())
        conv = torch.nn.Conv2d(3, 4, 3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(torch.zeros(1, 3, 8, 8))
        return y.dtype == torch.bfloat16
    except Exception:  # noqa: BLE001 - any failure means "not supported"
        return False


def bf16_default(device: str) -> bool:
    """The ``--bf16`` default: on CUDA when supported; on the CPU only with native bf16 hardware."""
    if device == "cuda":
        return bf16_supported(device)
    return cpu_has_native_bf16() and bf16_supported(device)


def _software_versions() -> dict[str, str]:
    import fastai
    import torch
    import torchvision

    from liverseg_studio import __version__

    return {
        "liverseg_studio": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "fastai": fastai.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def _device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"


def _per_slice_dice(pred: np.ndarray, truth: np.ndarray) -> float | None:
    from liverseg_studio.core.metrics import dice

    return dice(pred, truth)


def predict_store(model: Any, store: SliceStore, device: str, bs: int, bf16: bool, spec: PreprocessSpec) -> np.ndarray:
    """Labels (N, S, S) predicted by ``model`` (a bare unet expecting ImageNet-normalised input)."""
    import torch

    from liverseg_studio.model.arch import IMAGENET_MEAN, IMAGENET_STD
    from liverseg_studio.training.data import make_sample

    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out = np.zeros((len(store), store.size, store.size), dtype=np.uint8)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(store), bs):
            idx = range(start, min(start + bs, len(store)))
            x = np.stack([make_sample(store, i, None, None, spec)[0] for i in idx]).transpose(0, 3, 1, 2)
            xt = (torch.from_numpy(np.ascontiguousarray(x)).to(device) - mean) / std
            if bf16:
                with torch.autocast(device, dtype=torch.bfloat16):
                    logits = model(xt)
            else:
                logits = model(xt)
            out[start : start + len(idx)] = logits.float().argmax(1).cpu().numpy().astype(np.uint8)
    return out


def validation_report(labels_pred: np.ndarray, store: SliceStore) -> dict[str, Any]:
    """Per-slice liver Dice (mean, median), tumour Dice on complete-label slices, by set."""
    liver: list[float] = []
    tumour: list[float] = []
    by_set: dict[str, list[float]] = {}
    for i in range(len(store)):
        truth = store.labels[i]
        pred = labels_pred[i]
        d = _per_slice_dice(pred >= 1, truth >= 1)
        if d is not None:
            liver.append(d)
            by_set.setdefault(store.entries[i]["set"], []).append(d)
        if not store.partial[i]:
            dt = _per_slice_dice(pred == 2, truth == 2)
            if dt is not None and (truth == 2).any():
                tumour.append(dt)

    def stats(v: list[float]) -> dict[str, Any]:
        if not v:
            return {"n": 0, "mean": None, "median": None}
        a = np.asarray(v)
        return {"n": int(a.size), "mean": round(float(a.mean()), 4), "median": round(float(np.median(a)), 4),
                "min": round(float(a.min()), 4)}

    return {
        "split": "valid",
        "unit": "per slice",
        "convention": "slices with empty truth and empty prediction are skipped for Dice (undefined)",
        "dice_liver": stats(liver),
        "dice_tumour": stats(tumour),
        "dice_tumour_note": "only slices with complete labels and real tumour; merged (partial) masks hide tumours",
        "dice_liver_by_set": {k: stats(v) for k, v in sorted(by_set.items())},
        "n_slices": len(store),
    }


def synthetic_tumour_store(store: SliceStore, seed: int = 1234) -> SliceStore | None:
    """A copy of ``store`` whose HU-known slices (those allowed synthetic tumours) carry
    deterministic synthetic lesions (seeded per slice); None if no slice qualifies."""
    from liverseg_studio.training.synthetic import paint_tumours

    idx = [i for i in range(len(store)) if store.synthetic_ok[i]]
    if not idx:
        return None
    sub = store.subset(idx)
    for j in range(len(sub)):
        rng = np.random.default_rng([seed, j])
        hu, lab, _ = paint_tumours(sub.hu[j].astype(np.float32), sub.labels[j], rng)
        sub.hu[j] = np.clip(np.rint(hu), -32767, 32767).astype(np.int16)
        sub.labels[j] = lab
    return sub


def synthetic_tumour_report(labels_pred: np.ndarray, store: SliceStore) -> dict[str, Any]:
    """Tumour Dice on validation slices with painted lesions (a proxy for monitoring only).

    On partial slices, pixels whose truth is liver-or-tumour are left out of the
    false positives (real tumours may hide there)."""
    from liverseg_studio.core.metrics import dice

    inter = total = 0
    per: list[float] = []
    for i in range(len(store)):
        t = store.labels[i] == 2
        p = labels_pred[i] == 2
        if store.partial[i]:
            p = p & (store.labels[i] != 1)
        inter += int((p & t).sum())
        total += int(p.sum() + t.sum())
        d = dice(p, t)
        if d is not None and t.any():
            per.append(d)
    return {
        "what": "tumour Dice on validation slices with deterministic synthetic lesions (monitoring only, not used "
        "for selection; not a substitute for real tumours)",
        "n_slices": len(store),
        "dice_tumour_pooled": None if total == 0 else round(2.0 * inter / total, 4),
        "dice_tumour_per_slice_mean": round(float(np.mean(per)), 4) if per else None,
    }


def read_log(path: Path) -> list[dict[str, Any]]:
    """Rows of fastai's CSVLogger file (repeated header lines from resumed runs skipped)."""
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header: list[str] | None = None
        for r in reader:
            if not r:
                continue
            if r[0] == "epoch":
                header = r
                continue
            if header is None:
                continue
            row: dict[str, Any] = {}
            for k, v in zip(header, r):
                try:
                    row[k] = float(v) if k != "time" else v
                except ValueError:
                    row[k] = v
            rows.append(row)
    return rows


def plot_log(rows: list[dict[str, Any]], path: Path) -> None:
    """Loss and Dice per epoch as a PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [int(r["epoch"]) + 1 for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, lab in (("train_loss", "train loss"), ("valid_loss", "valid loss")):
        a1.plot(ep, [r.get(key, math.nan) for r in rows], marker="o", label=lab)
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    a1.set_title("loss")
    for key, lab in (("dice_liver", "Dice liver"), ("dice_tumour", "Dice tumour"), ("foreground_acc", "foreground acc")):
        a2.plot(ep, [r.get(key, math.nan) for r in rows], marker="o", label=lab)
    a2.set_xlabel("epoch")
    a2.set_ylim(0, 1)
    a2.legend()
    a2.set_title("validation")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _licence_summary(manifest: dict[str, Any], used: set[str]) -> tuple[str, list[dict[str, Any]]]:
    data = []
    nc = False
    for name in sorted(used):
        s = manifest.get("sets", {}).get(name, {})
        nc = nc or bool(s.get("non_commercial", True))
        data.append({"set": name, "licence": s.get("licence", "unknown"), "grey": s.get("grey"),
                     "partial_labels": s.get("partial")})
    if nc:
        text = ("CC BY-NC-SA 4.0: non-commercial use only (weights derived from LiTS and other non-commercial "
                "training data)")
    else:
        text = "see training data licences"
    return text, data


def repeat_index(store: SliceStore, repeat_real: int) -> list[int] | None:
    """Training indices with slices of real (complete) labels repeated ``repeat_real`` times, real tumour twice that."""
    if repeat_real <= 1:
        return None
    index: list[int] = []
    for i in range(len(store)):
        lab = store.labels[i]
        real = not store.partial[i] and bool((lab >= 1).any())
        k = (2 * repeat_real if (lab == 2).any() else repeat_real) if real else 1
        index.extend([i] * k)
    return index


def warm_start(model: Any, model_dir: Path, size: int) -> str:
    """Load a model folder's weights into ``model`` (fastai's DynamicUnet); returns what was loaded."""
    from liverseg_studio.model.arch import load_unet_weights
    from liverseg_studio.training.warmstart import unet_from_onnx

    model_dir = Path(model_dir)
    if (model_dir / "model.safetensors").is_file():
        load_unet_weights(model, model_dir / "model.safetensors")
        return str(model_dir / "model.safetensors")
    onnx = next((model_dir / n for n in ("model.onnx", "model.int8.onnx") if (model_dir / n).is_file()), None)
    if onnx is None:
        raise TrainError(f"--init-from {model_dir}: no model.safetensors, model.onnx or model.int8.onnx")
    model.load_state_dict(unet_from_onnx(onnx, size).state_dict(), strict=True)
    return f"{onnx.name} of {model_dir} (int8 weights dequantised; BatchNorm folded into the convolutions)"


def build_learner(
    train_ds: SegDataset, valid_ds: SegDataset, cfg: TrainConfig, out: Path, device: str, pretrained: bool, workers: int
) -> Any:
    import fastai.callback.schedule  # noqa: F401  (patches Learner.fit_one_cycle / lr_find)
    import torch
    from fastai.callback.progress import ProgressCallback
    from fastai.data.core import DataLoaders
    from fastai.vision.augment import Normalize
    from fastai.vision.core import imagenet_stats
    from fastai.vision.learner import unet_learner
    from torchvision.models import resnet34

    from liverseg_studio.model.arch import ARCH_DEFAULTS, N_CLASSES
    from liverseg_studio.training.fastai_parts import DiceLiver, DiceTumour, ForegroundAccuracy, MarginalCrossEntropy

    dls = DataLoaders.from_dsets(
        train_ds,
        valid_ds,
        bs=cfg.bs,
        num_workers=workers,
        device=torch.device(device),
        after_batch=[Normalize.from_stats(*imagenet_stats)],
        pin_memory=device == "cuda",
        persistent_workers=workers > 0,
    )
    learn = unet_learner(
        dls,
        resnet34,
        normalize=False,  # added above, always (also without ImageNet weights)
        n_out=N_CLASSES,
        pretrained=pretrained,
        loss_func=MarginalCrossEntropy(tumour_weight=cfg.tumour_weight),
        metrics=[DiceLiver(), DiceTumour(), ForegroundAccuracy()],
        path=out,
        model_dir=CHECKPOINT_DIR,
        **ARCH_DEFAULTS,
    )
    learn.remove_cb(ProgressCallback)
    from liverseg_studio.training.fastai_parts import EpochLogger

    learn.logger = EpochLogger(learn)
    if pretrained:
        learn.unfreeze()
    return learn


def train(data_dir: Path, out: Path, cfg: TrainConfig, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train on ``data_dir`` (prepared), write ``out`` (MODEL_DIR); see the module docstring."""
    import torch

    from liverseg_studio.core.modelcard import DEFAULT_ARCHITECTURE, ModelCard, write_card
    from liverseg_studio.model.arch import ARCH_DEFAULTS, imagenet_weights_available, imagenet_weights_path, save_unet_weights

    say = log or (lambda s: print(s, file=sys.stderr, flush=True))
    data_dir, out = Path(data_dir), Path(out)
    if cfg.size < 32 or cfg.size % 32:
        raise TrainError(f"--size must be a positive multiple of 32, got {cfg.size}")
    if cfg.epochs < 1 or cfg.bs < 1:
        raise TrainError("--epochs and --bs must be >= 1")
    if not 0.0 <= cfg.synthetic_tumours <= 1.0:
        raise TrainError(f"--synthetic-tumours must be a probability 0..1, got {cfg.synthetic_tumours}")
    manifest = load_manifest(data_dir)
    ckpt = out / CHECKPOINT_DIR
    state_path = ckpt / "state.json"
    state: dict[str, Any] = {}
    if cfg.resume:
        if not state_path.is_file() or not (ckpt / "last.pth").is_file():
            raise TrainError(f"{out}: nothing to resume (no {CHECKPOINT_DIR}/last.pth and state.json)")
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if int(state.get("size", cfg.size)) != cfg.size:
            raise TrainError(f"--resume: the checkpoint was trained at --size {state.get('size')}, not {cfg.size}")
    elif out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise TrainError(f"{out}: folder is not empty; use --resume to continue or --overwrite to start again")
        for name in ("model.safetensors", "export.pkl", "model.json", LOG_NAME, PLOT_NAME):
            if (out / name).exists():
                (out / name).unlink()
        for name in ("last.pth", "best.pth", "state.json"):
            if (ckpt / name).exists():
                (ckpt / name).unlink()
    out.mkdir(parents=True, exist_ok=True)
    ckpt.mkdir(exist_ok=True)

    if cfg.threads is not None:
        if cfg.threads < 1:
            raise TrainError("--threads must be >= 1")
        torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = resolve_device(cfg.device)
    use_bf16 = bf16_default(device) if cfg.bf16 is None else bool(cfg.bf16)
    if use_bf16 and not bf16_supported(device):
        raise TrainError(f"--bf16: bfloat16 autocast is not supported on {device} here")
    if cfg.pretrained == "yes" and not imagenet_weights_available():
        raise TrainError(f"--pretrained yes: no ImageNet ResNet-34 weights in the local torch cache ({imagenet_weights_path()})")
    pretrained = cfg.pretrained == "yes" or (cfg.pretrained == "auto" and imagenet_weights_available())
    workers = cfg.workers if cfg.workers is not None else (min(8, max(1, (os.cpu_count() or 2) - 1)) if device == "cuda" else 0)

    t_load = time.monotonic()
    train_store = SliceStore.load(data_dir, "train", cfg.size, limit=cfg.max_train_slices)
    valid_store = SliceStore.load(data_dir, "valid", cfg.size)
    check_store(train_store, "training")
    check_store(valid_store, "validation")
    say(f"train: {len(train_store)} training / {len(valid_store)} validation slices at {cfg.size}px loaded in "
        f"{time.monotonic() - t_load:.1f}s; device {device}, bf16 {use_bf16}, ImageNet weights {pretrained}, "
        f"workers {workers}")
    aug = AugmentConfig(**{**cfg.augment.__dict__, "synthetic_tumours": cfg.synthetic_tumours})
    prior_report = None
    if cfg.liver_prior is not None:
        train_store, prior_report = train_store.with_liver_prior(cfg.liver_prior)
        say(f"train: liver prior: {prior_report['made_liver']} of {prior_report['partial_pixels']} liver-or-tumour "
            f"pixels of the training split are normal-parenchyma liver")
    index = repeat_index(train_store, cfg.repeat_real_labels)
    train_ds = SegDataset(train_store, aug, cfg.spec, index=index, crop=cfg.crop)
    valid_ds = SegDataset(valid_store, None, cfg.spec)
    learn = build_learner(train_ds, valid_ds, cfg, out, device, pretrained, workers)
    warm = None
    if cfg.init_from is not None and not cfg.resume:
        warm = warm_start(learn.model, Path(cfg.init_from), cfg.size)
        say(f"train: warm start from {warm}")

    from liverseg_studio.training.fastai_parts import (
        BestModelSaver,
        BF16Autocast,
        CsvEpochLog,
        EpochCheckpoint,
        FreezeBatchNorm,
        PauseWhileFile,
        ProgressLine,
        StopAfterEpochs,
    )

    # learning rate
    if cfg.lr is not None:
        lr = float(cfg.lr)
        lr_how = "given"
    elif "lr" in state:
        lr = float(state["lr"])
        lr_how = state.get("lr_how", "from checkpoint")
    elif device == "cuda":
        if use_bf16:
            learn.add_cb(BF16Autocast(device))
        sug = learn.lr_find(show_plot=False)
        if use_bf16:
            learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, BF16Autocast)])
        lr = float(np.clip(sug.valley, 1e-4, 5e-3))
        lr_how = f"lr_find valley {sug.valley:.2e} clipped to [1e-4, 5e-3]"
    else:
        lr = DEFAULT_LR
        lr_how = "default (lr_find skipped on CPU)"
    say(f"train: lr_max {lr:.2e} ({lr_how})")

    start_epoch = 0
    if cfg.resume:
        learn.load("last", with_opt=True, device=device)
        start_epoch = int(state["epoch_done"]) + 1
        if start_epoch >= cfg.epochs:
            say(f"train: checkpoint already finished epoch {start_epoch}/{cfg.epochs}; writing the model")
        else:
            say(f"train: resuming at epoch {start_epoch + 1}/{cfg.epochs}")
    if cfg.select not in ("dice_liver", "last"):
        raise TrainError(f"--select must be dice_liver or last, got {cfg.select!r}")
    saver = BestModelSaver(monitor="dice_liver", comp=np.greater, fname="best", reset_on_fit=not cfg.resume,
                           skip_to=start_epoch)
    if cfg.resume and state.get("best") is not None:
        saver.best = float(state["best"])
    info = {"size": cfg.size, "lr": lr, "lr_how": lr_how, "epochs": cfg.epochs, "bs": cfg.bs,
            "seconds": float(state.get("seconds", 0.0))}
    progress_cb = ProgressLine()
    cbs: list[Any] = [saver, EpochCheckpoint(info, saver, skip_to=start_epoch),
                      CsvEpochLog(out / LOG_NAME, skip_to=start_epoch), progress_cb]
    if use_bf16:
        cbs.insert(0, BF16Autocast(device))
    if cfg.freeze_bn:
        cbs.append(FreezeBatchNorm())
    if cfg.pause_file is not None:
        cbs.append(PauseWhileFile(Path(cfg.pause_file)))
    if cfg.stop_after is not None:
        cbs.append(StopAfterEpochs(cfg.stop_after))
    lr_max: Any = slice(lr / 10, lr) if pretrained else lr
    t0 = time.monotonic()
    if start_epoch < cfg.epochs:
        learn.fit_one_cycle(cfg.epochs, lr_max, start_epoch=start_epoch, cbs=cbs)
    else:
        if (ckpt / "best.pth").is_file():
            learn.load("best", device=device)
    if cfg.select == "last" and start_epoch < cfg.epochs and (ckpt / "last.pth").is_file():
        learn.load("last", device=device, with_opt=False)
    seconds = float(state.get("seconds", 0.0)) + (time.monotonic() - t0)
    if state_path.is_file():
        st = json.loads(state_path.read_text(encoding="utf-8"))
        st["seconds"] = seconds
        state_path.write_text(json.dumps(st, indent=1), encoding="utf-8")

    # best weights are loaded by SaveModelCallback at the end of fit
    model = learn.model
    say("train: measuring the validation split per slice")
    pred = predict_store(model, valid_store, device, max(cfg.bs, 8), use_bf16, cfg.spec)
    val = validation_report(pred, valid_store)
    synth = synthetic_tumour_store(valid_store)
    if synth is not None:
        val["synthetic_tumours"] = synthetic_tumour_report(
            predict_store(model, synth, device, max(cfg.bs, 8), use_bf16, cfg.spec), synth
        )
    val["best_epoch_dice_liver_global"] = None if saver.best is None or not math.isfinite(float(saver.best)) else round(float(saver.best), 4)

    model.float()
    save_unet_weights(model, out / "model.safetensors", metadata={"format": "pt", "input_size": str(cfg.size)})
    rows = read_log(out / LOG_NAME)
    if rows:
        try:
            plot_log(rows, out / PLOT_NAME)
        except Exception as exc:  # noqa: BLE001 - a plot must not lose a trained model
            say(f"train: warning: could not draw {PLOT_NAME}: {exc}")
    exported = False
    try:
        learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ in ("BF16Autocast", "EpochCheckpoint", "ProgressLine", "CsvEpochLog", "BestModelSaver")])
        learn.export(out / "export.pkl")
        exported = True
    except Exception as exc:  # noqa: BLE001 - export.pkl is a convenience
        say(f"train: warning: export.pkl not written ({type(exc).__name__}: {exc})")

    used = {e["set"] for e in train_store.entries} | {e["set"] for e in valid_store.entries}
    licence, data_info = _licence_summary(manifest, used)
    counts = manifest.get("counts", {})
    card = ModelCard(
        name=cfg.name,
        version=cfg.version,
        architecture={**DEFAULT_ARCHITECTURE, **ARCH_DEFAULTS, "encoder": "resnet34", "normalize": "imagenet"},
        input_size=cfg.size,
        preprocessing=cfg.spec,
        training={
            "framework": "fastai unet_learner(resnet34, n_out=3) + fit_one_cycle",
            "data_dir": str(data_dir),
            "data": data_info,
            "slices": {"train": len(train_store), "valid": len(valid_store),
                       "test": sum(counts.get("test", {}).values()) if counts else None},
            "split": {"by": "patient", "seed": manifest.get("seed"), "fractions": manifest.get("split_fractions")},
            "held_out": "LiTS case 117 (liver-ct-segmentation-package) never used for training, tuning or selection",
            "epochs": cfg.epochs,
            "batch_size": cfg.bs,
            "lr_max": lr,
            "lr_how": lr_how,
            "loss": "cross-entropy; marginal -log(p_liver + p_tumour) on liver-or-tumour (partial) pixels"
                    + (f"; tumour pixels weighted x{cfg.tumour_weight:g}" if cfg.tumour_weight != 1.0 else ""),
            "augmentations": aug.to_json(),
            "imagenet_pretrained": bool(pretrained),
            "selection": ("best epoch by validation Dice liver (global, SaveModelCallback)" if cfg.select == "dice_liver"
                          else "the last epoch (no selection)"),
            "warm_start": warm,
            "liver_prior": None if cfg.liver_prior is None else {**cfg.liver_prior.to_json(), **(prior_report or {})},
            "repeat_real_labels": cfg.repeat_real_labels,
            "freeze_bn": cfg.freeze_bn,
            "crop": cfg.crop,
            "stopped_after_epochs": cfg.stop_after,
            "bf16": use_bf16,
            "device": _device_name(device),
            "training_seconds": round(seconds, 1),
            "seconds_per_batch_median": round(float(np.median(progress_cb.batch_seconds)), 3) if progress_cb.batch_seconds else None,
            "software": _software_versions(),
            "log": LOG_NAME,
            "plot": PLOT_NAME,
        },
        metrics={"validation": val},
        licence=licence,
    )
    card.record_file("safetensors", out)
    if exported:
        card.record_file("pickle", out)
    write_card(out, card)
    say(f"train: done in {seconds:.0f}s; validation liver Dice per slice mean {val['dice_liver']['mean']} "
        f"median {val['dice_liver']['median']}; wrote {out}")
    return TrainResult(out, cfg.epochs, rows, val, seconds, card.to_json(), progress_cb.losses, progress_cb.batch_seconds)
