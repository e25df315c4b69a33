"""Fixtures for the loader tests: the plugin manager's loader registry."""

from __future__ import annotations

import pytest

from liverseg_studio.plugins.manager import PluginManager


@pytest.fixture(scope="session")
def loaders():
    """A registry holding exactly the built-in loaders."""
    from liverseg_studio.loaders import plugin

    pm = PluginManager(disabled=())
    record = pm.register(plugin, name="builtin_loaders")
    assert record.status == "ok", record.error
    return pm.loaders
