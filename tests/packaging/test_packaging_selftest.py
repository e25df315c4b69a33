"""``--self-test`` (liverseg_studio.selftest), run unfrozen: what the frozen app runs.

The frozen build itself is tested by ``make package-test`` (minutes); these
tests check in seconds that the self-test passes on a working installation,
fails -- with exit code 1 and a clear message -- when the default model is
missing or a backend returns nonsense, and that the network guard blocks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liverseg_studio import selftest

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, **kwargs) -> tuple[int, str]:
    lines: list[str] = []
    rc = selftest.run_self_test(out=lines.append, **kwargs)
    return rc, "\n".join(lines)


def test_phantom_geometry_and_truth():
    volume, truth = selftest.phantom()
    assert volume.shape == truth.shape == (6, 128, 128)
    assert truth.dtype == np.uint8 and set(np.unique(truth)) == {0, 1, 2}
    # liver is brighter than the body, the tumour darker than the liver
    hu = volume.array
    assert hu[truth == 1].mean() > hu[(truth == 0) & (hu > -500)].mean() + 40
    assert hu[truth == 2].mean() < hu[truth == 1].mean() - 20
    assert volume.spacing == pytest.approx((2.5, 350 / 128, 350 / 128))


def test_dice():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    assert selftest.dice(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert selftest.dice(a, b) == pytest.approx(0.5)


def test_self_test_passes_with_the_threshold_backend(capsys):
    pytest.importorskip("liverseg_threshold_backend")
    rc, out = run(capsys, backend="threshold")
    assert rc == 0, out
    assert "SELF-TEST PASSED" in out
    for step in ("plugin discovery", "synthetic CT -> NIfTI -> loader", "volumetry", "sample case", "segment the phantom",
                 "export NIfTI, PNG, JSON"):
        assert f"ok    {step}" in out, step
    assert "Dice vs phantom truth: liver 0.9" in out or "Dice vs phantom truth: liver 1.0" in out


def test_self_test_fails_clearly_without_a_default_model(capsys, monkeypatch):
    import liverseg_studio.backends.common as common

    monkeypatch.setattr(common, "default_model_dir", lambda: None)
    rc, out = run(capsys)
    assert rc == 1
    assert "no default model is bundled" in out and "--backend threshold" in out
    assert "SELF-TEST FAILED (1 failure(s)" in out  # later steps are skipped, not failed again


def test_self_test_fails_for_an_unknown_backend(capsys):
    rc, out = run(capsys, backend="no-such-backend")
    assert rc == 1 and "backend 'no-such-backend' is not installed" in out


class _BadBackend:
    """Returns label value 7 (not a class): the self-test must catch it."""

    name = "bad"
    card = None

    def load(self, model_dir=None, *, threads=None):
        pass

    def predict(self, volume, *, progress=None, is_cancelled=None):
        from liverseg_studio.backends.base import Prediction

        labels = np.full(volume.shape, 7, dtype=np.uint8)
        return Prediction(labels=labels, probabilities=None, timings={"inference": 0.01, "slices": volume.n_slices})


class _EmptyBackend(_BadBackend):
    """Finds nothing: fine for a model (reported), a failure for the threshold check."""

    def predict(self, volume, *, progress=None, is_cancelled=None):
        from liverseg_studio.backends.base import Prediction

        return Prediction(labels=np.zeros(volume.shape, np.uint8), probabilities=None,
                          timings={"inference": 0.01, "slices": volume.n_slices})


def _install(monkeypatch, name, cls):
    from liverseg_studio.plugins import hookimpl
    from liverseg_studio.plugins.manager import PluginManager
    from liverseg_studio.plugins.registry import BackendSpec

    class Plugin:
        @hookimpl
        def liverseg_register_backends(self, registry):
            registry.add(BackendSpec(name=name, factory=cls, description="test", needs_model=False))

    original = PluginManager.load_entrypoints

    def load_entrypoints(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.register(Plugin(), f"{name}-test-plugin")
        return self

    monkeypatch.setattr(PluginManager, "load_entrypoints", load_entrypoints)


def test_self_test_catches_impossible_label_values(capsys, monkeypatch):
    _install(monkeypatch, "bad", _BadBackend)
    rc, out = run(capsys, backend="bad")
    assert rc == 1
    assert "FAIL  segment the phantom" in out


def test_threshold_check_fails_when_the_liver_is_missed(capsys, monkeypatch):
    pytest.importorskip("liverseg_threshold_backend")
    import liverseg_threshold_backend

    monkeypatch.setattr(liverseg_threshold_backend.ThresholdBackend, "predict", _EmptyBackend.predict)
    rc, out = run(capsys, backend="threshold")
    assert rc == 1 and "found the phantom's liver with Dice 0.000" in out


def _make_test_model():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_test_model", ROOT / "packaging" / "make_test_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_test_model


def test_self_test_with_an_onnx_model_folder(capsys, tmp_path):
    """The onnx path end to end (sha256 verified, every slice through ONNX Runtime) on the
    throw-away 1x1-convolution model that make package-test uses before the real model exists."""
    pytest.importorskip("onnx")
    model_dir = _make_test_model()(tmp_path / "model", size=64)
    rc, out = run(capsys, backend="onnx", model_dir=model_dir, threads=1)
    assert rc == 0, out
    assert "sha256 verified" in out and "file model.onnx" in out
    assert "ok    segment the phantom" in out


def test_self_test_fails_on_a_tampered_model(capsys, tmp_path):
    pytest.importorskip("onnx")
    model_dir = _make_test_model()(tmp_path / "model", size=64)
    with open(model_dir / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    rc, out = run(capsys, backend="onnx", model_dir=model_dir)
    assert rc == 1 and "FAIL  load backend 'onnx'" in out and "sha256" in out.lower()


def test_main_parses_options_and_sets_the_exit_code(monkeypatch, capsys):
    import liverseg_studio.backends.common as common

    monkeypatch.setattr(common, "default_model_dir", lambda: None)
    assert selftest.main([]) == 1
    assert "no default model is bundled" in capsys.readouterr().out


def test_network_guard_blocks_and_logs(tmp_path):
    log = tmp_path / "net.log"
    code = f"""
