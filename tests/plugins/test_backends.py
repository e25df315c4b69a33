"""The built-in onnx and fastai backends on the session's tiny real-architecture model."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from helpers.imports import assert_imports_none_of
from helpers.tiny_model import copy_model_dir, synthetic_volume

from liverseg_studio.core.errors import BackendError, CancelledError
from liverseg_studio.core.modelcard import read_card, sha256_file, write_card
from liverseg_studio.core.volume import Intensity, Volume

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int(np.logical_and(a, b).sum()) / s


@pytest.fixture(scope="module")
def volume_and_truth() -> tuple[Volume, np.ndarray]:
    hu, labels = synthetic_volume(n=6, size=96, seed=11)
    return Volume(array=hu, intensity=Intensity.HU, source="synthetic"), labels


def load_onnx(model_dir: Path, **kw):
    from liverseg_studio.backends.onnx_backend import OnnxBackend

    b = OnnxBackend()
    b.load(model_dir, threads=2, **kw)
    return b


def load_openvino(model_dir: Path, **kw):
    pytest.importorskip("openvino")
    from liverseg_openvino_backend import OpenVinoBackend

    b = OpenVinoBackend()
    b.load(model_dir, threads=2, **kw)
    return b


#: The engines that run the card's ONNX files (issue 13: every check covers openvino too).
ONNX_ENGINES = {"onnx": load_onnx, "openvino": load_openvino}


def load_fastai(model_dir: Path, **kw):
    from liverseg_studio.backends.fastai_backend import FastaiBackend

    b = FastaiBackend()
    b.load(model_dir, threads=2, **kw)
    return b


def test_tiny_model_is_meaningful(tiny_model, volume_and_truth):
    """The fixture model really segments (otherwise the agreement tests below would be vacuous)."""
    volume, truth = volume_and_truth
    pred = load_onnx(tiny_model.model_dir, precision="fp32").predict(volume)
    assert pred.labels.shape == volume.shape and pred.labels.dtype == np.uint8
    assert dice(pred.labels >= 1, truth >= 1) > 0.8
    assert dice(pred.labels == 2, truth == 2) > 0.4
    # the prediction is not constant
    assert len(np.unique(pred.labels)) == 3


def test_onnx_and_fastai_backends_agree(tiny_model, volume_and_truth):
    volume, _ = volume_and_truth
    a = load_onnx(tiny_model.model_dir, precision="fp32").predict(volume, want_probabilities=True)
    b = load_fastai(tiny_model.model_dir).predict(volume, want_probabilities=True)
    assert a.probabilities is not None and b.probabilities is not None
    assert a.probabilities.shape == (volume.shape[0], 3, *volume.shape[1:])
    np.testing.assert_allclose(a.probabilities.sum(axis=1), 1.0, atol=1e-4)
    diff = float(np.abs(a.probabilities - b.probabilities).max())
    print(f"\nonnx fp32 vs fastai: max probability difference {diff:.2e}")
    assert diff < 1e-3
    assert np.mean(a.labels == b.labels) > 0.999
    assert dice(a.labels >= 1, b.labels >= 1) > 0.99


@pytest.mark.parametrize("engine", sorted(ONNX_ENGINES))
def test_int8_and_fp32_onnx_agree(tiny_model, volume_and_truth, engine):
    """Issue 7: int8 and fp32 ONNX predictions agree (Dice >= 0.98) on a few slices (both engines)."""
    volume, truth = volume_and_truth
    b32 = ONNX_ENGINES[engine](tiny_model.model_dir, precision="fp32")
    b8 = ONNX_ENGINES[engine](tiny_model.model_dir)  # default: int8
    assert b8.model_path.name == "model.int8.onnx" and b32.model_path.name == "model.onnx"
    l32 = b32.predict(volume).labels
    l8 = b8.predict(volume).labels
    d_liver = dice(l32 >= 1, l8 >= 1)
    d_tumour = dice(l32 == 2, l8 == 2)
    print(f"\nint8 vs fp32 Dice: liver {d_liver:.4f}, tumour {d_tumour:.4f}; "
          f"int8 vs truth liver {dice(l8 >= 1, truth >= 1):.3f}")
    assert (d_liver + d_tumour) / 2 >= 0.98
    assert d_liver >= 0.98


def test_plain_images_and_windowed_rgb_inputs(tiny_model):
    """8-bit grey and 3-channel windowed inputs of odd, non-square sizes give labels of their shape."""
    from liverseg_studio.core.preprocess import windowed_rgb

    hu, _ = synthetic_volume(n=2, size=80, seed=3)
    hu = hu[:, :, :70]
    rgb = Volume(array=windowed_rgb(hu), intensity=Intensity.WINDOWED_RGB, spacing_known=False)
    grey = Volume(array=np.clip(hu, 0, 255).astype(np.uint8), intensity=Intensity.DISPLAY8, spacing_known=False)
    b = load_onnx(tiny_model.model_dir)
    calls = []
    for v in (rgb, grey):
        p = b.predict(v, progress=lambda d, n: calls.append((d, n)))
        assert p.labels.shape == (2, 80, 70)
        assert p.timings["slices"] == 2 and p.timings["inference"] > 0
    assert calls[-1] == (2, 2)
    # both describe the same slices (grey 0..255 = HU 0..255 = the clamp range): same labels
    assert np.mean(b.predict(rgb).labels == b.predict(grey).labels) > 0.99


def test_onnx_backend_exposes_card(tiny_model):
    b = load_onnx(tiny_model.model_dir)
    assert b.card.name == "tiny-test-model" and b.card.input_size == 64
    info = b.describe()
    assert info["precision"] == "int8" and info["threads"] == 2


@pytest.mark.parametrize("engine", sorted(ONNX_ENGINES))
def test_sha256_mismatch_refused_unless_overridden(tiny_model, tmp_path, monkeypatch, engine):
    load_onnx = ONNX_ENGINES[engine]  # the same checks for every engine
    mdir = copy_model_dir(tiny_model.model_dir, tmp_path / "m")
    target = mdir / "model.int8.onnx"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF  # flip a byte of the last initializer
    target.write_bytes(bytes(data))
    expected = read_card(mdir).files["onnx_int8"]["sha256"]
    with pytest.raises(BackendError) as err:
        load_onnx(mdir)
    msg = str(err.value)
    assert "model.int8.onnx" in msg and expected in msg and sha256_file(target) in msg
    # explicit override: loads, with a warning
    from liverseg_studio.backends.onnx_backend import UnverifiedModelWarning

    with pytest.warns(UnverifiedModelWarning):
        b = load_onnx(mdir, verify=False)
    assert b.loaded
    monkeypatch.setenv("LIVERSEG_ALLOW_UNVERIFIED_MODEL", "1")
    with pytest.warns(UnverifiedModelWarning):
        load_onnx(mdir)


@pytest.mark.parametrize("engine", sorted(ONNX_ENGINES))
def test_file_missing_from_card_is_refused(tiny_model, tmp_path, engine):
    load_onnx = ONNX_ENGINES[engine]
    mdir = copy_model_dir(tiny_model.model_dir, tmp_path / "m")
    card = read_card(mdir)
    del card.files["onnx_int8"]
    write_card(mdir, card)
    with pytest.raises(BackendError, match="lists no sha256"):
        load_onnx(mdir)


def test_missing_folder_card_or_model(tmp_path):
    from liverseg_studio.backends.onnx_backend import OnnxBackend

    with pytest.raises(BackendError, match="does not exist"):
        OnnxBackend().load(tmp_path / "nope")
    with pytest.raises(BackendError, match="model.json"):
        OnnxBackend().load(tmp_path)
    (tmp_path / "model.json").write_text('{"name": "x", "input_size": 64}')
    with pytest.raises(BackendError, match="no ONNX model"):
        OnnxBackend().load(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(BackendError, match="not valid JSON"):
        OnnxBackend().load(tmp_path)


def test_predict_before_load_is_a_backend_error():
    from liverseg_studio.backends.fastai_backend import FastaiBackend
    from liverseg_studio.backends.onnx_backend import OnnxBackend

    v = Volume(array=np.zeros((1, 8, 8), np.float32))
    for b in (OnnxBackend(), FastaiBackend()):
        with pytest.raises(BackendError, match="load"):
            b.predict(v)


# -- untrusted pickles ------------------------------------------------------------------
class _Marker:
    """Unpickling this object creates a marker file (what malicious code could do instead)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def write_pickle_only_model(folder: Path, marker: Path, with_card_hash: bool) -> Path:
    folder.mkdir(parents=True)
    (folder / "export.pkl").write_bytes(pickle.dumps(_Marker(str(marker))))
    if with_card_hash:
        from liverseg_studio.core.modelcard import ModelCard

        card = ModelCard(name="pickle-only", input_size=64)
        card.record_file("pickle", folder)
        write_card(folder, card)
    return folder


