"""scripts/average_weights.py (weight averaging) and scripts/select_model.py (the validation-only selection rule)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.prepared import prepared_phantoms
from helpers.tiny_model import TinyModel, copy_model_dir

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


def _script(name: str):  # noqa: ANN202 - a module object
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=ROOT)


def _model_copy(tiny: TinyModel, dest: Path) -> Path:
    return copy_model_dir(tiny.model_dir, dest, ("model.json", "model.safetensors"))


def test_liver_box_frames_the_liver_with_a_margin_and_a_minimum_side() -> None:
    sel = _script("select_model")
    lab = np.zeros((100, 100), np.uint8)
    assert sel.liver_box(lab) is None
    lab[40:60, 30:80] = 3  # liver-or-tumour counts as liver
    y0, x0, side = sel.liver_box(lab)
    assert side == 60  # 50 px wide + 2 x 10 %
    assert y0 <= 40 and y0 + side >= 60 and x0 <= 30 and x0 + side >= 80
    small = np.zeros((100, 100), np.uint8)
    small[95:99, 95:99] = 1
    y0, x0, side = sel.liver_box(small)
    assert side == 40 and y0 + side <= 100 and x0 + side <= 100  # at least 40 %, inside the image


def test_zoom_view_keeps_image_and_labels_aligned() -> None:
    sel = _script("select_model")
    lab = np.zeros((64, 64), np.int64)
    lab[20:40, 10:30] = 1
    img = np.stack([lab.astype(np.float32)] * 3, axis=-1)
    box = sel.liver_box(lab)
    zi, zl = sel.zoom_view(img, lab, box)
    assert zi.shape == (64, 64, 3) and zl.shape == (64, 64)
    assert (zl >= 1).sum() > (lab >= 1).sum() * 2  # magnified
    assert np.array_equal(zi[..., 0] > 0.5, zl >= 1)


def test_average_weights_is_the_weighted_mean_with_calibration_offsets_removed(tiny_model: TinyModel, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    from liverseg_studio.core.modelcard import read_card, write_card
    from liverseg_studio.training.calibrate import HEAD

    a = _model_copy(tiny_model, tmp_path / "a")
    b = _model_copy(tiny_model, tmp_path / "b")
    sa = load_file(str(a / "model.safetensors"))
    gen = torch.Generator().manual_seed(0)
    sb = {k: (v + torch.randn(v.shape, generator=gen) * 0.01 if v.is_floating_point() else v) for k, v in sa.items()}
    raw_b_bias = sb[f"{HEAD}.bias"].clone()
    sb[f"{HEAD}.bias"][2] -= 2.0  # b was calibrated with offset 2.0
    save_file(sb, str(b / "model.safetensors"), metadata={"format": "pt"})
    card = read_card(b)
    card.training["tumour_decision"] = {"offset": 2.0}
    write_card(b, card)

    out = tmp_path / "soup"
    r = _run(SCRIPTS / "average_weights.py", out, a, b, "--weights", "3,1", "--version", "9.9.9")
    assert r.returncode == 0, r.stderr
    soup = load_file(str(out / "model.safetensors"))
    conv = next(k for k, v in sa.items() if v.is_floating_point() and v.ndim == 4)
    assert torch.allclose(soup[conv], 0.75 * sa[conv] + 0.25 * sb[conv], atol=1e-6)
    assert torch.allclose(soup[f"{HEAD}.bias"], 0.75 * sa[f"{HEAD}.bias"] + 0.25 * raw_b_bias, atol=1e-6)
    c = read_card(out)
    assert c.version == "9.9.9" and "tumour_decision" not in c.training
    assert [i["offset_removed"] for i in c.training["soup"]["inputs"]] == [0.0, 2.0]
    assert set(c.files) == {"safetensors"}

    again = _run(SCRIPTS / "average_weights.py", out, a, b)
    assert again.returncode != 0 and "--overwrite" in again.stderr  # never overwrites a model folder silently
    bad = _run(SCRIPTS / "average_weights.py", tmp_path / "x", a, b, "--weights", "1")
    assert bad.returncode != 0 and "one non-negative weight per model" in bad.stderr


def test_average_weights_dequantises_a_folder_with_onnx_weights_only(tiny_model: TinyModel, tmp_path: Path) -> None:
    """The first shipped model (2026.11.1) exists only as ONNX: it is read as ``liverseg train --init-from`` reads it."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    from liverseg_studio.core.modelcard import read_card
    from liverseg_studio.training.warmstart import unet_from_onnx

    onnx_only = copy_model_dir(tiny_model.model_dir, tmp_path / "onnx-only", ("model.json", "model.onnx"))
    out = tmp_path / "soup"
    r = _run(SCRIPTS / "average_weights.py", out, onnx_only, onnx_only)
    assert r.returncode == 0, r.stderr
    soup = load_file(str(out / "model.safetensors"))
    ref = unet_from_onnx(onnx_only / "model.onnx", int(read_card(onnx_only).input_size)).state_dict()
    assert set(soup) == set(ref)
    for k, v in ref.items():
        if v.is_floating_point():
            assert torch.allclose(soup[k], v, atol=1e-6), k

    (onnx_only / "model.onnx").unlink()  # no weights at all: a clear error, no output
    bad = _run(SCRIPTS / "average_weights.py", tmp_path / "none", onnx_only, onnx_only)
    assert bad.returncode != 0 and "no model.safetensors, model.onnx or model.int8.onnx" in bad.stderr
    assert not (tmp_path / "none" / "model.safetensors").exists()


def test_select_model_scores_calibrated_candidates_on_the_validation_split(tiny_model: TinyModel, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from liverseg_studio.training.calibrate import calibrate

    data = prepared_phantoms(tmp_path / "data")
    a = _model_copy(tiny_model, tmp_path / "a")
    r = _run(SCRIPTS / "select_model.py", data, a)
    assert r.returncode != 0 and "not calibrated" in (r.stderr + r.stdout)
    calibrate(a, data)
    out = tmp_path / "select.json"
    r = _run(SCRIPTS / "select_model.py", data, a, "--out", out)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.splitlines()[0])
    assert row["slices"] > 0 and 0 <= row["liver_dice_plain"] <= 1 and 0 <= row["liver_dice_zoom"] <= 1
    assert row["score"] == pytest.approx(
        (row["liver_dice_plain"] + row["liver_dice_zoom"]) / 2 + (row["tumour_dice_plain"] + row["tumour_dice_zoom"]) / 2,
        abs=2e-4,
    )
    assert row["liver_dice_plain"] > 0.5  # the tiny model segments its synthetic livers
    assert json.loads(out.read_text())["selected"] == str(a)
