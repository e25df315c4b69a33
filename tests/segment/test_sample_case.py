"""The sample case (LiTS case 117) is found without importing its package."""

from __future__ import annotations

import subprocess
import sys

import pytest

from liverseg_studio.sample import sample_case


def test_sample_case_paths_or_none():
    case = sample_case()
    if case is None:
        pytest.skip("liver-ct-segmentation-package not installed")
    assert case.image.name == "img_117.mrc" and case.image.is_file()
    assert case.labels is not None and case.labels.name == "lab_117.mrc"


def test_locating_does_not_import_the_package():
    code = (
        "import sys; from liverseg_studio.sample import sample_case; c = sample_case();"
        "print(c is not None); sys.exit(1 if 'liver_ct_segmentation_package' in sys.modules else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_absent_package_gives_none(monkeypatch):
    import importlib.metadata
    import importlib.util

    from liverseg_studio import sample

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    assert sample.sample_case() is None and sample.sample_image() is None
