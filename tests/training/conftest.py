"""Fixtures for export tests: the session's tiny real-architecture model (``tests/helpers/tiny_model.py``)."""

from __future__ import annotations

import pytest

from helpers.tiny_model import TinyModel, get_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """A trained-for-seconds ResNet-34 U-Net (input 64) with safetensors, ONNX fp32 and int8 files.

    Read-only: tests that change files copy them first (``copy_model_dir``).
    """
    return get_tiny_model(tmp_path_factory)
