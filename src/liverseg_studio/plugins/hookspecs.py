"""Hook specifications.  Every hook is prefixed ``liverseg_`` and documented;
``tests/plugins/test_hookspecs.py`` fails when a hook lacks documentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from liverseg_studio.plugins.markers import hookspec

if TYPE_CHECKING:
    from liverseg_studio.plugins.registry import BackendRegistry, LoaderRegistry


@hookspec
def liverseg_register_loaders(registry: "LoaderRegistry") -> None:
    """Register image/volume loaders.

    Call ``registry.add(LoaderSpec(...))`` once per loader.  A loader spec names
    the loader, the file extensions it claims (for file dialogs), a cheap
    ``sniff(path, head)`` predicate (``head`` is the first 1 KiB of a file, or
    ``b""`` for a folder) and a ``load(path, options)`` function returning a
    :class:`~liverseg_studio.core.Volume` or raising
    :class:`~liverseg_studio.core.LoaderError`.

    ``sniff`` must not import heavy modules or read whole files.

    :param registry: the loader registry to add to.
    :return: nothing; the return value is ignored.  Raising skips this plugin
        (it is reported by ``liverseg plugins``); anything it registered before
        raising is removed again.  Registering a name that another plugin
        already registered raises :class:`~liverseg_studio.core.errors.PluginError`
        naming both plugins.
    """


@hookspec
def liverseg_register_backends(registry: "BackendRegistry") -> None:
    """Register segmentation backends.

    Call ``registry.add(BackendSpec(name=..., factory=...))`` once per backend.
    ``factory()`` must be cheap: heavy imports (torch, onnxruntime) belong in the
    backend's ``load(model_dir)``, never at import time of the plugin.  The
    object returned by ``factory()`` implements
    :class:`~liverseg_studio.backends.base.Backend`.

    :param registry: the backend registry to add to.
    :return: nothing; the return value is ignored.  Raising skips this plugin
        (it is reported); duplicate names raise
        :class:`~liverseg_studio.core.errors.PluginError` naming both plugins.
    """
