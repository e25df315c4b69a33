"""The liver prior: merged liver-or-tumour pixels of parenchyma intensity become liver; lesions stay ambiguous."""

from __future__ import annotations

import numpy as np

from liverseg_studio.training.data import PARTIAL, LiverPrior, liver_prior


def _slice(lesion_hu: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:128, :128]
    liver = (yy - 64) ** 2 / 40**2 + (xx - 64) ** 2 / 50**2 <= 1
    lesion = (yy - 60) ** 2 + (xx - 70) ** 2 <= 10**2
    hu = np.full((128, 128), -80.0, np.float32)
    hu[liver] = 110.0
    hu[lesion] = lesion_hu
    hu += rng.normal(0, 8, hu.shape).astype(np.float32)
    labels = np.where(liver, PARTIAL, 0).astype(np.uint8)
    return hu, labels, lesion


def test_hypodense_lesion_stays_ambiguous_and_parenchyma_becomes_liver() -> None:
    hu, labels, lesion = _slice(lesion_hu=80.0)
    out = liver_prior(hu, labels)
    assert set(np.unique(out)) <= {0, 1, PARTIAL}
    assert (out[lesion] == PARTIAL).all()  # 30 HU darker: never taught as liver
    from scipy import ndimage as ndi

    liver = labels == PARTIAL
    # parenchyma away from the lesion and the liver's edge (smoothing + margin) is liver
    inner = ndi.binary_erosion(liver, iterations=6) & ~ndi.binary_dilation(lesion, iterations=6)
    assert (out[inner] == 1).mean() > 0.98
    # near the edge and the lesion the margin keeps pixels ambiguous
    assert 0.5 < (out[liver & ~lesion] == 1).mean() < 1.0
    assert (out[labels == 0] == 0).all()


def test_isodense_slice_is_all_liver_and_small_masks_untouched() -> None:
    from scipy import ndimage as ndi

    hu, labels, _ = _slice(lesion_hu=110.0)
    out = liver_prior(hu, labels)
    # all of it but the edge, where smoothing mixes in the fat around the liver
    assert (out[ndi.binary_erosion(labels == PARTIAL, iterations=6)] == 1).all()
    tiny = np.zeros_like(labels)
    tiny[10:15, 10:15] = PARTIAL
    assert (liver_prior(hu, tiny, LiverPrior(min_pixels=200)) == tiny).all()


def test_real_labels_are_never_changed() -> None:
    hu, labels, lesion = _slice(lesion_hu=80.0)
    real = np.where(labels == PARTIAL, 1, 0).astype(np.uint8)
    real[lesion] = 2
    assert (liver_prior(hu, real) == real).all()
