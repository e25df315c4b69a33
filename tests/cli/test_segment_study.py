"""`liverseg segment` on a whole-study folder (issue 28): one line says which series and why; --all-series."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.dicom_forms import requires_ircad, study_folder
from liverseg_studio import cli
from liverseg_studio.plugins import hookimpl

pytestmark = [requires_ircad]


class HalfBackend:
    """Liver = the left half of every slice: cheap, and the outputs exist."""

    name = "half"

    def load(self, model_dir=None, *, threads=None):
        pass

    def predict(self, volume, *, progress=None, is_cancelled=None):
        from liverseg_studio.backends.base import Prediction

        nz, ny, nx = volume.shape[:3]
        lab = np.zeros((nz, ny, nx), dtype=np.uint8)
        lab[:, ny // 4 : 3 * ny // 4, : nx // 2] = 1
        return Prediction(labels=lab)


class HalfPlugin:
    @hookimpl
    def liverseg_register_backends(self, registry) -> None:
        from liverseg_studio.plugins.registry import BackendSpec

        registry.add(BackendSpec(name="half", factory=HalfBackend, description="test", needs_model=False))


@pytest.fixture
def threshold(monkeypatch):
    """The built-in loaders and a cheap backend named 'half' (the machine is shared: no real model here)."""
    from liverseg_studio.plugins import manager

    pm = manager.PluginManager(disabled=set()).load_entrypoints()
    assert pm.register(HalfPlugin(), "half-test-plugin").status == "ok"
    monkeypatch.setattr(manager, "_default", pm)


def test_study_folder_without_series_says_which_and_why(tmp_path, capsys, threshold):
    ids = study_folder(tmp_path / "study")
    out = tmp_path / "out"
    rc = cli.main(["segment", str(tmp_path / "study"), "--out", str(out), "--backend", "half", "--export", "mask,report"])
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = [line for line in err.splitlines() if "chose series" in line]
    assert len(lines) == 1 and "PORTAL VENOUS" in lines[0] and "portal-venous" in lines[0], err
    report = json.loads((out / "study_report.json").read_text())
    assert any("chose series 3" in n for n in report["notes"])
    assert report["input"]["meta"]["series_uid"] == ids["venous"]


def test_all_series_segments_each_axial_series(tmp_path, capsys, threshold):
    study_folder(tmp_path / "study")
    out = tmp_path / "out"
    rc = cli.main(["segment", str(tmp_path / "study"), "--out", str(out), "--backend", "half", "--export", "report", "--all-series"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["study_s2_report.json", "study_s3_report.json"]
    descriptions = {json.loads(p.read_text())["input"]["meta"]["series_description"] for p in out.iterdir()}
    assert descriptions == {"ARTERIAL 1.6 mm", "PORTAL VENOUS 1.6 mm"}


def test_all_series_and_series_exclude_each_other(tmp_path, capsys, threshold):
    ids = study_folder(tmp_path / "study")
    rc = cli.main(["segment", str(tmp_path / "study"), "--out", str(tmp_path / "o"), "--backend", "half",
                   "--all-series", "--series", ids["venous"]])
    assert rc == 2
    assert "exclude each other" in capsys.readouterr().err
