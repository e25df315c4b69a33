"""Issue 27: the PyInstaller hooks of packaging/hooks, evaluated without building.

Each hook file is run as PyInstaller runs it (its module namespace is read for ``datas``,
``binaries``, ``hiddenimports``); what it collects must be what the frozen app needs at run time.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

pytest.importorskip("PyInstaller")

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "packaging" / "hooks"


def run_hook(name: str, tmp_path: Path, monkeypatch) -> dict:
    from PyInstaller.config import CONF

    monkeypatch.setitem(CONF, "workpath", str(tmp_path))
    return runpy.run_path(str(HOOKS / f"hook-{name}.py"))


def names(entries) -> set[str]:
    return {f"{dest}/{Path(src).name}" for src, dest in entries}


def test_highdicom_standard_tables_are_collected_and_equal(tmp_path, monkeypatch):
    pytest.importorskip("highdicom")
    import pkgutil

    ns = run_hook("highdicom", tmp_path, monkeypatch)
    got = names(ns["datas"])
    for table in ("sop_class_iod_map", "iod_module_map", "module_attribute_map", "anatomic_regions"):
        assert f"highdicom/_standard/{table}.json" in got, table
    big = next(src for src, dest in ns["datas"] if src.endswith("module_attribute_map.json"))
    original = pkgutil.get_data("highdicom", "_standard/module_attribute_map.json")
    assert Path(big).stat().st_size < len(original)  # the minified copy ...
    assert json.loads(Path(big).read_bytes()) == json.loads(original)  # ... holds the same tables
    assert any(d.endswith(".dist-info") for _, d in ns["datas"])


def test_pydicom_dictionaries_handlers_and_data(tmp_path, monkeypatch):
    ns = run_hook("pydicom", tmp_path, monkeypatch)
    hidden = set(ns["hiddenimports"])
    for mod in ("pydicom._dicom_dict", "pydicom._uid_dict", "pydicom.pixels.decoders.rle",
                "pydicom.pixels.decoders.pylibjpeg", "pydicom.pixels.decoders.gdcm", "pydicom.pixels.decoders.pillow",
                "pydicom.pixels.encoders.native"):
        assert mod in hidden, mod
    got = names(ns["datas"])
    assert "pydicom/data/urls.json" in got and any(g.startswith("pydicom/data/charset_files/") for g in got)
    assert not any("test_files" in g for g in got)


def test_pylibjpeg_plugins_come_with_their_entry_points(tmp_path, monkeypatch):
    pytest.importorskip("pylibjpeg")
    from importlib.metadata import entry_points

    ns = run_hook("pylibjpeg", tmp_path, monkeypatch)
    plugins = {ep.value.split(":")[0] for ep in entry_points(group="pylibjpeg.pixel_data_decoders")}
    assert plugins and plugins <= set(ns["hiddenimports"])
    dist_infos = {dest for _, dest in ns["datas"]}
    assert any(d.startswith("pylibjpeg_libjpeg") for d in dist_infos) or "libjpeg" not in plugins


def test_openvino_cpu_plugin_and_onnx_frontend_only(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    ns = run_hook("openvino", tmp_path, monkeypatch)
    got = [(Path(src).name, dest) for src, dest in ns["binaries"]]
    assert any(n.startswith("libopenvino_intel_cpu_plugin") for n, _ in got), got
    assert any(n.startswith("libopenvino_onnx_frontend") for n, _ in got), got
    assert all(dest == "openvino/libs" for _, dest in got)  # beside libopenvino.so, where OpenVINO looks
    for unwanted in ("gpu_plugin", "npu_plugin", "tensorflow", "pytorch_frontend", "paddle", "jax", "gguf"):
        assert not any(unwanted in n for n, _ in got), unwanted
    assert {"openvino.tools", "openvino.torch", "openvino_telemetry"} <= set(ns["excludedimports"])


def test_nibabel_metadata_and_no_test_suites(tmp_path, monkeypatch):
    ns = run_hook("nibabel", tmp_path, monkeypatch)
    assert any(dest.startswith("nibabel-") and dest.endswith(".dist-info") for _, dest in ns["datas"])
    assert "nibabel.nifti1" in ns["hiddenimports"] and "nibabel.tests" in ns["excludedimports"]


@pytest.mark.parametrize("name", ["gdcm", "pynetdicom", "dicomweb_client"])
def test_hooks_of_optional_libraries_run_whether_or_not_installed(name, tmp_path, monkeypatch):
    """python-gdcm, pynetdicom and dicomweb-client may be absent at build time: their hooks must not break."""
    import importlib.util

    installed = importlib.util.find_spec(name) is not None
    try:
        ns = run_hook(name, tmp_path, monkeypatch)
    except Exception as exc:  # noqa: BLE001
        if installed:
            raise
        pytest.skip(f"{name} not installed ({type(exc).__name__}); PyInstaller runs no hook for it then")
    assert isinstance(ns.get("hiddenimports", []), list)
