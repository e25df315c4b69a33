"""``segment_volume``: backend prediction -> 3D post-processing -> volumetry.

Slice batching (bounded memory) lives in the backend; the pipeline passes the
``progress(done, total)`` callback and the ``is_cancelled()`` poll through,
checks what the backend returned, post-processes in 3D
(:mod:`liverseg_studio.core.postprocess`), measures
(:mod:`liverseg_studio.core.volumetry`) and times every phase.  It is Qt-free;
the studio runs it in a worker thread.

Memory: the volume may be lazy (read a batch of slices at a time by the
backend); besides the current batch the pipeline holds one uint8 label volume.
Post-processing runs on a crop to the kept liver component's box and rewrites
the labels in place (:mod:`liverseg_studio.segment.streaming`, bit for bit
what ``postprocess_labels`` gives on the whole volume); the labels before it
stay available as a lazy ``raw_labels`` over the voxels that changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from liverseg_studio.core.errors import BackendError, CancelledError
from liverseg_studio.core.postprocess import DEFAULT_MIN_COMPONENT_MM3, PostprocessReport
from liverseg_studio.core.slices import LazyArray
from liverseg_studio.core.volume import Label, LabelMap, Volume
from liverseg_studio.core.volumetry import VolumeStats, compute_stats
from liverseg_studio.segment.streaming import postprocess_in_place

if TYPE_CHECKING:
    from liverseg_studio.backends.base import Backend, CancelFn, ProgressFn

#: The model file whose sha256 identifies the model when the card lists several.
_PREFERRED_MODEL_FILES = ("model.int8.onnx", "model.onnx", "model.safetensors", "export.pkl")


@dataclass(frozen=True)
class ModelInfo:
    """Which model produced a segmentation (from the backend's ``card``, model.json)."""

    name: str = ""
    version: str = ""
    #: sha256 of the model file the backend ran (or the card's main file).
    sha256: str = ""
    #: The model file ``sha256`` belongs to.
    file: str = ""
    #: Every file the card lists: name -> sha256.
    files: Mapping[str, str] = field(default_factory=dict)
    model_dir: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "file": self.file,
            "files": dict(self.files),
            "model_dir": self.model_dir,
        }


def _card_files(card: Mapping[str, Any]) -> dict[str, str]:
    """file name -> sha256 from the card's ``files``.

    model.json (``core.modelcard``) stores ``{kind: {"path": name, "sha256": ..}}``;
    a plain ``{name: sha256}`` mapping or a list of ``{"name"|"path", "sha256"}`` is accepted too.
    """
    files = card.get("files") or {}
    out: dict[str, str] = {}
    if isinstance(files, Mapping):
        for key, value in files.items():
            if isinstance(value, Mapping):
                out[str(value.get("path", key))] = str(value.get("sha256", ""))
            else:
                out[str(key)] = str(value)
    elif isinstance(files, (list, tuple)):
        for entry in files:
            if isinstance(entry, Mapping) and ("name" in entry or "path" in entry):
                out[str(entry.get("name", entry.get("path")))] = str(entry.get("sha256", ""))
    return out


def model_info(backend: Any) -> ModelInfo:
    """What is known about the backend's model: card name/version/sha256, else the backend's name."""
    card = getattr(backend, "card", None)
    if card is not None and not isinstance(card, Mapping) and callable(getattr(card, "to_json", None)):
        card = card.to_json()  # a core.modelcard.ModelCard
    model_dir = getattr(backend, "model_dir", None)
    if not isinstance(card, Mapping) or not card:
        return ModelInfo(name=str(getattr(backend, "name", "")), model_dir=str(model_dir or ""))
    files = _card_files(card)
    chosen = ""
    used = getattr(backend, "model_path", None) or getattr(backend, "model_file", None)
    if used is not None:
        from pathlib import Path

        used_name = Path(str(used)).name
        if used_name in files:
            chosen = used_name
    if not chosen:
        chosen = next((f for f in _PREFERRED_MODEL_FILES if f in files), next(iter(files), ""))
    sha = str(card.get("sha256") or files.get(chosen, ""))
    return ModelInfo(
        name=str(card.get("name", "") or getattr(backend, "name", "")),
        version=str(card.get("version", "")),
        sha256=sha,
        file=chosen,
        files=files,
        model_dir=str(model_dir or ""),
    )


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """The outcome of :func:`segment_volume`."""

    volume: Volume
    #: Final uint8 (z, y, x) labels (post-processed unless ``postprocessed`` is False).
    labels: LabelMap
    #: The backend's labels before post-processing (the same array when not post-processed or
    #: unchanged; otherwise a read-only lazy array: index it per slice, ``np.asarray`` for all of it).
    raw_labels: LabelMap | LazyArray
    stats: VolumeStats
    #: Seconds: ``inference`` (the whole backend call), ``postprocess``, ``volumetry``,
    #: ``total``, plus the backend's own phases prefixed ``backend_`` (e.g. ``backend_preprocess``).
    timings: dict[str, float]
    backend: str
    model: ModelInfo
    postprocessed: bool = True
    postprocess_report: PostprocessReport | None = None
    min_component_mm3: float = DEFAULT_MIN_COMPONENT_MM3
    #: Set when a reader corrected the labels in the studio (``qt.editing.masks.edit_info``):
    #: who produced the mask and the voxels changed per label; the report marks it ``edited``.
    edit: Mapping[str, Any] | None = None

    @property
    def slices_per_second(self) -> float:
        t = self.timings.get("inference", 0.0)
        return self.volume.n_slices / t if t > 0 else float("inf")


