"""model.json: round trip, sha256 verification, clear errors (core: no torch)."""

from __future__ import annotations

import json

import pytest

from liverseg_studio.core.errors import BackendError
from liverseg_studio.core.modelcard import (
    ModelCard,
    read_card,
    sha256_file,
    verify_file,
    verify_files,
    write_card,
)
from liverseg_studio.core.preprocess import PreprocessSpec


def test_round_trip_keeps_fields_and_unknown_keys(tmp_path):
    (tmp_path / "model.int8.onnx").write_bytes(b"weights")
    card = ModelCard(
        name="m", version="1.2.3", input_size=128, preprocessing=PreprocessSpec(clamp_hu=(-100.0, 300.0)),
        training={"imagenet_pretrained": True, "data": [{"name": "LiTS", "licence": "CC BY-NC-SA 4.0"}]},
        metrics={"dice_liver": 0.95}, licence="CC BY-NC-SA 4.0", extra={"future_key": [1, 2]},
    )
    entry = card.record_file("onnx_int8", tmp_path)
    assert entry == {"path": "model.int8.onnx", "sha256": sha256_file(tmp_path / "model.int8.onnx"), "bytes": 7}
    write_card(tmp_path, card)
    data = json.loads((tmp_path / "model.json").read_text())
    assert data["architecture"]["encoder"] == "resnet34" and data["preprocessing"]["clamp_hu"] == [-100.0, 300.0]
    back = read_card(tmp_path)
    assert back.to_json() == card.to_json()
    assert back.imagenet_pretrained is True and back.extra["future_key"] == [1, 2]
    assert verify_files(tmp_path) == [tmp_path / "model.int8.onnx"]


def test_mismatch_names_file_and_both_hashes(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"abc")
    card = ModelCard()
    card.record_file("onnx", tmp_path)
    write_card(tmp_path, card)
    (tmp_path / "model.onnx").write_bytes(b"abd")
    with pytest.raises(BackendError) as err:
        verify_files(tmp_path)
    msg = str(err.value)
    assert "model.onnx" in msg and card.files["onnx"]["sha256"] in msg and sha256_file(tmp_path / "model.onnx") in msg


def test_missing_file_or_hash(tmp_path):
    card = ModelCard(files={"onnx": {"path": "model.onnx"}})
    with pytest.raises(BackendError, match="missing"):
        verify_file(tmp_path, "onnx", card)
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(BackendError, match="lists no sha256"):
        verify_file(tmp_path, "onnx", card)


@pytest.mark.parametrize(
    "text, match",
    [
        ("[1, 2]", "JSON object"),
        ('{"input_size": 100}', "multiple of 32"),
        ('{"files": {"onnx": {"path": "../evil.onnx"}}}', "inside the model folder"),
        ('{"files": {"onnx": {"path": "/etc/passwd"}}}', "inside the model folder"),
        ('{"classes": ["a", "b"]}', "3 classes"),
        ("{oops", "not valid JSON"),
    ],
)
def test_bad_cards_give_backend_errors(tmp_path, text, match):
    (tmp_path / "model.json").write_text(text)
    with pytest.raises(BackendError, match=match):
        read_card(tmp_path)


def test_missing_card_and_folder(tmp_path):
    with pytest.raises(BackendError, match="model card is missing"):
        read_card(tmp_path)
    with pytest.raises(BackendError, match="does not exist"):
        read_card(tmp_path / "nope")