@pytest.mark.parametrize("with_card_hash", [True, False])
def test_malicious_pickle_not_executed_without_trust(tmp_path, with_card_hash):
    from liverseg_studio.backends.fastai_backend import FastaiBackend

    marker = tmp_path / "PWNED"
    mdir = write_pickle_only_model(tmp_path / "m", marker, with_card_hash)
    with pytest.raises(BackendError) as err:
        FastaiBackend().load(mdir)
    assert "--trust-pickle" in str(err.value) and "arbitrary code" in str(err.value)
    assert not marker.exists()


def test_trusted_pickle_is_unpickled_with_a_warning(tmp_path):
    """With explicit trust the pickle *is* loaded (so the refusal above is what protects users)."""
    from liverseg_studio.backends.fastai_backend import FastaiBackend, UntrustedPickleWarning

    marker = tmp_path / "PWNED"
    mdir = write_pickle_only_model(tmp_path / "m", marker, with_card_hash=True)
    with pytest.warns(UntrustedPickleWarning), pytest.raises(BackendError):
        FastaiBackend(trust_pickle=True).load(mdir)  # not a Learner -> BackendError, but it ran
    assert marker.exists()


def test_tampered_pickle_refused_even_when_trusted(tmp_path):
    from liverseg_studio.backends.fastai_backend import FastaiBackend

    marker = tmp_path / "PWNED"
    mdir = write_pickle_only_model(tmp_path / "m", marker, with_card_hash=True)
    (mdir / "export.pkl").write_bytes(pickle.dumps(_Marker(str(marker))) + b"\x00")
    with pytest.raises(BackendError, match="sha256"):
        FastaiBackend(trust_pickle=True).load(mdir)
    assert not marker.exists()


