"""LiverSeg Studio plugin: the ``openvino`` backend (OpenVINO runtime on CPU).

Registered through the entry point ``liverseg_studio.plugins: openvino`` as any
third-party plugin is.  Importing this module is cheap: ``openvino`` is imported
by ``load``.  The backend reuses the built-in onnx backend's model choice
(``model.int8.onnx``, else ``model.onnx``) and its sha256 check against
``model.json``, and the shared slice loop (``backends.common``), so only the
engine differs: the predictions agree with ONNX Runtime's (tested).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from liverseg_studio.backends.onnx_backend import INPUT_NAME, OUTPUT_NAME, OnnxBackend, check_io
from liverseg_studio.backends.plugin import module_installed
from liverseg_studio.core.errors import BackendError
from liverseg_studio.core.modelcard import ModelCard
from liverseg_studio.plugins import hookimpl
from liverseg_studio.plugins.registry import BackendSpec

__version__ = "0.1.0"

NAME = "openvino"
#: Default-engine preference (``BackendSpec.default_rank``): above ONNX Runtime's,
#: because OpenVINO runs the same int8 model 3-4x faster on the CPUs measured (README).
RANK = 20


def openvino_available() -> bool:
    """Whether the OpenVINO runtime can be found, without importing it."""
    return module_installed("openvino")


class OpenVinoBackend(OnnxBackend):
    """The onnx backend's model folder and checks, run by OpenVINO on the CPU."""

    name = NAME
    engine = "OpenVINO"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._compiled: Any = None
        self._request: Any = None
        self._static_batch = 0

    def _open(self, path: Path, n_threads: int, card: ModelCard) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            msg = f"the openvino backend needs the openvino package (pip install openvino): {exc}"
            raise BackendError(msg) from exc
        try:
            core = ov.Core()
            model = core.read_model(str(path))
        except Exception as exc:
            raise BackendError(f"{path}: OpenVINO cannot read the model: {exc}") from exc
        inputs = {name: [d.get_length() if d.is_static else -1 for d in p.get_partial_shape()]
                  for p in model.inputs for name in p.get_names()}
        outputs = [name for p in model.outputs for name in p.get_names()]
        check_io(path, card, inputs=inputs, outputs=outputs)
        s = int(card.input_size)
        batch = max(1, int(self.batch_size))
        config = {
            "INFERENCE_NUM_THREADS": int(n_threads),
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # keep fp32 parts in fp32 on AMX/bf16 CPUs (OpenVINO would pick bf16 there)
            "INFERENCE_PRECISION_HINT": "f32",
        }
        try:
            # a static shape: ~2x faster than a dynamic batch on the CPU plugin (measured)
            model.reshape({INPUT_NAME: [batch, 3, s, s]})
            compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise BackendError(f"{path}: OpenVINO cannot compile the model for the CPU: {exc}") from exc
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._static_batch = batch
        self._session = compiled  # marks the backend as loaded
        self.engine_version = str(ov.get_version()).split("-")[0]

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        """Logits (n, 3, S, S) for x float32 (n, 3, S, S); a short batch is padded to the static batch."""
        if self._request is None:
            raise BackendError("openvino backend: load(model_dir) must be called before predict")
        x = np.ascontiguousarray(x, dtype=np.float32)
        n = x.shape[0]
        if n > self._static_batch:
            step = self._static_batch
            return np.concatenate([self.run_batch(x[i : i + step]) for i in range(0, n, step)])
        if n < self._static_batch:
            pad = np.zeros((self._static_batch - n, *x.shape[1:]), dtype=np.float32)
            x = np.concatenate([x, pad])
        out = self._request.infer({INPUT_NAME: x})
        logits = out[self._compiled.output(OUTPUT_NAME)]
        # the request reuses its output buffer: copy the rows we keep
        return np.array(logits[:n], dtype=np.float32, copy=True)


def factory() -> OpenVinoBackend:
    """Cheap factory registered as the ``openvino`` backend."""
    return OpenVinoBackend()


@hookimpl
def liverseg_register_backends(registry: Any) -> None:
    """The ``openvino`` backend (preferred as the default engine when OpenVINO is installed)."""
    available = openvino_available()
    registry.add(
        BackendSpec(
            name=NAME,
            factory=factory,
            description=(
                "OpenVINO on CPU (same model.int8.onnx as onnx, 3-4x faster); default when installed"
                if available
                else "unavailable: the openvino package is not installed (pip install openvino)"
            ),
            default_rank=RANK if available else 0,
        )
    )


__all__ = ["OpenVinoBackend", "factory", "openvino_available", "NAME", "RANK"]
