"""Memory of the streaming path end to end on a lazy volume: the NIfTI mask is written from the uint8
labels without a full-size copy, and segmenting a lazy NIfTI reads each slice once (issue 17)."""

from __future__ import annotations

import tracemalloc

import nibabel as nib
import numpy as np
from segment_helpers import TruthBackend, make_phantom

from liverseg_studio.core.slices import ArraySource
from liverseg_studio.core.volume import Volume
from liverseg_studio.segment import exporters as ex
from liverseg_studio.segment import segment_volume


def _lazy_phantom(shape=(64, 64, 72)):
    ph = make_phantom(shape, (2.0, 0.8, 0.8))
    src = ArraySource(ph.hu.astype(np.float32))
    return ph, src, Volume(src, ph.affine, source="/data/big.nii.gz", loader="nifti")


def test_lazy_volume_is_read_once_and_gives_the_in_memory_result():
    ph, src, lazy = _lazy_phantom()
    got = segment_volume(lazy, TruthBackend())
    ref = segment_volume(lazy.with_array(ph.hu.astype(np.float32)), TruthBackend())
    np.testing.assert_array_equal(got.labels, ref.labels)
    assert got.stats == ref.stats and got.postprocess_report == ref.postprocess_report
    assert src.slices_read == lazy.n_slices  # the backend streamed it once, nothing read it whole


def test_nifti_mask_written_without_a_full_size_copy(tmp_path):
    _, _, lazy = _lazy_phantom((160, 128, 128))  # zlib state (~0.3 MB) is small beside 2.6 MB
    result = segment_volume(lazy, TruthBackend())
    tracemalloc.start()
    ex.write_nifti_mask(result, tmp_path / "m.nii.gz")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.25 * result.labels.nbytes, f"peak {peak} bytes for {result.labels.nbytes} bytes of labels"
    back = nib.load(str(tmp_path / "m.nii.gz"))
    np.testing.assert_array_equal(np.asarray(back.dataobj).T, result.labels)
