"""The shipped default model: integrity, and its card's numbers reproduced.

The card's LiTS case 117 numbers were measured with ``liverseg evaluate``; this
test re-measures them through the same backend API and must agree within 0.01.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liverseg_studio.core.modelcard import read_card, sha256_file

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "resources" / "models" / "default"

pytestmark = pytest.mark.skipif(not (DEFAULT / "model.json").is_file(), reason="no default model in this checkout")


def test_default_model_folder_is_small_and_listed():
    card = read_card(DEFAULT)
    total = sum(p.stat().st_size for p in DEFAULT.rglob("*") if p.is_file())
    assert total < 48 * 1024 * 1024, f"resources/models/default is {total / 1e6:.1f} MB (limit 48 MB)"
    assert "onnx_int8" in card.files
    assert card.licence and "non-commercial" in card.licence.lower()
    assert isinstance(card.training.get("imagenet_pretrained"), bool)  # the card says whether ImageNet weights were used


def test_default_model_loads_through_onnx_backend_and_sha256_matches_card():
    from liverseg_studio.plugins.manager import PluginManager

    card = read_card(DEFAULT)
    entry = card.files["onnx_int8"]
    assert sha256_file(DEFAULT / entry["path"]) == entry["sha256"]
    backend = PluginManager().load_entrypoints().backends.create("onnx")
    backend.load(DEFAULT, threads=2)  # verifies the sha256 against the card itself
    assert Path(backend.model_path).name == entry["path"]


def test_default_model_refuses_a_tampered_copy(tmp_path):
    import shutil

    from liverseg_studio.core.errors import BackendError
    from liverseg_studio.plugins.manager import PluginManager

    copy = tmp_path / "model"
    shutil.copytree(DEFAULT, copy)
    f = copy / read_card(copy).files["onnx_int8"]["path"]
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    backend = PluginManager().load_entrypoints().backends.create("onnx")
    with pytest.raises(BackendError, match="sha256"):
        backend.load(copy, threads=2)


@pytest.mark.slow
def test_case_117_numbers_reproduce_the_card():
    from liverseg_studio.core.metrics import dice
    from liverseg_studio.plugins.manager import PluginManager
    from liverseg_studio.sample import sample_case
    from liverseg_studio.segment.pipeline import segment_volume

    case = sample_case()
    if case is None or case.labels is None:
        pytest.skip("sample case (liver-ct-segmentation-package) not installed")
    card = read_card(DEFAULT)
    expected = card.metrics["lits_case_117"]
    pm = PluginManager().load_entrypoints()
    volume = pm.loaders.load(case.image)
    truth = np.asarray(pm.loaders.load(case.labels).array).astype(np.uint8)
    backend = pm.backends.create("onnx")
    backend.load(DEFAULT, threads=2)
    result = segment_volume(volume, backend)
    liver = dice(result.labels >= 1, truth >= 1)
    tumour = dice(result.labels == 2, truth == 2)
    print(f"case 117: liver Dice {liver:.4f} (card {expected['liver_dice']}), tumour {tumour:.4f} (card {expected['tumour_dice']})")
    assert liver == pytest.approx(expected["liver_dice"], abs=0.01)
    assert tumour == pytest.approx(expected["tumour_dice"], abs=0.01)
