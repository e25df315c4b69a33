"""Helpers shared by the sub-commands that run a segmentation backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_trust_pickle_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow the fastai backend to unpickle export.pkl (pickle runs arbitrary code: only for models you trust)",
    )


def load_backend(pm: Any, name: str, model: Path | str | None, *, threads: int | None, trust_pickle: bool = False) -> Any:
    """Create backend ``name`` and load ``model`` (None: the default model); every failure is a BackendError."""
    from liverseg_studio.core.errors import BackendError, LiversegError

    spec = pm.backends.get(name)
    try:
        backend = spec.factory()
        model_dir = Path(model) if model else None
        if model_dir is not None and not model_dir.is_dir():
            raise BackendError(f"{model_dir}: model folder does not exist")
        if trust_pickle:
            if not hasattr(backend, "trust_pickle"):
                raise BackendError(f"backend {name!r} loads no pickles; --trust-pickle does not apply")
            print("warning: --trust-pickle: export.pkl may be unpickled (it can run arbitrary code)", file=sys.stderr)
            backend.trust_pickle = True
        backend.load(model_dir, threads=threads)
    except (LiversegError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin bug is a clear one-line error
        raise BackendError(f"backend {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
    return backend


def engine_summary(backend: Any) -> str:
    """One line saying which engine runs: ``openvino (OpenVINO 2026.4.1, model.int8.onnx int8, 2 threads)``."""
    name = str(getattr(backend, "name", type(backend).__name__))
    describe = getattr(backend, "describe", None)
    info: dict[str, Any] = {}
    if callable(describe):
        try:
            info = dict(describe())
        except Exception:  # noqa: BLE001 - a plugin's describe must not stop a run
            info = {}
    parts = []
    if info.get("engine"):
        parts.append(" ".join(str(p) for p in (info.get("engine"), info.get("engine_version")) if p))
    if info.get("model_file"):
        parts.append(" ".join(str(p) for p in (info["model_file"], info.get("precision")) if p))
    if info.get("threads"):
        parts.append(f"{info['threads']} threads")
    return name + (f" ({', '.join(parts)})" if parts else "")


def add_mesh_format_option(p: argparse.ArgumentParser) -> None:
    """``--mesh-format stl|obj|ply`` for ``--export mesh`` (segment.export_mesh)."""
    p.add_argument(
        "--mesh-format",
        choices=("stl", "obj", "ply"),
        default=None,
        help="file format of --export mesh (one surface per label and lesion in <name>_mesh/; default stl)",
    )


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value
