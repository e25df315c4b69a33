"""Built-in ``fastai`` backend: the PyTorch model (imports torch/fastai in ``load`` only).

Loads ``model.safetensors`` (plain tensors, safe) into
:func:`liverseg_studio.model.arch.build_unet` as the card's ``architecture``
describes.  fastai's ``export.pkl`` is a pickle -- unpickling it can run
arbitrary code -- so it is used only with ``trust_pickle=True`` (CLI
``--trust-pickle``, a confirmation in the studio), with a warning, and only
when the folder has no safetensors weights.  A pickle-only folder without that
option is refused with a :class:`BackendError` that explains the option.

sha256 checks against ``model.json`` work as for the onnx backend
(``verify=False`` / ``LIVERSEG_ALLOW_UNVERIFIED_MODEL=1`` override them).
"""

from __future__ import annotations

import contextlib
import sys
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
from liverseg_studio.core.modelcard import CARD_NAME, DEFAULT_FILES, ModelCard, read_card, verify_file


class UntrustedPickleWarning(UserWarning):
    """A fastai ``export.pkl`` (pickle: arbitrary code) is being loaded because the user trusted it."""


class FastaiBackend(SliceModelBackend):
    """PyTorch (fastai U-Net) backend on CPU; construction is cheap."""

    name = "fastai"

    def __init__(
        self,
        *,
        trust_pickle: bool = False,
        verify: bool | None = None,
        bf16: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        want_probabilities: bool = False,
    ) -> None:
        self.trust_pickle = bool(trust_pickle)
        self.verify = verify
        self.bf16 = bool(bf16)
        self.batch_size = int(batch_size)
        self.want_probabilities = bool(want_probabilities)
        self.card: ModelCard | None = None
        self.model_dir: Path | None = None
        self.model_path: Path | None = None
        self.threads: int | None = None
        self.load_seconds: float | None = None
        self._model: Any = None

    def _verify(self, mdir: Path, kind: str, card: ModelCard, do_verify: bool) -> None:
        if do_verify:
            verify_file(mdir, kind, card)
        else:
            warnings.warn(
                f"{card.file_path(kind, mdir)}: loading without checking its sha256 against model.json "
                "(override requested)",
                UserWarning,
                stacklevel=3,
            )

    def load(
        self,
        model_dir: Path | str | None,
        *,
        threads: int | None = None,
        trust_pickle: bool | None = None,
        verify: bool | None = None,
        bf16: bool | None = None,
    ) -> None:
        """Load ``model.safetensors`` (or, trusted only, ``export.pkl``) of ``model_dir``."""
        t0 = time.perf_counter()
        mdir = resolve_model_dir(model_dir)
        trust = self.trust_pickle if trust_pickle is None else bool(trust_pickle)
        do_verify = verify if verify is not None else self.verify
        if do_verify is None:
            do_verify = not allow_unverified_from_env()
        if bf16 is not None:
            self.bf16 = bool(bf16)
        has_card = (mdir / CARD_NAME).is_file()
        card = read_card(mdir) if has_card else None
        weights = card.file_path("safetensors", mdir) if card else mdir / DEFAULT_FILES["safetensors"]
        pickle_path = card.file_path("pickle", mdir) if card else mdir / DEFAULT_FILES["pickle"]
        try:
            import torch
        except ImportError as exc:
            hint = (
                "this offline build ships without PyTorch; use the onnx backend"
                if getattr(sys, "frozen", False)
                else "pip install 'liverseg-studio[train]'"
            )
            raise BackendError(f"the fastai backend needs PyTorch and fastai ({hint}): {exc}") from exc
        n_threads = int(threads) if threads else physical_cores()
        torch.set_num_threads(n_threads)
        if weights.is_file():
            if card is None:
                raise BackendError(f"{mdir / CARD_NAME}: model card is missing (it describes the architecture)")
            self._verify(mdir, "safetensors", card, do_verify)
            from liverseg_studio.model.arch import build_normalized_model

            try:
                model = build_normalized_model(card.input_size, card.architecture, weights)
            except ValueError as exc:
                raise BackendError(f"{mdir / CARD_NAME}: {exc}") from exc
            self.model_path = weights
        elif pickle_path.is_file():
            if not trust:
                raise BackendError(
                    f"{pickle_path}: this model folder has only a fastai pickle (export.pkl). Unpickling can run "
                    "arbitrary code, so it is not loaded by default. If you trust its source, pass --trust-pickle "
                    "(trust_pickle=True); better, ask for model.safetensors or model.int8.onnx"
                )
            if card is not None and "pickle" in card.files:
                self._verify(mdir, "pickle", card, do_verify)
            elif do_verify and card is not None:
                raise BackendError(f"{pickle_path}: the model card lists no sha256 for export.pkl; refusing to unpickle")
            warnings.warn(
                f"{pickle_path}: unpickling a fastai learner (can run arbitrary code) because it was trusted",
                UntrustedPickleWarning,
                stacklevel=2,
            )
            model, card = self._load_pickle(pickle_path, card)
            self.model_path = pickle_path
        else:
            raise BackendError(f"{mdir}: no model.safetensors (nor export.pkl) for the fastai backend")
        self._model = model.eval()
        self.card = card
        self.model_dir = mdir
        self.threads = n_threads
        self.load_seconds = time.perf_counter() - t0

    @staticmethod
    def _load_pickle(path: Path, card: ModelCard | None) -> tuple[Any, ModelCard]:
        """Unpickle a fastai learner (only called when trusted) and wrap its model."""
        from fastai.learner import load_learner

        from liverseg_studio.model.arch import NormalizedModel  # type: ignore[attr-defined]

        try:
            learn = load_learner(path, cpu=True)
        except Exception as exc:
            raise BackendError(f"{path}: cannot load the fastai learner: {type(exc).__name__}: {exc}") from exc
        mean = std = None
        try:  # the learner's own Normalize transform, if any
            for tfm in learn.dls.after_batch.fs:
                if type(tfm).__name__ == "Normalize":
                    mean = tuple(float(v) for v in np.asarray(tfm.mean.cpu()).ravel())
                    std = tuple(float(v) for v in np.asarray(tfm.std.cpu()).ravel())
        except Exception:
            pass
        if card is None:
            card = ModelCard(name=path.parent.name, training={"source": "export.pkl"})
        return NormalizedModel(learn.model, mean, std), card

    # -- inference -----------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        """Logits (n, 3, S, S) for x float32 (n, 3, S, S) in [0, 1]."""
        if self._model is None:
            raise BackendError("fastai backend: load(model_dir) must be called before predict")
        import torch

        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            out = self._model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return out.float().numpy()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model_dir": str(self.model_dir) if self.model_dir else None,
            "model_file": self.model_path.name if self.model_path else None,
            "precision": "bf16" if self.bf16 else "fp32",
            "threads": self.threads,
            "card": self.card.summary() if self.card else None,
        }


def factory() -> FastaiBackend:
    """Cheap factory registered as the ``fastai`` backend."""
    return FastaiBackend()


__all__ = ["FastaiBackend", "UntrustedPickleWarning", "factory"]
