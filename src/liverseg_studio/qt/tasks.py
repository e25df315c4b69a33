"""The jobs the studio runs in its worker threads (plain Python, no Qt).

* :func:`load_case` reads a file or folder through the loader registry.
* :func:`run_segmentation` creates/loads the chosen backend (cached between
  runs: loading a model takes seconds) and calls the shared pipeline
  :func:`liverseg_studio.segment.pipeline.segment_volume`.

torch and onnxruntime are imported here only through ``backend.load``, i.e.
on the first segmentation, never at start-up.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from liverseg_studio.core.errors import BackendError, CancelledError

if TYPE_CHECKING:
    from liverseg_studio.core.volume import Volume
    from liverseg_studio.plugins.manager import PluginManager
    from liverseg_studio.plugins.registry import LoadOptions
    from liverseg_studio.segment.pipeline import SegmentationResult


@dataclass(frozen=True)
class RunRequest:
    """What the user asked to run."""

    backend: str
    #: a model folder, or None for the default model (ignored by backends that need none)
    model_dir: str | None = None
    #: inference threads, None = automatic
    threads: int | None = None
    #: the user confirmed loading a pickle-only (fastai export.pkl) model
    trust_pickle: bool = False
    postprocess: bool = True


def default_model_dir() -> Path | None:
    """The shipped default model folder, or None when it is not installed (no heavy imports)."""
    from liverseg_studio.backends.common import default_model_dir as _default

    return _default()


def needs_pickle_trust(backend: str, model_dir: str | None) -> Path | None:
    """The ``export.pkl`` that running ``backend`` on ``model_dir`` would unpickle, else None.

    Only the fastai backend unpickles, and only when the folder has no
    ``model.safetensors``: the studio must then ask the user first.
    """
    if backend != "fastai":
        return None
    mdir = Path(model_dir) if model_dir else default_model_dir()
    if mdir is None or not mdir.is_dir():
        return None
    try:
        from liverseg_studio.core.modelcard import CARD_NAME, read_card

        card = read_card(mdir) if (mdir / CARD_NAME).is_file() else None
        weights = card.file_path("safetensors", mdir) if card else mdir / "model.safetensors"
        pickle_path = card.file_path("pickle", mdir) if card else mdir / "export.pkl"
    except Exception:  # noqa: BLE001 - a broken card is reported by the backend itself
        weights, pickle_path = mdir / "model.safetensors", mdir / "export.pkl"
    if weights.is_file() or not pickle_path.is_file():
        return None
    return pickle_path


def load_case(
    path: str,
    options: "LoadOptions | None",
    manager: "PluginManager",
    *,
    progress: Callable[[int, int], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> "Volume":
    """Read ``path`` with the registered loaders (every failure is a ``LoaderError``).

    The studio shows every slice, so a lazy volume is read into memory here, as
    int16 when that is exact (half of float32; ``Volume.in_memory``), and its
    files (a decompressed temporary copy) are released.
    """
    if progress is not None:
        progress(0, 1)
    volume = manager.loaders.load(path, options)
    if is_cancelled is not None and is_cancelled():
        volume.close()
        raise CancelledError("loading cancelled")
    if volume.is_lazy:
        try:
            volume_in_memory = volume.in_memory()
        finally:
            volume.close()
        volume = volume_in_memory
    if progress is not None:
        progress(1, 1)
    return volume


class BackendCache:
    """The last loaded backend, reused while the request's backend/model/threads do not change.

    Used only from the single segmentation worker thread.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._backend: Any = None

    def clear(self) -> None:
        self._key, self._backend = None, None

    def get(self, request: RunRequest, manager: "PluginManager") -> Any:
        key = (request.backend, request.model_dir, request.threads, request.trust_pickle)
        if self._key == key and self._backend is not None:
            return self._backend
        self.clear()
        spec = manager.backends.get(request.backend)
        backend = spec.factory()
        model_dir = request.model_dir if spec.needs_model else None
        kwargs: dict[str, Any] = {"threads": request.threads}
        if request.trust_pickle:
            try:
                params = inspect.signature(backend.load).parameters
            except (TypeError, ValueError):
                params = {}
            if "trust_pickle" in params:
                kwargs["trust_pickle"] = True
            elif hasattr(backend, "trust_pickle"):
                backend.trust_pickle = True
        try:
            backend.load(Path(model_dir) if model_dir else None, **kwargs)
        except (BackendError, CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's failure becomes one clear message
            from liverseg_studio.core.errors import LiversegError

            if isinstance(exc, LiversegError):
                raise
            raise BackendError(f"backend {request.backend!r} could not load its model: {type(exc).__name__}: {exc}") from exc
        self._key, self._backend = key, backend
        return backend


def run_segmentation(
    volume: "Volume",
    request: RunRequest,
    manager: "PluginManager",
    cache: BackendCache,
    *,
    progress: Callable[[int, int], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> "SegmentationResult":
    """Load (or reuse) the backend and segment ``volume`` through the shared pipeline."""
    from liverseg_studio.segment.pipeline import segment_volume

    if is_cancelled is not None and is_cancelled():
        raise CancelledError("segmentation cancelled")
    backend = cache.get(request, manager)
    return segment_volume(
        volume, backend, postprocess=request.postprocess, progress=progress, is_cancelled=is_cancelled
    )
