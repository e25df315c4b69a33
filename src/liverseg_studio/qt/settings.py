"""Persistent studio settings (QSettings): threads, default backend, opacity, recent files.

The storage location is the platform's usual one (``LiverSeg/LiverSeg Studio``)
unless ``LIVERSEG_SETTINGS`` names an INI file, or a path is given explicitly:
the tests always use a temporary file, never the user's settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

from liverseg_studio.core.colours import DEFAULT_ALPHA

ORGANISATION = "LiverSeg"
APPLICATION = "LiverSeg Studio"
SETTINGS_ENV = "LIVERSEG_SETTINGS"
MAX_RECENT = 10


def _to_int(value: object, default: int) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _to_float(value: object, default: float) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


class StudioSettings:
    """Typed accessors over a ``QSettings`` store."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        path = path if path is not None else os.environ.get(SETTINGS_ENV) or None
        if path is not None:
            self._qs = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self._qs = QSettings(ORGANISATION, APPLICATION)

    @property
    def location(self) -> str:
        """Where the settings are stored (file name or registry path)."""
        return self._qs.fileName()

    def sync(self) -> None:
        self._qs.sync()

    # -- inference -------------------------------------------------------------
    @property
    def threads(self) -> int:
        """Inference threads; 0 means automatic (all cores)."""
        return max(0, _to_int(self._qs.value("inference/threads", 0), 0))

    @threads.setter
    def threads(self, value: int) -> None:
        self._qs.setValue("inference/threads", max(0, int(value)))

    @property
    def default_backend(self) -> str:
        """Backend selected when the studio starts ("" = first available)."""
        return str(self._qs.value("inference/default_backend", "") or "")

    @default_backend.setter
    def default_backend(self, name: str) -> None:
        self._qs.setValue("inference/default_backend", str(name))

    @property
    def last_model_dir(self) -> str:
        """The model folder chosen last ("" = the default model)."""
        return str(self._qs.value("inference/model_dir", "") or "")

    @last_model_dir.setter
    def last_model_dir(self, path: str) -> None:
        self._qs.setValue("inference/model_dir", str(path))

    # -- display ---------------------------------------------------------------
    @property
    def opacity(self) -> float:
        """Overlay opacity in [0, 1]."""
        return min(1.0, max(0.0, _to_float(self._qs.value("display/opacity", DEFAULT_ALPHA), DEFAULT_ALPHA)))

    @opacity.setter
    def opacity(self, value: float) -> None:
        self._qs.setValue("display/opacity", min(1.0, max(0.0, float(value))))

    @property
    def layout(self) -> str:
        """Viewer layout (see ``qt.viewer.LAYOUTS``)."""
        return str(self._qs.value("display/layout", "three") or "three")

    @layout.setter
    def layout(self, mode: str) -> None:
        self._qs.setValue("display/layout", str(mode))

    @property
    def last_dir(self) -> str:
        return str(self._qs.value("files/last_dir", "") or "")

    @last_dir.setter
    def last_dir(self, path: str) -> None:
        self._qs.setValue("files/last_dir", str(path))

    # -- recent files ----------------------------------------------------------
    def recent_files(self) -> list[str]:
        """Most recent first; entries that no longer exist are kept (shown greyed)."""
        value = self._qs.value("files/recent", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or []) if v][:MAX_RECENT]

    def add_recent_file(self, path: str | os.PathLike[str]) -> list[str]:
        p = str(Path(path).resolve())
        items = [p] + [r for r in self.recent_files() if r != p]
        items = items[:MAX_RECENT]
        self._qs.setValue("files/recent", items)
        return items

    def remove_recent_file(self, path: str) -> None:
        self._qs.setValue("files/recent", [r for r in self.recent_files() if r != path])

    def clear_recent_files(self) -> None:
        self._qs.setValue("files/recent", [])
