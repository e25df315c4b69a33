"""The plugin manager facade: discovery, isolation, registries.

Each plugin is loaded and called in isolation (napari's lesson): a plugin that
fails to import, or raises in a hook, is recorded with its name, distribution
and error, and skipped; the rest keep working.  ``LIVERSEG_DISABLED_PLUGINS``
(comma-separated entry-point names) blocks plugins before they are imported.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Iterable

import pluggy

from liverseg_studio.plugins import ENTRY_POINT_GROUP, hookspecs
from liverseg_studio.plugins.markers import PROJECT_NAME
from liverseg_studio.plugins.registry import BackendRegistry, LoaderRegistry

DISABLE_ENV = "LIVERSEG_DISABLED_PLUGINS"

_HOOKS = (
    ("liverseg_register_loaders", "loaders"),
    ("liverseg_register_backends", "backends"),
)


@dataclass
class PluginRecord:
    """What ``liverseg plugins`` shows about one plugin."""

    name: str
    distribution: str = ""
    version: str = ""
    status: str = "ok"  # ok | error | disabled
    error: str = ""
    loaders: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)


def disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


class PluginManager:
    """Loads plugins and fills the loader and backend registries."""

    def __init__(self, disabled: Iterable[str] | None = None) -> None:
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self.loaders = LoaderRegistry()
        self.backends = BackendRegistry()
        self.records: dict[str, PluginRecord] = {}
        self.disabled = set(disabled_from_env() if disabled is None else disabled)

    # -- discovery -------------------------------------------------------------
    def load_entrypoints(self, group: str = ENTRY_POINT_GROUP) -> "PluginManager":
        eps = sorted(entry_points(group=group), key=lambda ep: (ep.name != "builtin", ep.name))
        for ep in eps:
            self._load_entrypoint(ep)
        return self

    def _load_entrypoint(self, ep: EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        record = PluginRecord(
            name=ep.name,
            distribution=getattr(dist, "name", "") or "",
            version=getattr(dist, "version", "") or "",
        )
        if ep.name in self.records:
            record.status, record.error = "error", f"another plugin is already registered as {ep.name!r}"
            self.records[f"{ep.name} ({record.distribution})"] = record
            return
        self.records[ep.name] = record
        if ep.name in self.disabled:
            record.status = "disabled"
            return
        try:
            plugin = ep.load()
        except BaseException as exc:  # noqa: BLE001 - isolation: report, never crash
            if isinstance(exc, KeyboardInterrupt):
                raise
            record.status, record.error = "error", f"import failed: {_describe(exc)}"
            return
        self._register(plugin, record)

    def register(self, plugin: Any, name: str, distribution: str = "") -> PluginRecord:
        """Register a plugin object directly (tests, embedding); same isolation as entry points."""
        record = PluginRecord(name=name, distribution=distribution)
        if name in self.records:
            record.status, record.error = "error", f"another plugin is already registered as {name!r}"
            return record
        self.records[name] = record
        if name in self.disabled:
            record.status = "disabled"
            return record
        self._register(plugin, record)
        return record

    def _register(self, plugin: Any, record: PluginRecord) -> None:
        try:
            self._pm.register(plugin, name=record.name)
        except Exception as exc:  # e.g. an hookimpl with wrong arguments
            record.status, record.error = "error", f"registration failed: {_describe(exc)}"
            return
        for hook_name, attr in _HOOKS:
            registry = getattr(self, attr)
            impls = [i for i in getattr(self._pm.hook, hook_name).get_hookimpls() if i.plugin_name == record.name]
            for impl in impls:
                registry._current_plugin = record.name
                try:
                    impl.function(**{arg: registry for arg in impl.argnames})
                except Exception as exc:  # noqa: BLE001 - isolation
                    registry.remove_plugin(record.name)
                    record.status = "error"
                    record.error = f"{hook_name} failed: {_describe(exc)}"
                finally:
                    registry._current_plugin = "<direct>"
        if record.status == "error":
            # a half-registered plugin is worse than none: drop all it added
            self.loaders.remove_plugin(record.name)
            self.backends.remove_plugin(record.name)
            self._pm.unregister(name=record.name)
            return
        record.loaders = [s.name for s in self.loaders if s.plugin == record.name]
        record.backends = [s.name for s in self.backends if s.plugin == record.name]

    # -- queries ---------------------------------------------------------------
    def problems(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.status == "error"]


_default: PluginManager | None = None


def get_plugin_manager(*, reload: bool = False) -> PluginManager:
    """The process-wide manager with all installed plugins loaded."""
    global _default
    if _default is None or reload:
        _default = PluginManager().load_entrypoints()
    return _default
