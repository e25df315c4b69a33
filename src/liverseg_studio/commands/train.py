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


def _pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI, got {text!r}") from None
    if not 0 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 0 <= LO <= HI, got {text!r}")
    return lo, hi


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
    p.add_argument("--init-from", type=Path, default=None, metavar="MODEL_DIR",
                   help="start from a model folder's weights (model.safetensors, else its ONNX file dequantised)")
    p.add_argument("--liver-prior", action="store_true",
                   help="liver-or-tumour pixels of normal parenchyma intensity are trained as liver; hypo/hyperdense "
                        "ones stay ambiguous (HU-exact slices of the training split)")
    p.add_argument("--repeat-real-labels", type=int, default=1, metavar="K",
                   help="see each training slice with real labels (liver/tumour known) K times per epoch, "
                        "2K with real tumour (default 1)")
    p.add_argument("--freeze-bn", action="store_true", help="keep BatchNorm statistics frozen (warm starts, small batches)")
    p.add_argument("--crop", type=int, default=None, metavar="PX",
                   help="train on random PX x PX crops of the augmented slices (cheaper on a CPU; default: whole slices)")
    p.add_argument("--select", choices=("dice_liver", "last"), default="dice_liver",
                   help="which epoch's weights to keep: best validation liver Dice (default) or the last")
    p.add_argument("--tumour-hu", type=_pair, default=None, metavar="LO,HI",
                   help="synthetic tumours are LO..HI HU darker than the liver (default 20,80)")
    p.add_argument("--tumour-radius", type=_pair, default=None, metavar="LO,HI",
                   help="synthetic tumour radii in pixels of a 256-pixel slice (default 3,28)")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="end after N epochs of the --epochs long one-cycle schedule")
    p.add_argument("--tumour-weight", type=float, default=1.0, metavar="W",
                   help="weight of tumour pixels in the loss (tumours are rare pixels; default 1)")
    p.add_argument("--pause-file", type=Path, default=None, metavar="PATH",
                   help="pause between batches while PATH exists (let a benchmark have the CPU)")
    p.add_argument("--max-train-slices", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--augment", choices=("auto", "canonical", "dihedral"), default="auto",
                   help="canonical: no flips and no 90-degree turns (slices in one display orientation: small "
                        "rotations, zoom, window/contrast only); dihedral: the old recipes' flips and 90-degree turns; "
                        "auto (default): canonical when DATA_DIR was prepared with --orientation canonical")
    p.add_argument("--name", default="liverseg-resnet34-unet", help="model name in model.json")
    p.add_argument("--model-version", default="0.1.0", help="model version in model.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from liverseg_studio.training.data import AugmentConfig, LiverPrior
    from liverseg_studio.training.synthetic import TumourConfig
    from liverseg_studio.training.train import TrainConfig, train

    tumour = TumourConfig()
    if args.tumour_hu is not None:
        tumour = replace(tumour, darker_hu=args.tumour_hu)
    if args.tumour_radius is not None:
        tumour = replace(tumour, min_radius=args.tumour_radius[0], max_radius=args.tumour_radius[1])

    from liverseg_studio.training.data import augment_for
    from liverseg_studio.training.prepare import load_manifest

    turns = augment_for(args.augment, load_manifest(args.data_dir) if args.augment == "auto" else {})
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
        augment=AugmentConfig(tumour=tumour, **turns),
        init_from=args.init_from,
        liver_prior=LiverPrior() if args.liver_prior else None,
        repeat_real_labels=args.repeat_real_labels,
        freeze_bn=args.freeze_bn,
        crop=args.crop,
        select=args.select,
        pause_file=args.pause_file,
        tumour_weight=args.tumour_weight,
        stop_after=args.stop_after,
    )
    res = train(args.data_dir, args.out, cfg)
    v = res.validation["dice_liver"]
    print(f"trained {res.epochs_run} epochs in {res.seconds:.0f}s -> {res.model_dir}")
    print(f"validation liver Dice per slice: mean {v['mean']} median {v['median']} (n={v['n']})")
    return 0