def _check_labels(labels: Any, volume: Volume, backend_name: str) -> LabelMap:
    arr = np.asarray(labels)
    if arr.shape != volume.shape:
        raise BackendError(
            f"backend {backend_name!r} returned labels of shape {arr.shape}, expected {volume.shape}"
        )
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
            raise BackendError(f"backend {backend_name!r} returned {arr.dtype} labels, expected uint8")
        if arr.size and (arr.min() < 0 or arr.max() > Label.TUMOUR):
            raise BackendError(f"backend {backend_name!r} returned label values outside 0..2")
        arr = arr.astype(np.uint8)
    elif arr.size and arr.max() > Label.TUMOUR:
        raise BackendError(f"backend {backend_name!r} returned label value {int(arr.max())} (expected 0, 1 or 2)")
    return arr


def segment_volume(
    volume: Volume,
    backend: "Backend",
    *,
    postprocess: bool = True,
    min_component_mm3: float = DEFAULT_MIN_COMPONENT_MM3,
    progress: "ProgressFn | None" = None,
    is_cancelled: "CancelFn | None" = None,
    min_2d_liver_prob: float = 0.0,
) -> SegmentationResult:
    """Segment ``volume`` with a loaded ``backend``.

    ``min_2d_liver_prob`` (single 2D slices only; 0 = off, the measured default, see
    :mod:`liverseg_studio.core.slice_floor`): liver components whose mean liver-or-tumour
    probability is below it become background; needs a backend that gives probabilities.

    ``progress(done, total)`` and ``is_cancelled()`` go to the backend (per
    slice batch); cancellation is also checked between the phases and raises
    :class:`~liverseg_studio.core.errors.CancelledError`.  Backend failures
    other than :class:`~liverseg_studio.core.errors.LiversegError` become
    :class:`~liverseg_studio.core.errors.BackendError`.
    """
    from liverseg_studio.core.errors import LiversegError

    name = str(getattr(backend, "name", type(backend).__name__))

    def _cancel_check() -> None:
        if is_cancelled is not None and is_cancelled():
            raise CancelledError("segmentation cancelled")

    _cancel_check()
    floor = volume.is_2d and min_2d_liver_prob > 0
    extra: dict[str, Any] = {}
    if floor:
        import inspect

        if "want_probabilities" not in inspect.signature(backend.predict).parameters:
            raise BackendError(f"backend {name!r} gives no probabilities: the 2D confidence floor needs them")
        extra["want_probabilities"] = True
    t_start = time.perf_counter()
    try:
        pred = backend.predict(volume, progress=progress, is_cancelled=is_cancelled, **extra)
    except (LiversegError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin bug becomes one clear line
        raise BackendError(f"backend {name!r} failed: {type(exc).__name__}: {exc}") from exc
    t_inf = time.perf_counter() - t_start
    raw = _check_labels(pred.labels, volume, name)
    _cancel_check()

    t0 = time.perf_counter()
    report: PostprocessReport | None = None
    # 3D post-processing (largest liver component, tumour inside liver, small
    # components) is for volumes.  A single 2D slice is kept as predicted: its
    # liver may show as separate pieces (lobes at the liver's edge), and a
    # small liver cross-section is real, not noise (measured on the validation
    # split: per-slice liver Dice mean 0.66 with 3D rules applied to slices, 0.75 without).
    postprocess = bool(postprocess) and not volume.is_2d
    raw_out: LabelMap | LazyArray = raw
    if postprocess:
        spacing = volume.spacing if volume.spacing_known else None
        # the backend's labels are ours (predict returns a fresh array): rewritten in place,
        # no second full-size copy; a read-only array is copied first
        labels = raw if raw.flags.writeable else np.array(raw, copy=True)
        raw_out, report = postprocess_in_place(labels, spacing, min_component_mm3=min_component_mm3)
    elif floor:
        from liverseg_studio.core.slice_floor import confidence_floor_2d

        if pred.probabilities is None:
            raise BackendError(f"backend {name!r} returned no probabilities: the 2D confidence floor needs them")
        probs = np.asarray(pred.probabilities)
        kept, _removed = confidence_floor_2d(raw[0], probs[0, 1] + probs[0, 2], min_mean_prob=min_2d_liver_prob)
        labels = np.ascontiguousarray(kept[None], dtype=np.uint8)
    else:
        labels = raw
    t_post = time.perf_counter() - t0
    _cancel_check()

    t0 = time.perf_counter()
    stats = compute_stats(labels, volume)
    t_vol = time.perf_counter() - t0

    timings = {
        "inference": t_inf,
        "postprocess": t_post,
        "volumetry": t_vol,
    }
    for key, value in dict(getattr(pred, "timings", {}) or {}).items():
        if "slices" in str(key):  # a count the shared slice loop reports beside its seconds
            continue
        try:
            timings[f"backend_{key}"] = float(value)
        except (TypeError, ValueError):
            continue
    timings["total"] = time.perf_counter() - t_start
    return SegmentationResult(
        volume=volume,
        labels=labels,
        raw_labels=raw_out,
        stats=stats,
        timings=timings,
        backend=name,
        model=model_info(backend),
        postprocessed=postprocess,
        postprocess_report=report,
        min_component_mm3=float(min_component_mm3),
    )
