"""Built-in ``onnx`` backend: ONNX Runtime on CPU (imports onnxruntime in ``load`` only).

Model choice: ``model.int8.onnx`` (default inference) when present, else
``model.onnx`` (fp32); ``precision="fp32"``/``"int8"`` or ``model_file=`` pick
one explicitly.  Before a file is given to ONNX Runtime its sha256 is checked
against ``model.json``; a mismatch (or a file the card does not list) is
refused with :class:`BackendError` unless the user overrides it with
``verify=False`` or ``LIVERSEG_ALLOW_UNVERIFIED_MODEL=1`` (then a warning is
issued).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from liverseg_studio.backends.common import (
    DEFAULT_BATCH_SIZE,
    SliceModelBackend,
    allow_unverified_from_env,
    physical_cores,
    resolve_model_dir,
)
from liverseg_studio.core.errors import BackendError
from liverseg_studio.core.modelcard import ModelCard, read_card, verify_file

INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def check_io(path: Path, card: ModelCard, *, inputs: dict[str, Any], outputs: list[str]) -> None:
    """The model must take ``image`` (N, 3, S, S) with S = the card's ``input_size`` and return ``logits``."""
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise BackendError(
            f"{path}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, "
            f"found inputs {sorted(inputs)} and outputs {outputs}"
        )
    shape = list(inputs[INPUT_NAME])
    if len(shape) != 4 or (isinstance(shape[-1], int) and shape[-1] not in (card.input_size, -1)):
        raise BackendError(f"{path}: input shape {shape} does not match the card's input_size {card.input_size}")


class UnverifiedModelWarning(UserWarning):
    """A model file is used although its sha256 was not verified (user override)."""


class OnnxBackend(SliceModelBackend):
    """ONNX Runtime backend (CPU).  ``factory()`` is this class: construction is cheap."""

    name = "onnx"
    #: The runtime that executes the model, for reports ("engine: onnx (ONNX Runtime 1.x, ...)").
    engine = "ONNX Runtime"

    def __init__(
        self,
        *,
        precision: str | None = None,
        verify: bool | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        want_probabilities: bool = False,
    ) -> None:
        self.precision = precision
        self.verify = verify
        self.batch_size = int(batch_size)
        self.want_probabilities = bool(want_probabilities)
        self.card: ModelCard | None = None
        self.model_dir: Path | None = None
        self.model_path: Path | None = None
        self.model_kind: str | None = None
        self.threads: int | None = None
        self.load_seconds: float | None = None
        self._session: Any = None
        self.engine_version: str | None = None

    # -- loading ----------------------------------------------------------------
    def _choose(self, card: ModelCard, model_dir: Path, precision: str | None, model_file: str | None) -> tuple[str, Path]:
        if model_file is not None:
            name = Path(model_file).name
            kind = card.kind_of(name) or "onnx_custom"
            return kind, model_dir / name
        wanted = {None: ("onnx_int8", "onnx"), "auto": ("onnx_int8", "onnx"), "int8": ("onnx_int8",), "fp32": ("onnx",)}
        if precision not in wanted:
            raise BackendError(f"unknown precision {precision!r} (expected int8, fp32 or auto)")
        kinds = wanted[precision]
        for kind in kinds:
            path = card.file_path(kind, model_dir)
            if path.is_file():
                return kind, path
        names = " or ".join(card.file_path(k, model_dir).name for k in kinds)
        raise BackendError(f"{model_dir}: no ONNX model ({names}); run `liverseg export {model_dir}` first")

    def load(
        self,
        model_dir: Path | str | None,
        *,
        threads: int | None = None,
        precision: str | None = None,
        model_file: str | None = None,
        verify: bool | None = None,
    ) -> None:
        """Load the ONNX model of ``model_dir`` (None: the default model).

        ``threads``: intra-op threads (default: physical cores).  ``verify``:
        None = check sha256 unless ``LIVERSEG_ALLOW_UNVERIFIED_MODEL=1``.
        """
        t0 = time.perf_counter()
        mdir = resolve_model_dir(model_dir)
        card = read_card(mdir)
        kind, path = self._choose(card, mdir, precision if precision is not None else self.precision, model_file)
        if not path.is_file():
            raise BackendError(f"{path}: model file is missing")
        do_verify = verify if verify is not None else self.verify
        if do_verify is None:
            do_verify = not allow_unverified_from_env()
        if do_verify:
            if kind == "onnx_custom":
                raise BackendError(f"{path}: the model card does not list this file, so it cannot be verified")
            verify_file(mdir, kind, card)
        else:
            warnings.warn(
                f"{path}: loading without checking its sha256 against model.json (override requested)",
                UnverifiedModelWarning,
                stacklevel=2,
            )
        n_threads = int(threads) if threads else physical_cores()
        self._open(path, n_threads, card)
        self.card = card
        self.model_dir = mdir
        self.model_path = path
        self.model_kind = kind
        self.threads = n_threads
        self.load_seconds = time.perf_counter() - t0

    def _open(self, path: Path, n_threads: int, card: ModelCard) -> None:
        """Give the verified ``path`` to the engine (here ONNX Runtime); sets ``self._session``.

        Engines that read the same ONNX file (the openvino plugin) override this and ``run_batch``.
        """
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - base dependency
            raise BackendError(f"the onnx backend needs onnxruntime: {exc}") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # No CPU memory arena: the arena keeps its peak (~0.5 GB for a batch of
        # 256 px slices) for the session's life, on top of post-processing a
        # large volume; without it a 512x512x200 volume stays well under 1.5 GB
        # at the same speed (measured with `liverseg bench`).
        opts.enable_cpu_mem_arena = False
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise BackendError(f"{path}: ONNX Runtime cannot load the model: {exc}") from exc
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        check_io(path, card, inputs={k: v.shape for k, v in inputs.items()}, outputs=outputs)
        self._session = session
        self.engine_version = str(getattr(ort, "__version__", "")) or None

    # -- inference -----------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._session is not None

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        """Logits (n, 3, S, S) for x float32 (n, 3, S, S) in [0, 1]."""
        if self._session is None:
            raise BackendError("onnx backend: load(model_dir) must be called before predict")
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def describe(self) -> dict[str, Any]:
        """What was loaded, for reports (model card summary, file, threads)."""
        return {
            "backend": self.name,
            "model_dir": str(self.model_dir) if self.model_dir else None,
            "model_file": self.model_path.name if self.model_path else None,
            "precision": {"onnx_int8": "int8", "onnx": "fp32"}.get(self.model_kind or "", self.model_kind),
            "threads": self.threads,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "card": self.card.summary() if self.card else None,
        }


def factory() -> OnnxBackend:
    """Cheap factory registered as the ``onnx`` backend."""
    return OnnxBackend()


__all__ = ["OnnxBackend", "UnverifiedModelWarning", "check_io", "factory", "INPUT_NAME", "OUTPUT_NAME"]
