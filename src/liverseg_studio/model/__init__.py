"""The network: fastai's ResNet-34 U-Net, shared by training, export and the fastai backend.

Everything here needs PyTorch and fastai (extra ``train``); both are imported
lazily inside functions, so importing this package is cheap.
"""

from liverseg_studio.model.arch import (
    ARCH_DEFAULTS,
    ENCODER,
    IMAGENET_MEAN,
    IMAGENET_STD,
    N_CLASSES,
    build_normalized_model,
    build_unet,
    imagenet_weights_available,
    imagenet_weights_path,
    load_unet_weights,
    save_unet_weights,
)

__all__ = [
    "ARCH_DEFAULTS",
    "ENCODER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "N_CLASSES",
    "build_normalized_model",
    "build_unet",
    "imagenet_weights_available",
    "imagenet_weights_path",
    "load_unet_weights",
    "save_unet_weights",
]
