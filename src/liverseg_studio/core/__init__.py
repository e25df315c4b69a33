"""Pure numpy/pydicom/nibabel code: volumes, windowing, metrics, post-processing.

Nothing under ``liverseg_studio.core`` may import Qt, torch or onnxruntime
(enforced by import-linter and by ``tests/core/test_core_imports.py``).
"""

from liverseg_studio.core.errors import BackendError, LiversegError, LoaderError
from liverseg_studio.core.volume import Intensity, Label, LabelMap, Volume

__all__ = [
    "BackendError",
    "Intensity",
    "Label",
    "LabelMap",
    "LiversegError",
    "LoaderError",
    "Volume",
]
