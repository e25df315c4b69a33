"""Masks for editing without a model, and the edited result the exporters write (no Qt).

* :func:`load_mask` reads an existing label map onto the open image: a NIfTI
  mask with the image's exact shape and affine, a DICOM SEG that references
  the open DICOM series, or a 2D mask PNG (values 0/1/2) of a single-slice image.
* :func:`mask_result` wraps such a mask as a
  :class:`~liverseg_studio.segment.pipeline.SegmentationResult` (backend
  ``mask file``), so the viewer, the results panel and the exporters treat it
  like a model's output.
* :func:`edited_result` is the result with the reader's corrections: the
  edited labels, fresh volumetry and ``edit`` = who produced the mask and how
  many voxels the reader changed per label (the report marks it ``edited``,
  the DICOM SEG calls it semi-automatic).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.volume import Label, Volume
from liverseg_studio.core.volumetry import compute_stats
from liverseg_studio.segment.pipeline import ModelInfo, SegmentationResult

#: What the open-mask dialog offers.
MASK_FILTER = (
    "Masks (*.nii.gz *.nii *.dcm *.png);;NIfTI (*.nii.gz *.nii);;DICOM SEG (*.dcm);;PNG mask (*.png);;All files (*)"
)
MASK_BACKEND = "mask file"
#: SNOMED CT codes that tell a SEG segment is the liver.
_LIVER_CODES = {"10200004"}


def _check_values(path: Path, labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.size and (arr.min() < 0 or arr.max() > int(Label.TUMOUR)):
        found = sorted(int(v) for v in np.unique(arr)[:8])
        raise LoaderError(path, f"a mask holds 0 (background), 1 (liver) and 2 (tumour); this one holds {found}")
    if not np.all(np.asarray(arr) == np.rint(arr)):
        raise LoaderError(path, "a mask holds whole numbers 0, 1 and 2; this one has fractions")
    return arr.astype(np.uint8)


def load_mask(path: str | Path, volume: Volume) -> np.ndarray:
    """The label map (uint8 z, y, x) in ``path``, checked against ``volume``'s geometry.

    Raises :class:`~liverseg_studio.core.errors.LoaderError` with the reason
    (wrong shape, another affine, another series, values outside 0..2 ...).
    """
    p = Path(path)
    if not p.is_file():
        raise LoaderError(p, "no such file")
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return _load_nifti(p, volume)
    if name.endswith(".png"):
        return _load_png(p, volume)
    return _load_seg(p, volume)


def _load_nifti(p: Path, volume: Volume) -> np.ndarray:
    import nibabel as nib

    try:
        img = nib.load(str(p))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - a broken file is one clear line
        raise LoaderError(p, f"cannot read it as NIfTI: {exc}") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    labels = np.ascontiguousarray(data.T)
    if labels.shape != volume.shape:
        raise LoaderError(
            p, f"the mask is {labels.shape[::-1]} voxels (x, y, z) but the image is {volume.shape[::-1]}"
        )
    if volume.spacing_known:
        a, b = np.asarray(img.affine, dtype=np.float64), volume.affine
        tol = 1e-3 * max(1.0, float(np.abs(b[:3, :3]).max()))
        if not (np.allclose(a[:3, :3], b[:3, :3], atol=tol) and np.allclose(a[:3, 3], b[:3, 3], atol=0.01)):
            raise LoaderError(p, "the mask's affine (position, spacing or orientation) differs from the image's")
    return _check_values(p, labels)


def _load_png(p: Path, volume: Volume) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(p) as im:
            arr = np.asarray(im)
    except Exception as exc:  # noqa: BLE001
        raise LoaderError(p, f"cannot read it as PNG: {exc}") from exc
    if arr.ndim == 3:
        grey = np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])
        if arr.shape[2] >= 3 and not grey:
            raise LoaderError(p, "a mask PNG is grey with values 0/1/2 (this one is colour: an overlay?)")
        arr = arr[..., 0]
    if volume.n_slices != 1:
        raise LoaderError(p, "a PNG mask is for single-slice images; use a NIfTI mask or a DICOM SEG for volumes")
    if arr.shape != volume.shape[1:]:
        raise LoaderError(p, f"the mask is {arr.shape[1]} x {arr.shape[0]} pixels but the image is "
                          f"{volume.shape[2]} x {volume.shape[1]}")
    return _check_values(p, arr[None])


def _segment_label(desc: Any) -> int:
    """1 for a liver segment, 2 for anything else (a lesion)."""
    try:
        code = str(desc.SegmentedPropertyTypeCodeSequence[0].CodeValue)
    except Exception:  # noqa: BLE001
        code = ""
    label = str(getattr(desc, "SegmentLabel", "")).strip().lower()
    return int(Label.LIVER) if code in _LIVER_CODES or label == "liver" else int(Label.TUMOUR)


def _load_seg(p: Path, volume: Volume) -> np.ndarray:
    try:
        import highdicom as hd

        seg = hd.seg.segread(str(p))
    except Exception as exc:  # noqa: BLE001
        raise LoaderError(p, f"cannot read it as a DICOM SEG: {exc}") from exc
    series = str(volume.meta.get("series_uid") or volume.meta.get("SeriesInstanceUID") or "")
    uids = [str(u) for u in (volume.meta.get("sop_instance_uids") or [])]
    if not series or len(uids) != volume.n_slices or not all(uids):
        raise LoaderError(p, "a DICOM SEG can only be opened onto the DICOM series it references")
    referenced = {str(s.SeriesInstanceUID) for s in getattr(seg, "ReferencedSeriesSequence", [])}
    if series not in referenced:
        raise LoaderError(p, "this DICOM SEG references another series than the open image")
    numbers = list(seg.get_segment_numbers())
    try:
        planes = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids,
            segment_numbers=numbers,
            combine_segments=False,
            ignore_spatial_locations=True,
            skip_overlap_checks=True,
        )
    except Exception as exc:  # noqa: BLE001
        raise LoaderError(p, f"cannot match the SEG's frames to the open series: {exc}") from exc
    labels = np.zeros(volume.shape, dtype=np.uint8)
    for i, n in enumerate(numbers):
        lab = _segment_label(seg.get_segment_description(n))
        np.maximum(labels, np.where(planes[..., i] > 0, lab, 0).astype(np.uint8), out=labels)
    return labels


def mask_result(volume: Volume, labels: np.ndarray, path: str | Path) -> SegmentationResult:
    """A result holding a mask read from ``path`` (no model ran)."""
    arr = np.asarray(labels, dtype=np.uint8)
    return SegmentationResult(
        volume=volume,
        labels=arr,
        raw_labels=arr,
        stats=compute_stats(arr, volume),
        timings={},
        backend=MASK_BACKEND,
        model=ModelInfo(name=f"mask {Path(path).name}", model_dir=str(path)),
        postprocessed=False,
    )


def edit_info(result: SegmentationResult, changed: Mapping[str, Mapping[str, int]], steps: int) -> dict[str, Any]:
    """What the report says about the reader's corrections."""
    if result.backend == MASK_BACKEND:
        produced = {"mask_file": result.model.model_dir}
    else:
        produced = {
            "backend": result.backend,
            "model": result.model.name,
            "version": result.model.version,
            "sha256": result.model.sha256,
        }
    return {
        "edited": True,
        "by": "reader, in LiverSeg Studio",
        "edited_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "produced_by": produced,
        "changed_voxels": {k: dict(v) for k, v in changed.items()},
        "undo_steps": int(steps),
    }


def edited_result(
    result: SegmentationResult, labels: np.ndarray, changed: Mapping[str, Mapping[str, int]], steps: int
) -> SegmentationResult:
    """``result`` with the edited ``labels``, their volumetry and the edit record."""
    return dataclasses.replace(
        result,
        labels=labels,
        stats=compute_stats(labels, result.volume),
        edit=edit_info(result, changed, steps),
    )
