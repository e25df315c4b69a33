"""The PyInstaller spec (packaging/liverseg_studio.spec), evaluated without building.

PyInstaller's build classes (Analysis, PYZ, EXE, COLLECT) are replaced by
recorders, so these tests check what the spec would build -- two executables
in one onedir COLLECT named after the version, torch & co. excluded, the
entry-point plugins and their metadata collected, the model folder bundled
when present (and the build still defined when it is absent) -- in seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

import liverseg_studio

pytest.importorskip("PyInstaller")

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "liverseg_studio.spec"


class _Recorder:
    calls: list[tuple[str, tuple, dict]] = []

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        _Recorder.calls.append((type(self).__name__, args, kwargs))


class Analysis(_Recorder):
    def __init__(self, scripts, **kwargs):
        super().__init__(scripts, **kwargs)
        self.scripts_in = [str(s) for s in scripts]
        # what PyInstaller puts in a.scripts: bootstrap + runtime hooks, then the entry scripts
        self.scripts = [("pyiboot01_bootstrap", "/x/boot.py", "PYSOURCE"), ("pyi_rth_pyside6", "/x/rth.py", "PYSOURCE")]
        self.scripts += [(Path(s).stem, s, "PYSOURCE") for s in self.scripts_in]
        self.pure, self.binaries = [], [("libQt6Quick.so.6", "/x/libQt6Quick.so.6", "BINARY"),
                                        ("libQt6Core.so.6", "/x/libQt6Core.so.6", "BINARY"),
                                        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "/x/libqgtk3.so", "BINARY"),
                                        ("libpango-1.0.so.0", "/x/libpango-1.0.so.0", "BINARY"),
                                        ("pillow.libs/libharfbuzz-fb49c9fc.so.0", "/x/libharfbuzz-fb.so", "BINARY"),
                                        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/x/libqxcb.so", "BINARY")]
        self.datas = list(kwargs["datas"]) + [("PySide6/Qt/qml/QtQuick/qmldir", "/x/qmldir", "DATA"),
                                              ("PySide6/Qt/translations/qt_de.qm", "/x/qt_de.qm", "DATA")]


class PYZ(_Recorder):
    pass


class EXE(_Recorder):
    pass


class COLLECT(_Recorder):
    pass


def run_spec(monkeypatch, **env: str) -> SimpleNamespace:
    for key in ("LIVERSEG_BUNDLE_MODEL_DIR", "LIVERSEG_BUNDLE_SAMPLE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _Recorder.calls = []
    ns = {"SPECPATH": str(SPEC.parent), "Analysis": Analysis, "PYZ": PYZ, "EXE": EXE, "COLLECT": COLLECT,
          "__name__": "__main__", "__file__": str(SPEC)}
    exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), ns)
    by = {}
    for name, args, kwargs in _Recorder.calls:
        by.setdefault(name, []).append(SimpleNamespace(args=args, kwargs=kwargs))
    return SimpleNamespace(ns=ns, **by)


def dest_names(datas) -> set[str]:
    """'dest_dir/file name' of every (source, dest_dir) data entry."""
    return {f"{dest}/{Path(src).name}" for src, dest, *_ in datas}


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bundle-model")
    (d / "model.json").write_text("{}")
    (d / "model.int8.onnx").write_bytes(b"onnx")
    (d / "model.onnx").write_bytes(b"onnx")
    (d / "model.safetensors").write_bytes(b"weights")
    (d / "export.pkl").write_bytes(b"pickle")
    return d


@pytest.fixture(scope="module")
def spec_with_model(fake_model):
    mp = pytest.MonkeyPatch()
    try:
        yield run_spec(mp, LIVERSEG_BUNDLE_MODEL_DIR=str(fake_model))
    finally:
        mp.undo()


def test_two_executables_one_onedir_bundle_named_after_the_version(spec_with_model):
    s = spec_with_model
    assert len(s.Analysis) == 1, "one Analysis shared by both executables"
    names = sorted(e.kwargs["name"] for e in s.EXE)
    assert names == ["liverseg", "liverseg-studio"]
    for exe in s.EXE:
        assert exe.kwargs.get("exclude_binaries") is True, "onedir: binaries go to COLLECT"
    (coll,) = s.COLLECT
    assert coll.kwargs["name"] == f"liverseg-studio-{liverseg_studio.__version__}"
    assert {e.kwargs["name"] for e in coll.args if isinstance(e, EXE)} == {"liverseg", "liverseg-studio"}
    cli = next(e for e in s.EXE if e.kwargs["name"] == "liverseg")
    assert cli.kwargs["console"] is True


def test_each_executable_runs_its_own_entry_script_after_the_runtime_hooks(spec_with_model):
    for exe in spec_with_model.EXE:
        scripts = [t[0] for t in exe.args[1]]
        entry = "entry_cli" if exe.kwargs["name"] == "liverseg" else "entry_studio"
        assert scripts[-1] == entry
        assert "pyi_rth_pyside6" in scripts and scripts.index("pyi_rth_pyside6") < scripts.index(entry)
        assert {"entry_cli", "entry_studio"} - {entry} & set(scripts) == set()


def test_entry_scripts_exist_and_handle_self_test(monkeypatch):
    (a,) = run_spec(monkeypatch).Analysis
    for script in a.args[0]:
        text = Path(script).read_text(encoding="utf-8")
        assert "--self-test" in text and "liverseg_studio.selftest" in text
        compile(text, script, "exec")


def test_torch_fastai_and_export_tooling_are_excluded(spec_with_model):
    (a,) = spec_with_model.Analysis
    excludes = set(a.kwargs["excludes"])
    for mod in ("torch", "torchvision", "fastai", "onnx", "onnxscript", "matplotlib", "PySide6.QtQuick",
                "PySide6.QtQml", "PySide6.QtWebEngineCore"):
        assert mod in excludes, mod
    hidden = set(a.kwargs["hiddenimports"])
    assert not {h for h in hidden if h.split(".")[0] in ("torch", "torchvision", "fastai", "onnx")}
    # pyqtgraph imports these unconditionally: excluding them would break the studio
    assert "PySide6.QtOpenGL" not in excludes and "PySide6.QtOpenGLWidgets" not in excludes
    # unused Qt libraries and QML files are dropped from what is collected
    (coll,) = spec_with_model.COLLECT
    binaries = [t[0] for arg in coll.args if isinstance(arg, list) for t in arg]
    assert "libQt6Core.so.6" in binaries and "libQt6Quick.so.6" not in binaries
    # the GTK theme plugin and the libraries only it needs go; Pillow's own copies and xcb stay
    assert "PySide6/Qt/plugins/platformthemes/libqgtk3.so" not in binaries and "libpango-1.0.so.0" not in binaries
    assert "pillow.libs/libharfbuzz-fb49c9fc.so.0" in binaries
    assert "PySide6/Qt/plugins/platforms/libqxcb.so" in binaries
    datas = [t[0] for arg in coll.args if isinstance(arg, list) for t in arg]
    assert not [d for d in datas if d.startswith(("PySide6/Qt/qml/", "PySide6/Qt/translations/"))]


def test_entry_point_plugins_and_their_metadata_are_collected(spec_with_model):
    from importlib.metadata import entry_points

    (a,) = spec_with_model.Analysis
    hidden = set(a.kwargs["hiddenimports"])
    eps = entry_points(group="liverseg_studio.plugins")
    assert {ep.value.split(":")[0] for ep in eps} <= hidden
    for mod in ("liverseg_studio.loaders.plugin", "liverseg_studio.backends.plugin",
                "liverseg_studio.backends.onnx_backend", "liverseg_studio.commands.segment",
                "liverseg_studio.selftest", "liverseg_studio.qt.main_window"):
        assert mod in hidden, mod
    # the metadata importlib.metadata reads at run time (entry_points.txt): dist-info, or the
    # egg-info of an editable install from the source tree
    dest_dirs = {dest for _src, dest, *_ in a.kwargs["datas"]}
    meta = {d for d in dest_dirs if d.endswith((".dist-info", ".egg-info"))}
    assert any(d.startswith(("liverseg_studio-", "liverseg_studio.")) for d in meta), dest_dirs
    names = {ep.dist.name for ep in eps if ep.dist is not None}
    if "liverseg-threshold-backend" in names:
        assert "liverseg_threshold_backend" in hidden
        assert any(d.startswith(("liverseg_threshold_backend-", "liverseg_threshold_backend.")) for d in meta)


def test_every_cli_command_is_bundled(spec_with_model):
    """cli.py imports its sub-commands by name: a missing one would break the whole frozen CLI."""
    from liverseg_studio import cli

    (a,) = spec_with_model.Analysis
    hidden = set(a.kwargs["hiddenimports"])
    for name in cli.COMMANDS:
        assert f"liverseg_studio.commands.{name}" in hidden, name


def test_model_folder_bundled_without_torch_only_files(spec_with_model):
    (a,) = spec_with_model.Analysis
    got = {n for n in dest_names(a.kwargs["datas"]) if n.startswith("resources/models/default/")}
    # the card and the file the onnx backend uses by default: no fp32 copy, no torch-only files
    assert got == {"resources/models/default/model.json", "resources/models/default/model.int8.onnx"}


def test_fp32_model_bundled_when_it_is_the_only_onnx_file(monkeypatch, tmp_path):
    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (a,) = run_spec(monkeypatch, LIVERSEG_BUNDLE_MODEL_DIR=str(tmp_path), LIVERSEG_BUNDLE_SAMPLE="0").Analysis
    got = {n for n in dest_names(a.kwargs["datas"]) if n.startswith("resources/")}
    assert got == {"resources/models/default/model.json", "resources/models/default/model.onnx"}


def test_a_card_without_onnx_files_stops_the_build(monkeypatch, tmp_path):
    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(SystemExit, match="no model.int8.onnx or model.onnx"):
        run_spec(monkeypatch, LIVERSEG_BUNDLE_MODEL_DIR=str(tmp_path))


def test_spec_still_builds_without_a_model(monkeypatch, tmp_path, capfd):
    s = run_spec(monkeypatch, LIVERSEG_BUNDLE_MODEL_DIR=str(tmp_path / "nothing-here"), LIVERSEG_BUNDLE_SAMPLE="0")
    (a,) = s.Analysis
    names = dest_names(a.kwargs["datas"])
    assert not [n for n in names if n.startswith("resources/")]
    assert len(s.COLLECT) == 1
    assert "building WITHOUT a model" in capfd.readouterr().err


def test_sample_case_bundled_when_installed(spec_with_model):
    from liverseg_studio.sample import sample_case

    case = sample_case()
    if case is None:
        pytest.skip("sample case not installed (make setup installs it)")
    (a,) = spec_with_model.Analysis
    assert f"resources/sample/{case.image.name}" in dest_names(a.kwargs["datas"])


def test_package_test_script_is_valid_bash():
    script = ROOT / "packaging" / "package_test.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_make_targets_build_and_test_the_bundle():
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\npackage:" in text and "\npackage-test: package" in text
    assert "pyinstaller --noconfirm --clean packaging/liverseg_studio.spec" in text
    assert "--distpath dist --workpath build/pyinstaller" in text
    assert "packaging/package_test.sh" in text


def test_openvino_is_collected_by_its_hook_and_the_rest_dropped(spec_with_model):
    """Issue 13/27: packaging/hooks/hook-openvino.py collects the CPU plugin and ONNX front end
    (tests/packaging/test_packaging_hooks.py); the spec drops what the analysis would add besides."""
    pytest.importorskip("openvino")
    a = spec_with_model.Analysis[0]
    assert str(ROOT / "packaging" / "hooks") in a.kwargs["hookspath"]
    drop = spec_with_model.ns["OPENVINO_DROP"]
    assert any(d.startswith("libopenvino_intel_gpu_plugin") for d in drop)
    hidden = set(a.kwargs["hiddenimports"])
    assert {"openvino", "liverseg_openvino_backend"} <= hidden
    excludes = set(a.kwargs["excludes"])
    assert {"openvino.tools", "openvino.torch", "openvino_telemetry"} <= excludes


def test_hooks_cover_the_libraries_of_issue_27(spec_with_model):
    hooks = {p.name for p in (ROOT / "packaging" / "hooks").glob("hook-*.py")}
    for lib in ("highdicom", "pydicom", "nibabel", "openvino", "pylibjpeg", "gdcm", "pynetdicom", "dicomweb_client"):
        assert f"hook-{lib}.py" in hooks, lib


def test_excludes_are_lifted_only_for_features_the_app_imports(spec_with_model):
    ns = spec_with_model.ns
    lifted = ns["lifted_excludes"]
    assert lifted(set()) == set()
    if ns["installed"]("OpenGL"):
        assert {"pyqtgraph.opengl", "OpenGL"} <= lifted({"pyqtgraph.opengl.GLViewWidget"})
    assert "OpenGL" not in lifted({"pyqtgraph"})  # pyqtgraph's optional OpenGL import alone does not count
    if not ns["installed"]("dicomweb_client"):
        assert lifted({"dicomweb_client.api"}) == set()  # not installed: nothing to bundle
    excludes = set(spec_with_model.Analysis[0].kwargs["excludes"])
    assert not (ns["LIFTED"] & excludes)
