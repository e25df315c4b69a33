"""``liverseg export``: ONNX fp32/int8 files, agreement checks, sha256 in the card, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.tiny_model import copy_model_dir, synthetic_volume

from liverseg_studio import cli
from liverseg_studio.core.modelcard import read_card, sha256_file, verify_files

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")


def inputs(n: int = 4, size: int = 64, seed: int = 7) -> np.ndarray:
    from liverseg_studio.core.preprocess import windowed_rgb

    hu, _ = synthetic_volume(n=n, size=size, seed=seed)
    return np.ascontiguousarray(np.moveaxis(windowed_rgb(hu, as_float=True), -1, 1))


def test_torch_and_onnx_fp32_logits_match(tiny_model):
    from liverseg_studio.training.export import load_torch_model, make_session, run_session, run_torch

    reported = tiny_model.export_report["torch_vs_onnx_max_abs_logit_diff"]
    x = inputs()
    model = load_torch_model(tiny_model.model_dir)
    ref = run_torch(model, x)
    got = run_session(make_session(tiny_model.model_dir / "model.onnx", threads=2), x)
    diff = float(np.abs(ref - got).max())
    scale = float(np.abs(ref).max())
    print(f"\ntorch vs ONNX fp32: max abs logit difference {diff:.3g} (export reported {reported:.3g}; logits up to {scale:.3g})")
    assert reported < 1e-3
    assert diff < 1e-3
    assert scale > 0.5  # the logits are not trivially zero


def test_onnx_contract_and_dynamic_batch(tiny_model):
    from liverseg_studio.training.export import make_session

    for name in ("model.onnx", "model.int8.onnx"):
        sess = make_session(tiny_model.model_dir / name, threads=2)
        (inp,) = sess.get_inputs()
        (out,) = sess.get_outputs()
        assert inp.name == "image" and inp.type == "tensor(float)" and inp.shape[1:] == [3, 64, 64]
        assert out.name == "logits" and out.type == "tensor(float)"
        for n in (1, 3):
            y = sess.run(["logits"], {"image": inputs(n)})[0]
            assert y.shape == (n, 3, 64, 64) and np.isfinite(y).all()


def test_int8_model_is_quantized_and_smaller(tiny_model):
    import onnx

    m = onnx.load(str(tiny_model.model_dir / "model.int8.onnx"))
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    fp32 = (tiny_model.model_dir / "model.onnx").stat().st_size
    int8 = (tiny_model.model_dir / "model.int8.onnx").stat().st_size
    assert int8 < 0.35 * fp32


def test_card_records_hashes_and_agreement(tiny_model):
    card = read_card(tiny_model.model_dir)
    assert {"onnx", "onnx_int8", "safetensors"} <= set(card.files)
    paths = verify_files(tiny_model.model_dir)
    assert len(paths) == len(card.files)
    for entry in card.files.values():
        p = tiny_model.model_dir / entry["path"]
        assert entry["bytes"] == p.stat().st_size and entry["sha256"] == sha256_file(p)
    agree = card.metrics["export"]["int8_vs_fp32"]
    print(f"\nexport: int8 vs fp32 on validation slices {agree}")
    assert agree["mean"] >= 0.98
    assert card.metrics["export"]["validation_slices"] == 16


def test_label_agreement():
    from liverseg_studio.training.export import label_agreement

    a = np.zeros((2, 10, 10), np.uint8)
    a[:, 2:6, 2:6] = 1
    a[:, 3:5, 3:5] = 2
    assert label_agreement(a, a)["mean"] == 1.0
    b = a.copy()
    b[:, 3:5, 3:5] = 1  # tumour lost, liver unchanged
    r = label_agreement(a, b)
    assert r["liver"] == 1.0 and r["tumour"] == 0.0 and r["mean"] == 0.5
    empty = np.zeros_like(a)
    assert label_agreement(empty, empty)["mean"] == 1.0


def test_calibration_paths(tiny_model, tmp_path):
    from liverseg_studio.training.export import ExportError, calibration_paths

    calib, valid = calibration_paths(tiny_model.data_dir, n_calib=5, n_valid=3)
    manifest = json.loads((tiny_model.data_dir / "manifest.json").read_text())["slices"]
    split = {str(tiny_model.data_dir / e["image"]): e["split"] for e in manifest}
    assert len(calib) == 5 and len(valid) == 3
    assert all(split[str(p)] == "train" for p in calib)
    assert all(split[str(p)] == "valid" for p in valid)
    # plain folder of images: alternate halves, no overlap
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in sorted((tiny_model.data_dir / "images").glob("*.jpg"))[:6]:
        (folder / p.name).write_bytes(p.read_bytes())
    c2, v2 = calibration_paths(folder)
    assert len(c2) == 3 and len(v2) == 3 and not set(c2) & set(v2)
    with pytest.raises(ExportError, match="no manifest.json and no JPG/PNG"):
        calibration_paths(_empty(tmp_path))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({"slices": [{"image": "x.jpg", "split": "train"}]}))
    with pytest.raises(ExportError, match="missing"):
        calibration_paths(bad)


def _empty(tmp_path: Path) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    return d


def fresh_model_dir(tiny_model, tmp_path: Path) -> Path:
    """A model folder with only model.json + model.safetensors (what `liverseg train` writes)."""
    mdir = copy_model_dir(tiny_model.model_dir, tmp_path / "model", ("model.json", "model.safetensors"))
    card = read_card(mdir)
    card.files = {k: v for k, v in card.files.items() if k == "safetensors"}
    card.metrics = {}
    from liverseg_studio.core.modelcard import write_card

    write_card(mdir, card)
    return mdir


def test_cli_export_refusals_write_nothing(tiny_model, tmp_path, capsys):
    mdir = fresh_model_dir(tiny_model, tmp_path)
    before = sorted(p.name for p in mdir.iterdir())
    card_before = (mdir / "model.json").read_text()
    # --int8 without calibration data
    assert cli.main(["export", str(mdir), "--int8"]) == 2
    assert "--calib" in capsys.readouterr().err
    # an int8 model that cannot reach the required agreement is refused, and nothing is written
    rc = cli.main(
        ["export", str(mdir), "--int8", "--calib", str(tiny_model.data_dir), "--calib-slices", "4",
         "--valid-slices", "4", "--min-agreement", "1.01", "--threads", "2"]
    )
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "not written" in err
    assert sorted(p.name for p in mdir.iterdir()) == before  # no model.onnx, no int8, no temp files
    assert (mdir / "model.json").read_text() == card_before


def test_cli_export_fp32_then_refuses_overwrite(tiny_model, tmp_path, capsys):
    mdir = fresh_model_dir(tiny_model, tmp_path)
    assert cli.main(["export", str(mdir), "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "max abs logit difference" in out
    card = read_card(mdir)
    assert set(card.files) == {"safetensors", "onnx"}
    verify_files(mdir)
    assert card.metrics["export"]["torch_vs_onnx_max_abs_logit_diff"] < 1e-3
    sha = card.files["onnx"]["sha256"]
    # a second export does not overwrite without --overwrite
    assert cli.main(["export", str(mdir)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sha256_file(mdir / "model.onnx") == sha
    # the export is deterministic: --overwrite reproduces the same file
    assert cli.main(["export", str(mdir), "--overwrite", "--threads", "2"]) == 0
    assert read_card(mdir).files["onnx"]["sha256"] == sha


def test_export_refuses_tampered_weights(tiny_model, tmp_path, capsys):
    mdir = fresh_model_dir(tiny_model, tmp_path)
    with open(mdir / "model.safetensors", "r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"\x00" * 8)
    assert cli.main(["export", str(mdir)]) == 2
    assert "sha256" in capsys.readouterr().err
    assert not (mdir / "model.onnx").exists()
