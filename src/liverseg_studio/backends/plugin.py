"""Registers the built-in backends (``onnx``, ``fastai``) through the same hook third parties use.

Importing this module is cheap: the backend modules (and with them
onnxruntime/torch) are imported by the factories, and those libraries only
inside ``load``.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from liverseg_studio.plugins import hookimpl
from liverseg_studio.plugins.registry import BackendSpec

if TYPE_CHECKING:  # pragma: no cover
    from liverseg_studio.backends.fastai_backend import FastaiBackend
    from liverseg_studio.backends.onnx_backend import OnnxBackend
    from liverseg_studio.plugins.registry import BackendRegistry


def onnx_factory() -> "OnnxBackend":
    from liverseg_studio.backends.onnx_backend import OnnxBackend

    return OnnxBackend()


def fastai_factory() -> "FastaiBackend":
    from liverseg_studio.backends.fastai_backend import FastaiBackend

    return FastaiBackend()


ONNX_DESCRIPTION = "ONNX Runtime on CPU (model.int8.onnx, else model.onnx); default unless a faster engine is installed"
ONNX_UNAVAILABLE = "unavailable: ONNX Runtime not in this build (the openvino backend runs the same model)"
#: ``BackendSpec.default_rank`` of ONNX Runtime: the fallback default engine (the openvino plugin ranks higher).
ONNX_RANK = 10

FASTAI_DESCRIPTION = "PyTorch/fastai U-Net (model.safetensors; export.pkl only with --trust-pickle)"
FASTAI_UNAVAILABLE = "unavailable: PyTorch not in this build (install liverseg-studio[train]; use the onnx backend)"


def module_installed(module: str) -> bool:
    """Whether ``module`` can be found, without importing it (plugins use it to say "unavailable")."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def torch_available() -> bool:
    """Whether PyTorch can be found, without importing it (the offline executable excludes it)."""
    return module_installed("torch")


@hookimpl
def liverseg_register_backends(registry: "BackendRegistry") -> None:
    """The built-in ONNX Runtime and PyTorch/fastai backends."""
    ort = module_installed("onnxruntime")
    registry.add(
        BackendSpec(
            name="onnx",
            factory=onnx_factory,
            description=ONNX_DESCRIPTION if ort else ONNX_UNAVAILABLE,
            default_rank=ONNX_RANK if ort else 0,
        )
    )
    registry.add(
        BackendSpec(
            name="fastai",
            factory=fastai_factory,
            description=FASTAI_DESCRIPTION if torch_available() else FASTAI_UNAVAILABLE,
        )
    )