import socket, urllib.request
from liverseg_studio.selftest import install_network_guard, NetworkBlocked
install_network_guard({str(log)!r})
blocked = 0
for fn in (lambda: socket.create_connection(("example.org", 80), timeout=1),
           lambda: socket.socket().connect(("127.0.0.1", 9)),
           lambda: socket.getaddrinfo("example.org", 443),
           lambda: urllib.request.urlopen("http://example.org", timeout=1)):
    try:
        fn()
    except (NetworkBlocked, OSError) as exc:
        blocked += "blocked by the self-test guard" in str(exc)
a, b = socket.socketpair()  # local IPC stays allowed
a.sendall(b"x")
assert b.recv(1) == b"x"
print(blocked)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "4"
    assert len(log.read_text().splitlines()) == 4


def test_frozen_entry_scripts_use_the_guard_and_self_test():
    for name in ("entry_cli.py", "entry_studio.py"):
        text = (ROOT / "packaging" / name).read_text(encoding="utf-8")
        assert "LIVERSEG_NETGUARD_LOG" in text and "install_network_guard_from_env" in text
        assert text.index("install_network_guard_from_env()") < text.index("--self-test\" in argv")


def test_sample_case_found_in_a_bundle(monkeypatch, tmp_path):
    from liverseg_studio import sample

    data = tmp_path / "resources" / "sample"
    data.mkdir(parents=True)
    (data / sample.IMAGE_NAME).write_bytes(b"mrc")
    (data / sample.LABELS_NAME).write_bytes(b"mrc")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    case = sample.sample_case()
    assert case is not None and case.image == data / sample.IMAGE_NAME and case.labels == data / sample.LABELS_NAME


def test_fastai_backend_says_when_pytorch_is_missing(monkeypatch, capsys):
    import liverseg_studio.backends.plugin as builtin
    from liverseg_studio import cli
    from liverseg_studio.plugins import manager

    monkeypatch.setattr(builtin, "torch_available", lambda: False)
    monkeypatch.setattr(manager, "_default", None)
    assert cli.main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "backend  fastai" in ln)
    assert "unavailable: PyTorch not in this build" in line
    monkeypatch.setattr(builtin, "torch_available", lambda: True)
    monkeypatch.setattr(manager, "_default", None)
    cli.main(["plugins"])
    assert "unavailable" not in capsys.readouterr().out
