"""Helpers of the segmentation tests: a ground-truth backend plugin and a phantom
with analytically known volumes (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import numpy as np
from helpers.phantom import (  # noqa: F401  (re-exported for the segment tests)
    LIVER_HU,
    TUMOUR_HU,
    Phantom,
    make_phantom,
    phantom_affine,
    write_ct_series,
    write_nifti,
)

from liverseg_studio.plugins import hookimpl

TRUTH_BACKEND = "truth"

#: Geometry of the analytic phantom: (z, y, x) and mm.  On this grid the
#: voxelised ellipsoid and sphere are within 0.1 % / 0.3 % of their formulas.
SHAPE = (40, 128, 128)
SPACING = (2.0, 0.9, 0.9)


def analytic_volumes_ml(shape=SHAPE, spacing=SPACING) -> tuple[float, float]:
    """Liver (ellipsoid, tumour included) and tumour (sphere) volumes of ``make_phantom`` in mL.

    ``make_phantom`` draws the liver as the ellipsoid with normalised semi-axes
    (0.36, 0.25, 0.2) of (z, y, x) and the tumour as a sphere of radius
    0.08 * ny * dy mm at the same centre (inside the liver).
    """
    nz, ny, nx = shape
    dz, dy, dx = spacing
    liver = 4.0 / 3.0 * np.pi * (0.36 * nz * dz) * (0.25 * ny * dy) * (0.2 * nx * dx)
    r = 0.08 * ny * dy
    tumour = 4.0 / 3.0 * np.pi * r**3
    return liver / 1000.0, tumour / 1000.0


def tumour_diameter_mm(shape=SHAPE, spacing=SPACING) -> float:
    return 2.0 * 0.08 * shape[1] * spacing[1]


def oblique_affine(spacing=SPACING, degrees: float = 20.0) -> np.ndarray:
    """A RAS affine rotated about z (non-identity, non-diagonal), spacing (z, y, x)."""
    a = phantom_affine(spacing, origin=(150.0, 110.0, -420.0))
    t = np.deg2rad(degrees)
    rot = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    a[:3, :3] = rot @ a[:3, :3]
    return a


class TruthBackend:
    """Returns the phantom's ground truth: it labels voxels by their exact HU.

    The phantom is noise-free with integer HU, so liver (60 HU) and tumour
    (20 HU) are recovered exactly from any lossless file format.  Progress is
    reported in batches of 4 slices and cancellation is polled per batch.
    """

    name = TRUTH_BACKEND
    batch = 4

    def __init__(self) -> None:
        self.loaded_with: tuple | None = None
        self.card = {
            "name": "truth-model",
            "version": "9.9.9",
            "files": {"onnx_int8": {"path": "model.int8.onnx", "sha256": "ab" * 32}},
        }
        self.calls = 0

    def load(self, model_dir, *, threads=None) -> None:
        self.loaded_with = (model_dir, threads)

    def predict(self, volume, *, progress=None, is_cancelled=None):
        from liverseg_studio.backends.base import Prediction
        from liverseg_studio.core.errors import CancelledError

        self.calls += 1
        n = volume.n_slices
        labels = np.zeros(volume.shape, dtype=np.uint8)
        for start in range(0, n, self.batch):
            if is_cancelled is not None and is_cancelled():
                raise CancelledError("cancelled")
            stop = min(n, start + self.batch)
            hu = np.stack([volume.hu_slice(k) for k in range(start, stop)])
            labels[start:stop][hu == LIVER_HU] = 1
            labels[start:stop][hu == TUMOUR_HU] = 2
            if progress is not None:
                progress(stop, n)
        return Prediction(labels=labels, timings={"preprocess": 0.0})


class TruthPlugin:
    """A plugin object registering :class:`TruthBackend` through the hook."""

    @hookimpl
    def liverseg_register_backends(self, registry) -> None:
        from liverseg_studio.plugins.registry import BackendSpec

        registry.add(BackendSpec(name=TRUTH_BACKEND, factory=TruthBackend, description="test", needs_model=False))
