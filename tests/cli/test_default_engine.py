"""One default engine everywhere (issue 29 case 9): segment, cohort, the cohort bench and the bundle's
self-test all default to "auto", which BackendRegistry.default_name resolves (the studio uses it too)."""

from __future__ import annotations

import argparse
import inspect

from liverseg_studio.plugins.manager import get_plugin_manager
from liverseg_studio.plugins.registry import AUTO_BACKEND


def _default_backend(module) -> str:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    module.register(sub)
    name = module.__name__.rsplit(".", 1)[1]
    args = parser.parse_args([name, "in.nii.gz", "--out", "out"])
    return args.backend


def test_segment_and_cohort_default_to_the_same_engine():
    from liverseg_studio.commands import cohort, segment

    assert _default_backend(segment) == _default_backend(cohort) == AUTO_BACKEND


def test_auto_is_the_default_engine_and_selftest_and_bench_use_it():
    from liverseg_studio import selftest
    from liverseg_studio.cohort import bench

    pm = get_plugin_manager()
    default = pm.backends.default_name()
    assert default is not None
    assert pm.backends.get(AUTO_BACKEND).name == default
    assert inspect.signature(bench.bench_cohort).parameters["backend"].default == AUTO_BACKEND
    assert inspect.signature(selftest.run_self_test).parameters["backend"].default == AUTO_BACKEND
