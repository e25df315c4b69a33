"""Streaming (lazy loaders, slab-wise post-processing) gives the same masks, bit for bit, as the
in-memory path on real CT: 3D-IRCADb 1.01 (DICOM series) and 1.07 (NIfTI) from ``../shared/data/volumes``
and LiTS case 117 (MRC, the sample case).

The reference is the previous implementation: the voxels read whole as the old loaders read them
(nibabel ``get_fdata(float32).T``, every DICOM file decoded, ``mrcfile`` data ``.T``), then
``backend.predict`` on that in-memory volume, ``postprocess_labels`` on the whole label volume and
``compute_stats``.  Whatever default model is installed runs (no pinned numbers), on a window of
slices through the liver to keep the test cheap; the voxel comparison covers every slice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liverseg_studio.core.postprocess import postprocess_labels
from liverseg_studio.core.volume import Volume
from liverseg_studio.core.volumetry import compute_stats

VOLUMES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "volumes"
#: Slices segmented per case (the liver's middle).
WINDOW = 8


def _case117():
    from liverseg_studio.sample import sample_case

    return sample_case()


def _cases() -> list[tuple[str, Path | None, str]]:
    case = _case117()
    return [
        ("ircad-1.01 DICOM series", VOLUMES / "ircad-1.01" / "ct", "dicom"),
        ("ircad-1.07 NIfTI", VOLUMES / "ircad-1.07" / "ct.nii.gz", "nifti"),
        ("LiTS case 117 MRC", case.image if case is not None else None, "mrc"),
    ]


def _reference_voxels(path: Path, kind: str, volume: Volume) -> np.ndarray:
    """The whole volume as the previous (eager) loaders read it: float32 (z, y, x)."""
    if kind == "nifti":
        import nibabel as nib

        return np.ascontiguousarray(np.asarray(nib.load(str(path)).get_fdata(dtype=np.float32)).T)
    if kind == "mrc":
        import mrcfile

        with mrcfile.open(str(path), mode="r", permissive=True) as mrc:
            return np.ascontiguousarray(np.array(mrc.data, dtype=np.float32).T)
    import pydicom

    from liverseg_studio.loaders import dicom as dcm

    z, rows, cols = volume.shape
    out = np.empty((z, rows, cols), np.float32)
    for k, f in enumerate(volume.meta["files"]):
        out[k] = dcm.decode_hu(Path(f), pydicom.dcmread(f), rows, cols)
    return out


def _load(path: Path | None, name: str) -> Volume:
    if path is None or not path.exists():
        pytest.skip(f"{name}: data not present ({path}); it lives in ../shared/data, never in the repository")
    from liverseg_studio.plugins.manager import get_plugin_manager

    volume = get_plugin_manager().loaders.load(path)
    assert volume.is_lazy, "the loader should hand out slices lazily"
    return volume


@pytest.fixture(scope="module", params=_cases(), ids=["ircad-1.01", "ircad-1.07", "case117"])
def case(request):
    """(lazy volume, reference voxels) of one case, read once for both tests."""
    name, path, kind = request.param
    volume = _load(path, name)
    yield volume, _reference_voxels(path, kind, volume)
    volume.close()


def test_lazy_voxels_equal_the_eager_read(case):
    volume, ref = case
    assert volume.shape == ref.shape
    got = np.asarray(volume.array)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))  # bit for bit
    for k in (0, ref.shape[0] // 2, ref.shape[0] - 1):
        np.testing.assert_array_equal(volume.hu_slice(k), ref[k])
    studio = volume.in_memory()  # what the studio keeps: int16 when exact
    assert not studio.is_lazy
    np.testing.assert_array_equal(np.asarray(studio.array, dtype=np.float32), ref)


@pytest.fixture(scope="module")
def default_backend():
    from liverseg_studio.backends.common import default_model_dir
    from liverseg_studio.plugins.manager import get_plugin_manager

    model = default_model_dir()
    if model is None:
        pytest.skip("no default model installed")
    backend = get_plugin_manager().backends.create("onnx")
    backend.load(model, threads=1)
    return backend


def _liver_window(ref: np.ndarray, n: int) -> tuple[int, int]:
    """``n`` slices around the slice with the most soft tissue in the liver's HU range."""
    soft = [np.count_nonzero((ref[k] > 40) & (ref[k] < 200)) for k in range(ref.shape[0])]
    mid = int(np.argmax(soft))
    z0 = max(0, min(ref.shape[0] - n, mid - n // 2))
    return z0, min(ref.shape[0], z0 + n)


def test_streaming_segmentation_equals_in_memory(case, default_backend):
    from liverseg_studio.segment.pipeline import segment_volume

    volume, ref = case
    z0, z1 = _liver_window(ref, WINDOW)
    lazy = volume.sub_volume(z0, z1)
    assert lazy.is_lazy
    eager = lazy.with_array(ref[z0:z1].copy())

    got = segment_volume(lazy, default_backend)
    pred = default_backend.predict(eager)
    spacing = eager.spacing if eager.spacing_known else None
    labels, report = postprocess_labels(pred.labels, spacing, return_report=True)
    stats = compute_stats(labels, eager)

    np.testing.assert_array_equal(got.labels, labels)
    np.testing.assert_array_equal(np.asarray(got.raw_labels), pred.labels)
    assert got.postprocess_report == report
    assert got.stats == stats
