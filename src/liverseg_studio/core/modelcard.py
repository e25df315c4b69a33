"""The model card: ``model.json`` in every model directory (no torch, no onnxruntime).

Schema (DEVELOPERS.md, "Model directory")::

    {
      "name": "liverseg-resnet34-unet", "version": "1.0.0",
      "architecture": {"encoder": "resnet34", "last_cross": false, "self_attention": false,
                       "blur": false, "normalize": "imagenet"},
      "input_size": 256,
      "preprocessing": PreprocessSpec.to_json(),
      "classes": ["background", "liver", "tumour"],
      "files": {"onnx_int8": {"path": "model.int8.onnx", "sha256": "...", "bytes": 123}, ...},
      "training": {...data sets + licences, epochs, imagenet_pretrained, ...},
      "metrics": {...},
      "licence": "CC BY-NC-SA 4.0"
    }

File kinds (keys of ``files``): ``onnx`` (fp32 ``model.onnx``), ``onnx_int8``
(``model.int8.onnx``), ``safetensors`` (``model.safetensors``), ``pickle``
(``export.pkl``).  Unknown keys are kept on a read/write round trip.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from liverseg_studio.core.errors import BackendError
from liverseg_studio.core.preprocess import PreprocessSpec

CARD_NAME = "model.json"
SCHEMA_VERSION = 1
#: Default file name per kind.
DEFAULT_FILES: dict[str, str] = {
    "onnx_int8": "model.int8.onnx",
    "onnx": "model.onnx",
    "safetensors": "model.safetensors",
    "pickle": "export.pkl",
}
DEFAULT_CLASSES: tuple[str, ...] = ("background", "liver", "tumour")
DEFAULT_ARCHITECTURE: dict[str, Any] = {
    "encoder": "resnet34",
    "last_cross": False,
    "self_attention": False,
    "blur": False,
    "normalize": "imagenet",
}

_KNOWN_KEYS = {
    "schema", "name", "version", "architecture", "input_size", "preprocessing",
    "classes", "files", "training", "metrics", "licence",
}


def sha256_file(path: os.PathLike[str] | str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ModelCard:
    """Parsed ``model.json``; :meth:`to_json` writes it back (unknown keys kept in ``extra``)."""

    name: str = "liverseg-resnet34-unet"
    version: str = "0.0.0"
    architecture: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ARCHITECTURE))
    input_size: int = 256
    preprocessing: PreprocessSpec = field(default_factory=PreprocessSpec)
    classes: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSES))
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    licence: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # -- (de)serialisation ------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "name": self.name,
            "version": self.version,
            "architecture": dict(self.architecture),
            "input_size": int(self.input_size),
            "preprocessing": self.preprocessing.to_json(),
            "classes": list(self.classes),
            "files": {k: dict(v) for k, v in self.files.items()},
            "training": dict(self.training),
            "metrics": dict(self.metrics),
            "licence": self.licence,
        }
        for k, v in self.extra.items():
            data.setdefault(k, v)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = CARD_NAME) -> "ModelCard":
        """Parse a card mapping; malformed fields raise :class:`BackendError` naming ``source``."""
        if not isinstance(data, Mapping):
            raise BackendError(f"{source}: model card must be a JSON object")
        try:
            arch = {**DEFAULT_ARCHITECTURE, **dict(data.get("architecture") or {})}
            input_size = int(data.get("input_size", 256))
            if input_size < 32 or input_size % 32:
                raise ValueError(f"input_size must be a positive multiple of 32, got {input_size}")
            files_raw = data.get("files") or {}
            if not isinstance(files_raw, Mapping):
                raise ValueError("files must be an object {kind: {path, sha256, bytes}}")
            files: dict[str, dict[str, Any]] = {}
            for kind, entry in files_raw.items():
                if isinstance(entry, str):  # tolerate {"onnx": "model.onnx"}
                    entry = {"path": entry}
                if not isinstance(entry, Mapping) or not entry.get("path"):
                    raise ValueError(f"files.{kind} needs a 'path'")
                p = str(entry["path"])
                if Path(p).is_absolute() or ".." in Path(p).parts:
                    raise ValueError(f"files.{kind}.path must be a plain name inside the model folder, got {p!r}")
                files[str(kind)] = dict(entry)
            classes = [str(c) for c in data.get("classes", DEFAULT_CLASSES)]
            if len(classes) != 3:
                raise ValueError(f"expected 3 classes (background, liver, tumour), got {classes}")
            return cls(
                name=str(data.get("name", cls.name)),
                version=str(data.get("version", cls.version)),
                architecture=arch,
                input_size=input_size,
                preprocessing=PreprocessSpec.from_json(data.get("preprocessing")),
                classes=classes,
                files=files,
                training=dict(data.get("training") or {}),
                metrics=dict(data.get("metrics") or {}),
                licence=str(data.get("licence", data.get("license", ""))),
                extra={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
            )
        except BackendError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise BackendError(f"{source}: invalid model card: {exc}") from exc

    # -- files --------------------------------------------------------------------
    def file_path(self, kind: str, model_dir: os.PathLike[str] | str) -> Path:
        """Path of a file kind: the card's entry, else the default name."""
        entry = self.files.get(kind)
        name = entry["path"] if entry else DEFAULT_FILES.get(kind)
        if not name:
            raise BackendError(f"model card names no file of kind {kind!r}")
        return Path(model_dir) / name

    def kind_of(self, filename: str) -> str | None:
        """The kind whose card entry (or default name) is ``filename``."""
        for kind, entry in self.files.items():
            if entry.get("path") == filename:
                return kind
        for kind, name in DEFAULT_FILES.items():
            if name == filename and kind not in self.files:
                return kind
        return None

    def record_file(self, kind: str, model_dir: os.PathLike[str] | str, filename: str | None = None) -> dict[str, Any]:
        """Hash a file of the model directory into ``files[kind]`` (path, sha256, bytes); returns the entry."""
        name = filename or (self.files.get(kind, {}).get("path")) or DEFAULT_FILES.get(kind)
        if not name:
            raise BackendError(f"no file name for kind {kind!r}")
        path = Path(model_dir) / name
        entry = {"path": name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
        self.files[kind] = entry
        return entry

    @property
    def imagenet_pretrained(self) -> bool | None:
        v = self.training.get("imagenet_pretrained")
        return None if v is None else bool(v)

    def summary(self) -> str:
        """One line for reports: name, version, input size, files."""
        kinds = ", ".join(sorted(self.files)) or "no files listed"
        return f"{self.name} {self.version} (input {self.input_size}px, {kinds})"


def read_card(model_dir: os.PathLike[str] | str) -> ModelCard:
    """Read ``model_dir/model.json``; a missing or broken card raises :class:`BackendError`."""
    path = Path(model_dir) / CARD_NAME
    if not Path(model_dir).is_dir():
        raise BackendError(f"{model_dir}: model folder does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackendError(f"{path}: model card is missing (every model folder needs model.json)") from None
    except OSError as exc:
        raise BackendError(f"{path}: cannot read model card: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackendError(f"{path}: model card is not valid JSON: {exc}") from exc
    return ModelCard.from_json(data, source=str(path))


def write_card(model_dir: os.PathLike[str] | str, card: ModelCard) -> Path:
    """Write ``model_dir/model.json`` atomically (replacing the previous card of this model)."""
    from liverseg_studio.core.io import atomic_write_text

    text = json.dumps(card.to_json(), indent=2, sort_keys=False) + "\n"
    return atomic_write_text(Path(model_dir) / CARD_NAME, text, overwrite=True)


def verify_file(model_dir: os.PathLike[str] | str, kind: str, card: ModelCard | None = None) -> Path:
    """Check one file of the model against the sha256 (and size) in its card; returns its path.

    Raises :class:`BackendError` when the file is missing, not listed with a
    sha256, or its hash differs (the message names the file and both hashes).
    """
    card = card if card is not None else read_card(model_dir)
    path = card.file_path(kind, model_dir)
    entry = card.files.get(kind)
    if not path.is_file():
        raise BackendError(f"{path}: model file is missing")
    if not entry or not entry.get("sha256"):
        raise BackendError(
            f"{path}: model card lists no sha256 for this file, so it cannot be verified "
            "(re-run `liverseg export`, or override verification)"
        )
    expected = str(entry["sha256"]).lower()
    actual = sha256_file(path)
    if actual != expected:
        raise BackendError(
            f"{path}: sha256 does not match the model card (card {expected}, file {actual}); "
            "the file was changed or corrupted -- refusing to load it"
        )
    size = entry.get("bytes")
    if size is not None and int(size) != path.stat().st_size:  # pragma: no cover - hash already differs
        raise BackendError(f"{path}: size {path.stat().st_size} bytes differs from the card's {size}")
    return path


def verify_files(
    model_dir: os.PathLike[str] | str, kinds: Iterable[str] | None = None, card: ModelCard | None = None
) -> list[Path]:
    """Verify ``kinds`` (default: every file the card lists); see :func:`verify_file`."""
    card = card if card is not None else read_card(model_dir)
    todo = list(kinds) if kinds is not None else list(card.files)
    return [verify_file(model_dir, kind, card) for kind in todo]
