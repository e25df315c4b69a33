"""Fixtures for the segmentation tests (helpers in ``segment_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from segment_helpers import (
    SHAPE,
    SPACING,
    Phantom,
    TruthPlugin,
    make_phantom,
    oblique_affine,
    write_ct_series,
    write_nifti,
)


@pytest.fixture
def plugin_manager(monkeypatch):
    """The installed plugins plus the truth backend, installed as the process-wide manager."""
    from liverseg_studio.plugins import manager

    pm = manager.PluginManager(disabled=set()).load_entrypoints()
    record = pm.register(TruthPlugin(), "truth-test-plugin")
    assert record.status == "ok", record.error
    monkeypatch.setattr(manager, "_default", pm)
    return pm


@pytest.fixture(scope="session")
def analytic_phantom() -> Phantom:
    """The 40 x 128 x 128 phantom (2.0 x 0.9 x 0.9 mm) with an oblique affine."""
    return make_phantom(SHAPE, SPACING, affine=oblique_affine())


@pytest.fixture
def analytic_nifti(tmp_path: Path, analytic_phantom: Phantom) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return write_nifti(folder / "abdomen.nii.gz", analytic_phantom.hu, analytic_phantom.affine, dtype="int16")


@pytest.fixture(scope="session")
def analytic_series(tmp_path_factory) -> tuple[Path, Phantom, list[Path]]:
    """The phantom with a plain (axial, non-identity) affine as a shuffled DICOM series."""
    ph = make_phantom(SHAPE, SPACING)
    folder = tmp_path_factory.mktemp("dicom") / "series_a"
    paths = write_ct_series(folder, ph.hu, ph.affine, shuffle_names=True)
    return folder, ph, paths
