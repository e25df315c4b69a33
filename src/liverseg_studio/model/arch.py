"""Architecture builder: fastai ``DynamicUnet`` on a ResNet-34 encoder, 3 classes.

:func:`build_unet` builds the network *exactly* as
``fastai.vision.learner.unet_learner(dls, resnet34, n_out=3, **ARCH_DEFAULTS)``
does (through fastai's own ``create_unet_model``), so a ``state_dict`` saved
from a Learner trained with ``unet_learner`` and the same keyword arguments
loads into it key for key.  Training must therefore build its learner as::

    from fastai.vision.all import resnet34, unet_learner
    from liverseg_studio.model.arch import ARCH_DEFAULTS, N_CLASSES
    learn = unet_learner(dls, resnet34, n_out=N_CLASSES, pretrained=..., **ARCH_DEFAULTS)

and save ``learn.model`` with :func:`save_unet_weights`.

Input normalisation.  Every model directory's ONNX graph takes ``[0, 1]``
floats (``windowed_rgb(..., as_float=True)`` channels-first) and applies the
ImageNet mean/std itself (:class:`NormalizedModel`).  fastai's ``unet_learner``
only adds ``Normalize`` to the DataLoaders when ``pretrained=True``; training
must add ``Normalize.from_stats(*imagenet_stats)`` to ``batch_tfms`` itself
when it trains from scratch, so that the network always sees ImageNet-normalised
input (the card's ``architecture.normalize`` says ``"imagenet"``).

torch, torchvision and fastai are imported inside the functions only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

#: Name of the encoder as written into the model card.
ENCODER = "resnet34"
#: Output classes: background, liver, tumour (``core.volume.Label``).
N_CLASSES = 3
#: Keyword arguments of ``unet_learner`` / ``create_unet_model`` that shape the
#: network.  Training passes ``**ARCH_DEFAULTS`` to ``unet_learner``; the model
#: card stores them under ``architecture``.  ``last_cross=False`` (fastai's
#: default is True) drops the final full-resolution ResBlock: ~2x faster on CPU.
ARCH_DEFAULTS: dict[str, bool] = {"last_cross": False, "self_attention": False, "blur": False}
#: ImageNet statistics (fastai ``imagenet_stats``), applied inside the graph.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def imagenet_weights_path() -> Path:
    """Where torchvision caches the ResNet-34 ImageNet weights (the local torch hub cache)."""
    import torch
    from torchvision.models import ResNet34_Weights

    url = ResNet34_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def imagenet_weights_available() -> bool:
    """True when the ResNet-34 ImageNet weights are in the local torch cache.

    Only looks at the disk; never downloads anything.
    """
    try:
        path = imagenet_weights_path()
    except Exception:  # torch/torchvision missing or broken
        return False
    return path.is_file() and path.stat().st_size > 0


def build_unet(
    input_size: int,
    *,
    last_cross: bool = ARCH_DEFAULTS["last_cross"],
    self_attention: bool = ARCH_DEFAULTS["self_attention"],
    blur: bool = ARCH_DEFAULTS["blur"],
    pretrained: bool = False,
) -> "nn.Module":
    """fastai's ``DynamicUnet`` on ResNet-34 with 3 outputs, as ``unet_learner`` builds it.

    ``pretrained=True`` loads the ImageNet encoder weights from the local torch
    cache and raises ``RuntimeError`` when they are not there (never downloads).
    The returned module is in eval mode.
    """
    from liverseg_studio.core.errors import BackendError

    try:
        from fastai.vision.learner import create_unet_model
        from torchvision.models import resnet34
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendError(
            f"the ResNet-34 U-Net needs PyTorch and fastai (pip install 'liverseg-studio[train]'): {exc}"
        ) from exc
    size = int(input_size)
    if size < 32 or size % 32:
        raise ValueError(f"input_size must be a positive multiple of 32, got {input_size}")
    if pretrained and not imagenet_weights_available():
        raise RuntimeError(
            f"ImageNet weights for resnet34 are not in the local torch cache ({imagenet_weights_path()}); "
            "build with pretrained=False (no downloads are made)"
        )
    model = create_unet_model(
        resnet34,
        N_CLASSES,
        (size, size),
        pretrained=pretrained,
        last_cross=bool(last_cross),
        self_attention=bool(self_attention),
        blur=bool(blur),
    )
    return model.eval()


def _normalized_model_class() -> type:
    import torch
    from torch import nn

    class NormalizedModel(nn.Module):
        """``logits = unet((x - mean) / std)`` for ``x`` float (N, 3, S, S) in [0, 1].

        This is the module that is exported to ONNX (input ``image``, output
        ``logits``) and that the fastai backend runs.  The result is a plain
        ``torch.Tensor`` (fastai's ``TensorBase`` is stripped).
        """

        def __init__(
            self,
            unet: nn.Module,
            mean: tuple[float, ...] | None = IMAGENET_MEAN,
            std: tuple[float, ...] | None = IMAGENET_STD,
        ) -> None:
            super().__init__()
            self.unet = unet
            self.normalize = mean is not None and std is not None
            m = torch.tensor(mean if self.normalize else (0.0, 0.0, 0.0), dtype=torch.float32)
            s = torch.tensor(std if self.normalize else (1.0, 1.0, 1.0), dtype=torch.float32)
            # Non-persistent: the state_dict stays the plain unet's (prefixed "unet.").
            self.register_buffer("mean", m.view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", s.view(1, 3, 1, 1), persistent=False)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            x = (image - self.mean) / self.std if self.normalize else image
            out = self.unet(x)
            if type(out) is not torch.Tensor:  # fastai TensorBase -> plain tensor
                out = out.as_subclass(torch.Tensor)
            return out

    return NormalizedModel


_NORMALIZED_MODEL_CLASS: type | None = None


def __getattr__(name: str) -> Any:
    """Lazy ``NormalizedModel`` (defining an ``nn.Module`` subclass needs torch)."""
    global _NORMALIZED_MODEL_CLASS
    if name == "NormalizedModel":
        if _NORMALIZED_MODEL_CLASS is None:
            _NORMALIZED_MODEL_CLASS = _normalized_model_class()
        return _NORMALIZED_MODEL_CLASS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def arch_kwargs(architecture: Mapping[str, Any] | None) -> dict[str, bool]:
    """The ``build_unet`` keywords from a card's ``architecture`` mapping (missing keys: defaults)."""
    arch = dict(architecture or {})
    encoder = arch.get("encoder", ENCODER)
    if encoder != ENCODER:
        raise ValueError(f"unsupported encoder {encoder!r} (this build knows {ENCODER!r})")
    return {k: bool(arch.get(k, v)) for k, v in ARCH_DEFAULTS.items()}


def _strip_prefix(state: Mapping[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """Accept the plain unet's keys, or keys saved from a NormalizedModel (``unet.``) or DataParallel (``module.``)."""
    out = dict(state)
    for prefix in ("module.", "unet."):
        if out and all(k.startswith(prefix) for k in out):
            out = {k[len(prefix):]: v for k, v in out.items()}
    return out


def load_unet_weights(unet: "nn.Module", path: str | os.PathLike[str]) -> None:
    """Load a ``model.safetensors`` (the unet's state_dict) into ``unet``, strictly.

    Raises ``liverseg_studio.core.errors.BackendError`` naming missing/unexpected keys.
    """
    from safetensors.torch import load_file

    from liverseg_studio.core.errors import BackendError

    try:
        state = _strip_prefix(load_file(str(path), device="cpu"))
    except Exception as exc:
        raise BackendError(f"{path}: cannot read safetensors weights: {exc}") from exc
    result = unet.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise BackendError(
            f"{path}: weights do not fit the ResNet-34 U-Net of the model card "
            f"(missing {len(result.missing_keys)} keys e.g. {result.missing_keys[:3]}, "
            f"unexpected {len(result.unexpected_keys)} e.g. {result.unexpected_keys[:3]}); "
            "check architecture.last_cross/self_attention/blur in model.json"
        )


def save_unet_weights(unet: "nn.Module", path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None) -> None:
    """Save the unet's ``state_dict`` as safetensors, atomically (temp file + rename).

    Pass ``learn.model`` of a fastai Learner (or the ``unet`` of a NormalizedModel).
    """
    from safetensors.torch import save_file

    target = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in unet.state_dict().items()}
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        save_file(state, str(tmp), metadata=dict(metadata or {}))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def build_normalized_model(
    input_size: int,
    architecture: Mapping[str, Any] | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> "nn.Module":
    """``NormalizedModel(build_unet(...))`` in eval mode, optionally with weights loaded.

    ``architecture`` is the card's ``architecture`` mapping; its ``normalize``
    key (``"imagenet"``, default, or ``"none"``) selects the input normalisation.
    """
    arch = dict(architecture or {})
    unet = build_unet(input_size, **arch_kwargs(arch))
    if weights is not None:
        load_unet_weights(unet, weights)
    norm = str(arch.get("normalize", "imagenet")).lower()
    if norm not in ("imagenet", "none"):
        raise ValueError(f"unknown architecture.normalize {norm!r} (expected 'imagenet' or 'none')")
    cls = __getattr__("NormalizedModel")
    if norm == "none":
        model = cls(unet, None, None)
    else:
        model = cls(unet)
    return model.eval()
