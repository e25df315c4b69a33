"""Every hook specification is prefixed, typed and documented with a return contract."""

from __future__ import annotations

import inspect

from liverseg_studio.plugins import hookspecs
from liverseg_studio.plugins.markers import PROJECT_NAME


def _hookspecs():
    marker = f"{PROJECT_NAME}_spec"
    specs = [(name, fn) for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, marker)]
    assert specs, "no hook specifications found"
    return specs


def test_hooks_are_prefixed():
    for name, _ in _hookspecs():
        assert name.startswith("liverseg_"), name


def test_every_liverseg_function_is_a_hookspec():
    marker = f"{PROJECT_NAME}_spec"
    for name, fn in vars(hookspecs).items():
        if name.startswith("liverseg_") and callable(fn):
            assert hasattr(fn, marker), f"{name} lacks @hookspec"


def test_hooks_are_documented_with_params_and_return_contract():
    for name, fn in _hookspecs():
        doc = inspect.getdoc(fn) or ""
        assert len(doc.split()) >= 20, f"{name}: docstring too short"
        assert ":return:" in doc, f"{name}: docstring lacks a ':return:' contract"
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in doc, f"{name}: parameter {param!r} undocumented"


def test_hooks_are_typed():
    for name, fn in _hookspecs():
        sig = inspect.signature(fn)
        for param in sig.parameters.values():
            assert param.annotation is not inspect.Parameter.empty, f"{name}: {param.name} untyped"
        assert sig.return_annotation is not inspect.Signature.empty, f"{name}: return untyped"


def test_expected_hooks_exist():
    names = {name for name, _ in _hookspecs()}
    assert {"liverseg_register_loaders", "liverseg_register_backends"} <= names