def test_fastai_safetensors_mismatch_refused(tiny_model, tmp_path):
    mdir = copy_model_dir(tiny_model.model_dir, tmp_path / "m", ("model.json", "model.safetensors"))
    with open(mdir / "model.safetensors", "r+b") as fh:
        fh.seek(-4, os.SEEK_END)
        fh.write(b"\x01\x02\x03\x04")
    with pytest.raises(BackendError, match="sha256 does not match"):
        load_fastai(mdir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_fastai(mdir, verify=False).loaded


# -- plugin registration ---------------------------------------------------------------------
def test_plugin_import_is_cheap_and_registers_both_backends():
    setup = (
        "import liverseg_studio.backends.plugin as p\n"
        "from liverseg_studio.plugins.manager import get_plugin_manager\n"
        "pm = get_plugin_manager()\n"
        "names = pm.backends.names()\n"
        "assert 'onnx' in names and 'fastai' in names, names\n"
        "b1, b2 = pm.backends.create('onnx'), pm.backends.create('fastai')\n"
        "assert b1.name == 'onnx' and b2.name == 'fastai'\n"
    )
    assert_imports_none_of(setup, ("torch", "onnxruntime", "fastai", "torchvision"))


def test_cli_segment_refuses_pickle_without_trust_pickle_and_passes_the_flag(tmp_path, nifti_phantom, capsys):
    """`liverseg segment --backend fastai` on a pickle-only model: refused (nothing runs) unless --trust-pickle."""
    from liverseg_studio import cli

    marker = tmp_path / "PWNED"
    mdir = write_pickle_only_model(tmp_path / "m", marker, with_card_hash=True)
    args = ["segment", str(nifti_phantom.path), "--out", str(tmp_path / "out"), "--backend", "fastai", "--model", str(mdir)]
    assert cli.main(args) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert not marker.exists()
    with pytest.warns(UserWarning):
        assert cli.main(args + ["--trust-pickle"]) == 2  # not a Learner, but the flag reached the backend
    assert marker.exists()
