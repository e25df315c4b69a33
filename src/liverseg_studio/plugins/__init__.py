"""The plugin system (pluggy): markers, hook specifications, registries, manager.

Third-party packages expose a module (or object) with ``@hookimpl`` functions
under the entry-point group ``liverseg_studio.plugins``; the built-in loaders
and backends are registered through exactly the same mechanism.
"""

from liverseg_studio.plugins.markers import PROJECT_NAME, hookimpl, hookspec

ENTRY_POINT_GROUP = "liverseg_studio.plugins"

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec"]
