"""``liverseg segment`` with the real ONNX backend and the session's tiny test model."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from liverseg_studio import cli

pytest.importorskip("onnxruntime")


@pytest.mark.slow
@pytest.mark.parametrize("backend", [None, "onnx"])
def test_onnx_backend_end_to_end(
    backend, plugin_manager, analytic_nifti, analytic_phantom, tmp_path_factory, tmp_path, capsys
):
    """Without --backend the default engine runs (openvino when installed, else onnx) and says so."""
    pytest.importorskip("torch")  # building the tiny model trains it
    from helpers.tiny_model import get_tiny_model

    from liverseg_studio.core.modelcard import read_card

    try:
        model = get_tiny_model(tmp_path_factory)
    except Exception as exc:  # noqa: BLE001 - the shared helper is tested (and fails loudly) elsewhere
        pytest.skip(f"the shared tiny test model could not be built: {type(exc).__name__}: {exc}")
    card = read_card(model.model_dir)
    # the onnx backend runs model.int8.onnx when the card lists it, else model.onnx
    kind = "onnx_int8" if "onnx_int8" in card.files else "onnx"
    assert kind in card.files, f"the tiny model has no ONNX export: {sorted(card.files)}"
    out = tmp_path / "out"
    extra = ["--backend", backend] if backend else []
    rc = cli.main(
        ["segment", str(analytic_nifti), "--out", str(out), "--model", str(model.model_dir), "--threads", "1", *extra]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "slices/s" in captured.out
    report = json.loads((out / "abdomen_report.json").read_text())
    expected = backend or plugin_manager.backends.default_name()
    assert expected in ("onnx", "openvino")
    assert report["model"]["backend"] == expected
    assert f"engine: {expected} (" in captured.err and "model.int8.onnx" in captured.err
    assert report["model"]["name"] == card.name and report["model"]["version"] == card.version
    assert report["model"]["sha256"] == card.files[kind]["sha256"]
    assert report["model"]["file"] == card.files[kind]["path"]
    mask = np.asarray(nib.load(str(out / "abdomen_mask.nii.gz")).dataobj).T
    assert mask.shape == analytic_phantom.shape and set(np.unique(mask)) <= {0, 1, 2}
    truth = analytic_phantom.labels >= 1
    pred = mask >= 1
    dice = 2 * np.count_nonzero(truth & pred) / (np.count_nonzero(truth) + np.count_nonzero(pred))
    print(f"\ntiny model liver Dice on the analytic phantom: {dice:.3f}; {report['throughput_slices_per_s']} slices/s")
    assert report["liver_voxels"] == int(np.count_nonzero(pred))
