"""Plugin discovery and isolation: broken plugins are reported and skipped."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from liverseg_studio.core.errors import LoaderError, PluginError
from liverseg_studio.plugins import ENTRY_POINT_GROUP, hookimpl, manager
from liverseg_studio.plugins.manager import PluginManager
from liverseg_studio.plugins.registry import BackendSpec, LoaderSpec


def _write_module(tmp_path, monkeypatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return name


def _fake_entry_points(monkeypatch, eps: list[EntryPoint]):
    real = manager.entry_points

    def fake(group):
        return list(real(group=group)) + [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(manager, "entry_points", fake)


GOOD = """
from liverseg_studio.plugins import hookimpl
from liverseg_studio.plugins.registry import LoaderSpec

@hookimpl
def liverseg_register_loaders(registry):
    registry.add(LoaderSpec(name="xyz", load=lambda p, o: None, sniff=lambda p, h: p.suffix == ".xyz",
                            extensions=(".xyz",)))
"""


def test_entry_points_give_builtin_loaders_and_threshold():
    pm = PluginManager(disabled=()).load_entrypoints()
    assert {"image", "dicom", "dicom-series", "nifti", "mrc"} <= set(pm.loaders.names())
    assert "threshold" in pm.backends.names()
    assert pm.records["builtin_loaders"].status == "ok"
    assert pm.records["threshold"].distribution == "liverseg-threshold-backend"
    assert pm.loaders.get("nifti").plugin == "builtin_loaders"


def test_plugin_failing_to_import_is_reported_and_skipped(tmp_path, monkeypatch):
    mod = _write_module(tmp_path, monkeypatch, "liverseg_broken_import", "raise ImportError('missing dependency foo')\n")
    good = _write_module(tmp_path, monkeypatch, "liverseg_good_plugin", GOOD)
    _fake_entry_points(
        monkeypatch,
        [EntryPoint("broken", mod, ENTRY_POINT_GROUP), EntryPoint("good", good, ENTRY_POINT_GROUP)],
    )
    pm = PluginManager(disabled=()).load_entrypoints()
    rec = pm.records["broken"]
    assert rec.status == "error"
    assert "import failed" in rec.error and "missing dependency foo" in rec.error
    assert pm.records["good"].status == "ok" and "xyz" in pm.loaders
    assert "nifti" in pm.loaders  # the rest keep working
    assert rec in pm.problems()


def test_plugin_raising_in_hook_is_removed_completely(tmp_path, monkeypatch):
    mod = _write_module(
        tmp_path,
        monkeypatch,
        "liverseg_half_plugin",
        """
        from liverseg_studio.plugins import hookimpl
        from liverseg_studio.plugins.registry import BackendSpec

        @hookimpl
        def liverseg_register_backends(registry):
            registry.add(BackendSpec(name="half", factory=object))
            raise RuntimeError("boom after registering")
        """,
    )
    _fake_entry_points(monkeypatch, [EntryPoint("half", mod, ENTRY_POINT_GROUP)])
    pm = PluginManager(disabled=()).load_entrypoints()
    assert pm.records["half"].status == "error"
    assert "boom after registering" in pm.records["half"].error
    assert "half" not in pm.backends  # nothing half-registered stays
    assert "threshold" in pm.backends


def test_disabled_plugins_env(monkeypatch):
    monkeypatch.setenv("LIVERSEG_DISABLED_PLUGINS", "threshold, builtin_loaders")
    pm = PluginManager().load_entrypoints()
    assert pm.records["threshold"].status == "disabled"
    assert pm.records["builtin_loaders"].status == "disabled"
    assert "threshold" not in pm.backends and "nifti" not in pm.loaders
    assert not pm.problems()


def test_disabled_plugin_is_not_imported(tmp_path, monkeypatch):
    mod = _write_module(tmp_path, monkeypatch, "liverseg_never_import", "raise SystemExit('imported!')\n")
    _fake_entry_points(monkeypatch, [EntryPoint("never", mod, ENTRY_POINT_GROUP)])
    monkeypatch.setenv("LIVERSEG_DISABLED_PLUGINS", "never")
    pm = PluginManager().load_entrypoints()
    assert pm.records["never"].status == "disabled"
    assert mod not in sys.modules


class _DupPlugin:
    def __init__(self, name):
        self.name = name

    @hookimpl
    def liverseg_register_backends(self, registry):
        registry.add(BackendSpec(name="threshold", factory=object))


def test_duplicate_names_name_both_plugins():
    import liverseg_threshold_backend

    pm = PluginManager(disabled=())
    assert pm.register(liverseg_threshold_backend, name="threshold", distribution="x").status == "ok"
    rec = pm.register(_DupPlugin("dup"), name="copycat")
    assert rec.status == "error"
    assert "'threshold'" in rec.error and "'copycat'" in rec.error
    assert pm.backends.get("threshold").plugin == "threshold"  # the first keeps its name


def test_registry_add_raises_plugin_error_naming_both():
    from liverseg_studio.plugins.registry import BackendRegistry

    reg = BackendRegistry()
    reg._current_plugin = "alpha"
    reg.add(BackendSpec(name="same", factory=object))
    reg._current_plugin = "beta"
    with pytest.raises(PluginError) as exc:
        reg.add(BackendSpec(name="same", factory=object))
    assert "alpha" in str(exc.value) and "beta" in str(exc.value)


def test_registry_load_turns_loader_bugs_into_loader_errors(tmp_path):
    class Buggy:
        @hookimpl
        def liverseg_register_loaders(self, registry):
            def load(path, options):
                raise ZeroDivisionError("oops")

            registry.add(LoaderSpec(name="buggy", load=load, sniff=lambda p, h: p.suffix == ".bug", priority=99))

    pm = PluginManager(disabled=())
    assert pm.register(Buggy(), name="buggy").status == "ok"
    f = tmp_path / "a.bug"
    f.write_bytes(b"123")
    with pytest.raises(LoaderError) as exc:
        pm.loaders.load(f)
    assert "buggy loader failed" in str(exc.value) and "ZeroDivisionError" in str(exc.value)


def test_broken_sniff_does_not_hide_other_loaders(tmp_path, nifti_phantom):
    class BadSniff:
        @hookimpl
        def liverseg_register_loaders(self, registry):
            def sniff(path, head):
                raise ValueError("bad sniff")

            registry.add(LoaderSpec(name="badsniff", load=lambda p, o: None, sniff=sniff, priority=100))

    pm = PluginManager(disabled=()).load_entrypoints()
    pm.register(BadSniff(), name="badsniff")
    v = pm.loaders.load(nifti_phantom.path)
    np.testing.assert_array_equal(v.array, nifti_phantom.phantom.hu)


def test_hookimpl_with_wrong_arguments_is_reported():
    class Wrong:
        @hookimpl
        def liverseg_register_loaders(self, registry, unexpected):
            pass

    pm = PluginManager(disabled=())
    rec = pm.register(Wrong(), name="wrong")
    assert rec.status == "error" and "registration failed" in rec.error
