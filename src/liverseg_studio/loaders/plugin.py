"""Registers the built-in loaders through the same hook third parties use."""

from liverseg_studio.plugins import hookimpl


@hookimpl
def liverseg_register_loaders(registry) -> None:  # filled in by the loaders work
    pass
