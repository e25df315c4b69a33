"""The backend interface every segmentation plugin implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from liverseg_studio.core.volume import LabelMap, Volume

#: ``progress(done, total)`` is called after each batch of slices.
ProgressFn = Callable[[int, int], None]
#: ``is_cancelled()`` is polled between batches; True stops the prediction
#: with :class:`~liverseg_studio.core.errors.CancelledError`.
CancelFn = Callable[[], bool]


@dataclass(frozen=True, eq=False)
class Prediction:
    """What ``Backend.predict`` returns."""

    #: uint8 (z, y, x) label map shaped like the input volume, values from ``Label``.
    labels: LabelMap
    #: Optional float32 (z, 3, y, x) class probabilities (background, liver, tumour).
    probabilities: np.ndarray | None = None
    #: Seconds spent, by phase (e.g. {"preprocess": .., "inference": ..}).
    timings: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A segmentation backend.

    Lifecycle: ``factory()`` (cheap) -> ``load(model_dir)`` (may import torch or
    onnxruntime, read weights) -> ``predict(volume, ...)`` any number of times.
    """

    name: str

    def load(self, model_dir: Path | None, *, threads: int | None = None) -> None:
        """Load the model.  Raise :class:`~liverseg_studio.core.errors.BackendError` with a clear message on failure."""

    def predict(
        self,
        volume: Volume,
        *,
        progress: ProgressFn | None = None,
        is_cancelled: CancelFn | None = None,
    ) -> Prediction:
        """Segment every slice of ``volume``; return labels shaped like ``volume.shape``."""
