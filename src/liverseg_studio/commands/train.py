"""``liverseg train DATA_DIR --out MODEL_DIR``: train the ResNet-34 U-Net on a prepared set."""

from __future__ import annotations

import argparse
from pathlib import Path


def _lr(text: str) -> float | None:
    if text.lower() == "auto":
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a learning rate or 'auto', got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError("the learning rate must be > 0")
    return v


def _workers(text: str) -> int | None:
    if text.lower() == "auto":
        return None
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of workers or 'auto', got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError("--workers must be >= 0")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the ResNet-34 U-Net (fastai) on a prepared set",
        description=(
            "fastai unet_learner(resnet34, n_out=3) + fit_one_cycle on DATA_DIR (from liverseg prepare). "
            "Writes MODEL_DIR: model.safetensors, export.pkl, model.json, training_log.csv, training_plot.png, "
            "checkpoints/ (for --resume). ImageNet weights are used only if already in the local torch cache."
        ),
    )
    p.add_argument("data_dir", type=Path, help="prepared set (liverseg prepare --out)")
    p.add_argument("--out", required=True, type=Path, help="model folder to write (MODEL_DIR)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--size", type=int, default=256, help="input size (multiple of 32, default 256)")
    p.add_argument("--bs", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--lr", type=_lr, default=None, metavar="LR|auto",
                   help="max learning rate of the one-cycle schedule (auto: lr_find on CUDA, 1e-3 on CPU)")
    p.add_argument("--bf16", dest="bf16", action="store_true", default=None, help="bfloat16 autocast (default: on CUDA when supported, on the CPU only with native bf16 (AVX512-BF16/AMX); emulated bf16 is slower than fp32)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoints/last.pth")
    p.add_argument("--overwrite", action="store_true", help="start again in a non-empty MODEL_DIR")
    p.add_argument("--synthetic-tumours", type=float, default=0.5, metavar="P",
                   help="probability of painting synthetic tumours into a HU-known training slice (default 0.5; 0 = off)")
    p.add_argument("--workers", type=_workers, default=None, metavar="N|auto", help="DataLoader workers (auto: 0 on CPU)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--pretrained", choices=("auto", "yes", "no"), default="auto",
                   help="ImageNet encoder weights from the local torch cache (auto: if present; never downloads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; on a busy shared CPU 1 can be faster)")
    p.add_argument("--max-train-slices", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--name", default="liverseg-resnet34-unet", help="model name in model.json")
    p.add_argument("--model-version", default="0.1.0", help="model version in model.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liverseg_studio.training.train import TrainConfig, train

    cfg = TrainConfig(
        epochs=args.epochs,
        size=args.size,
        bs=args.bs,
        lr=args.lr,
        bf16=args.bf16,
        resume=args.resume,
        synthetic_tumours=args.synthetic_tumours,
        workers=args.workers,
        device=args.device,
        pretrained=args.pretrained,
        seed=args.seed,
        threads=args.threads,
        overwrite=args.overwrite,
        max_train_slices=args.max_train_slices,
        name=args.name,
        version=args.model_version,
    )
    res = train(args.data_dir, args.out, cfg)
    v = res.validation["dice_liver"]
    print(f"trained {res.epochs_run} epochs in {res.seconds:.0f}s -> {res.model_dir}")
    print(f"validation liver Dice per slice: mean {v['mean']} median {v['median']} (n={v['n']})")
    return 0
