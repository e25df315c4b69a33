"""Exporters of a :class:`~liverseg_studio.segment.pipeline.SegmentationResult`.

Formats (``--export``), named after the files they write, each written
atomically (:mod:`liverseg_studio.core.io`) and never over an existing file
unless ``overwrite``:

``mask``
    volumes: ``<name>_mask.nii.gz``, uint8, exactly the input's shape and
    affine (``Nifti1Image(labels.T, volume.affine)``), NIfTI intent "label",
    label names in a JSON NIfTI extension (code 6, comment) and in
    ``descrip``.  2D inputs (one slice): ``<name>_mask.png`` (values 0/1/2,
    the input's size); a 2D input with a known geometry (a single DICOM
    file) gets the ``.nii.gz`` too.
``overlay``
    2D inputs: ``<name>_overlay.png``, the slice with the labels coloured.
``montage``
    ``<name>_montage.png``: the slices with the most liver, overlay coloured,
    with a legend.
``seg``
    DICOM inputs only: ``<name>_seg.dcm``, a DICOM Segmentation (highdicom)
    referencing the source images listed in ``Volume.meta["files"]``; messy
    source headers are mended first (:mod:`.seg_sources`) and the report says how.
``report``
    ``<name>_report.json``.

The old names (``nifti``, ``png``, ``dicom-seg``, ``json``) are accepted with a
deprecation note (:data:`LEGACY_FORMATS`).

:func:`planned_outputs` tells which files an export will write (to check for
clashes before the long work); :func:`export_result` attempts every requested
format, writes the ones that succeed and reports each failure
(:class:`ExportError`); an interrupt leaves none of this input's files behind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import importlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from liverseg_studio import __version__
from liverseg_studio.core.colours import LABEL_COLOURS, LABEL_NAMES, overlay_rgb
from liverseg_studio.core.errors import LiversegError
from liverseg_studio.core.io import atomic_output, check_can_write, os_error_reason
from liverseg_studio.core.volume import Intensity, Label, Volume
from liverseg_studio.segment.pipeline import SegmentationResult
from liverseg_studio.segment.export_nifti import nifti_mask_image, save_nifti_mask, write_nifti_mask  # noqa: F401
from liverseg_studio.segment import seg_multiframe

SOFTWARE_NAME = "LiverSeg Studio"
FORMATS = ("mask", "overlay", "montage", "seg", "report")
DEFAULT_FORMATS = FORMATS
#: Old ``--export`` names -> the new one (accepted with a deprecation note).
LEGACY_FORMATS = {
    "nifti": "mask",
    "png": "montage",
    "dicom-seg": "seg",
    "dicomseg": "seg",
    "dicom": "seg",
    "json": "report",
}
#: Which format each planned file belongs to.
FILE_FORMAT = {
    "mask_nifti": "mask",
    "mask_png": "mask",
    "overlay_png": "overlay",
    "montage": "montage",
    "dicom_seg": "seg",
    "report": "report",
}
#: Formats written by modules of their own: name -> module with skipped(), planned(), write() (file key = format)
EXTRA_FORMATS = dict.fromkeys(("mesh", "mesh-stl", "mesh-obj", "mesh-ply", "plan"), f"{__package__}.export_mesh")


class ExportError(LiversegError):
    """Some requested formats failed; the others were written.

    ``failures``: format -> reason (one line each); ``written``: file key -> path.
    """

    def __init__(self, failures: Mapping[str, str], written: Mapping[str, Path]) -> None:
        self.failures = dict(failures)
        self.written = dict(written)
        super().__init__("; ".join(f"{fmt} not written: {why}" for fmt, why in self.failures.items()))

#: What the NIfTI extension / sidecar records about the labels.
LABEL_TABLE = {str(int(lab)): LABEL_NAMES[lab] for lab in Label}

# SNOMED CT codes of the DICOM SEG segments (as the issue and DICOM CID 7150/7151 use them)
_SEGMENTS = (
    # number, label, (category code, meaning), (type code, meaning)
    (int(Label.LIVER), "Liver", ("123037004", "Anatomical Structure"), ("10200004", "Liver")),
    (
        int(Label.TUMOUR),
        "Liver tumour",
        ("49755003", "Morphologically Abnormal Structure"),
        ("108369006", "Neoplasm"),
    ),
)

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mrc.gz", ".mrc", ".map", ".dcm", ".dicom", ".ima", ".png", ".jpg", ".jpeg",
                   ".tif", ".tiff", ".bmp", ".gz")


# -- names ----------------------------------------------------------------------
def output_name(path: str | Path) -> str:
    """The ``<name>`` outputs are named after: the file name without its image suffix(es)."""
    name = Path(str(path).rstrip("/\\")).name or "input"
    lower = name.lower()
    for suffix in _IMAGE_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    name = re.sub(r"[^\w.\-]+", "_", name).strip("._") or "input"
    return name


def unique_names(paths: Sequence[str | Path]) -> list[str]:
    """:func:`output_name` of each path, with ``-2``, ``-3`` ... added where two would clash."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        base = output_name(p)
        key = base.lower()
        n = seen.get(key, 0) + 1
        seen[key] = n
        out.append(base if n == 1 else f"{base}-{n}")
    return out


#: Endings of the files :func:`export_result` writes (batch folders skip them as inputs).
OUTPUT_SUFFIXES = ("_mask.nii.gz", "_mask.png", "_overlay.png", "_montage.png", "_report.json", "_seg.dcm")


def looks_like_output(path: str | Path) -> bool:
    """Whether ``path`` is named like one of our outputs (``<name>_mask.nii.gz`` ...)."""
    name = Path(path).name.lower()
    return any(map(name.endswith, OUTPUT_SUFFIXES)) or name.endswith("_mesh") and Path(path, "surfaces.json").is_file()


def is_dicom(volume: Volume) -> bool:
    """Whether ``volume`` came from DICOM (a DICOM SEG can reference it)."""
    return "dicom" in (volume.loader or "").lower() or bool(volume.meta.get("SeriesInstanceUID")) and bool(
        volume.meta.get("files")
    )


def _writes_png_mask(volume: Volume) -> bool:
    return volume.is_2d


def _writes_nifti(volume: Volume) -> bool:
    return not volume.is_2d or volume.spacing_known


def normalise_formats(formats: str | Iterable[str] | None, *, notes: list[str] | None = None) -> tuple[str, ...]:
    """Parse ``"mask,report"`` (or a list) into known format names; raises LiversegError on unknown ones.

    Old names (``nifti``, ``png``, ``dicom-seg``, ``json``) map to the new ones; ``notes``
    (if given) receives one deprecation sentence per old name used.
    """
    if formats is None:
        return DEFAULT_FORMATS
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for item in items:
        f = item.strip().lower().replace("_", "-")
        if not f:
            continue
        if f in LEGACY_FORMATS:
            new = LEGACY_FORMATS[f]
            if notes is not None:
                extra = " (the slice overlay PNG is 'overlay')" if f == "nifti" else ""
                notes.append(f"export name {f!r} is deprecated: use {new!r}{extra}")
            f = new
        if f not in FORMATS and f not in EXTRA_FORMATS:
            raise LiversegError(f"unknown export format {item.strip()!r} (known: {', '.join(FORMATS)}, mesh, plan)")
        if f not in out:
            out.append(f)
    if not out:
        raise LiversegError(f"no export format given (known: {', '.join(FORMATS)})")
    return tuple(out)


def planned_outputs(volume: Volume, name: str, out_dir: str | Path, formats: Iterable[str]) -> dict[str, Path]:
    """The files :func:`export_result` will write for ``volume``: key -> path.

    Keys: ``mask_nifti``, ``mask_png``, ``overlay_png``, ``dicom_seg``, ``montage``, ``report``
    (:data:`FILE_FORMAT` gives each key's format).  ``seg`` is silently left out for
    non-DICOM inputs and ``overlay`` for volumes (see :func:`skipped_formats`).
    """
    out = Path(out_dir)
    fm = normalise_formats(list(formats))
    plan: dict[str, Path] = {}
    if "mask" in fm:
        if _writes_png_mask(volume):
            plan["mask_png"] = out / f"{name}_mask.png"
        if _writes_nifti(volume):
            plan["mask_nifti"] = out / f"{name}_mask.nii.gz"
    if "overlay" in fm and volume.is_2d:
        plan["overlay_png"] = out / f"{name}_overlay.png"
    if "seg" in fm and is_dicom(volume):
        plan["dicom_seg"] = out / f"{name}_seg.dcm"
    if "montage" in fm:
        plan["montage"] = out / f"{name}_montage.png"
    for f in (f for f in fm if f in EXTRA_FORMATS):
        plan.update(_extra(f).planned(volume, name, out, f))
    if "report" in fm:
        plan["report"] = out / f"{name}_report.json"
    return plan


def skipped_formats(volume: Volume, formats: Iterable[str]) -> dict[str, str]:
    """Requested formats that do not apply to ``volume``: format -> reason."""
    fm = normalise_formats(list(formats))
    skipped: dict[str, str] = {}
    if "overlay" in fm and not volume.is_2d:
        skipped["overlay"] = "a volume: the overlay PNG is for single slices (use montage)"
    if "seg" in fm and not is_dicom(volume):
        skipped["seg"] = "the input is not DICOM"
    skipped.update({f: why for f in fm if f in EXTRA_FORMATS and (why := _extra(f).skipped(volume, f))})
    return skipped


def _extra(fmt: str) -> Any:
    return importlib.import_module(EXTRA_FORMATS[fmt])


# -- display helpers ------------------------------------------------------------------
#: The abdominal window used for grey display of HU (W400 / L40).
DISPLAY_WINDOW_HU = (-160.0, 240.0)


def display_slice(volume: Volume, index: int) -> np.ndarray:
    """Slice ``index`` as uint8 for display: grey (y, x) or, for windowed RGB input, (y, x, 3)."""
    raw = volume.array[index]
    if volume.intensity is Intensity.WINDOWED_RGB:
        return np.asarray(raw, dtype=np.uint8)
    if volume.intensity is Intensity.DISPLAY8 and np.asarray(raw).dtype == np.uint8:
        return np.asarray(raw)
    lo, hi = DISPLAY_WINDOW_HU
    hu = volume.hu_slice(index)
    grey = (np.clip(hu, lo, hi) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.rint(grey).astype(np.uint8)


def radiological_transform(affine: np.ndarray) -> tuple[bool, bool, bool]:
    """How to show an axial slice (rows y, columns x) in radiological convention.

    Returns ``(transpose, flip_rows, flip_cols)`` so that, after them, columns
    run from the patient's right to left and rows from anterior to posterior.
    Applied to (y, x) arrays: transpose first, then the flips.
    """
    a = np.asarray(affine, dtype=np.float64)[:3, :2]  # world direction of the x (col) and y (row) index
    col_dir, row_dir = a[:, 0], a[:, 1]
    # which in-plane index runs mostly left-right (RAS x)?
    transpose = abs(row_dir[0]) > abs(col_dir[0])
    if transpose:
        col_dir, row_dir = row_dir, col_dir
    flip_cols = col_dir[0] > 0  # columns must go towards patient left = RAS -x
    flip_rows = row_dir[1] > 0  # rows must go towards posterior = RAS -y
    return bool(transpose), bool(flip_rows), bool(flip_cols)


def _orient(img: np.ndarray, how: tuple[bool, bool, bool]) -> np.ndarray:
    transpose, flip_rows, flip_cols = how
    if transpose:
        img = np.swapaxes(img, 0, 1)
    if flip_rows:
        img = img[::-1]
    if flip_cols:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


# -- writers --------------------------------------------------------------------
def _nifti_image(result: SegmentationResult) -> Any:
    return nifti_mask_image(result)  # segment.export_nifti: the input's header kept exactly


def _save_png(arr: np.ndarray, path: str | Path, overwrite: bool) -> Path:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(arr))
    with atomic_output(path, overwrite=overwrite) as tmp:
        im.save(tmp, format="PNG")
    return Path(path)


def write_png_mask(result: SegmentationResult, path: str | Path, *, overwrite: bool = False) -> Path:
    """2D inputs: ``<name>_mask.png``, 8-bit grey with values 0/1/2, the input's size."""
    if not result.volume.is_2d:
        raise LiversegError("a PNG mask is only written for 2D inputs (one slice)")
    return _save_png(np.asarray(result.labels[0], dtype=np.uint8), path, overwrite)


def write_png_overlay(result: SegmentationResult, path: str | Path, *, overwrite: bool = False) -> Path:
    """2D inputs: ``<name>_overlay.png``, the input with the labels coloured, the input's size."""
    if not result.volume.is_2d:
        raise LiversegError("a PNG overlay is only written for 2D inputs (one slice)")
    rgb = overlay_rgb(display_slice(result.volume, 0), result.labels[0])
    return _save_png(rgb, path, overwrite)


def montage_slices(labels: np.ndarray, n: int = 12) -> list[int]:
    """Up to ``n`` slice indices with the most liver, in slice order (the middle slice if none has liver)."""
    counts = np.array([np.count_nonzero(labels[k]) for k in range(labels.shape[0])])
    if not counts.any():
        return [labels.shape[0] // 2]
    order = np.argsort(-counts, kind="stable")
    chosen = [int(k) for k in order[:n] if counts[k] > 0]
    return sorted(chosen)


def montage_image(
    result: SegmentationResult, *, n: int = 12, tile: int = 256, columns: int = 4
) -> np.ndarray:
    """The montage as an RGB uint8 array (see :func:`write_montage`)."""
    from PIL import Image, ImageDraw, ImageFont

    vol = result.volume
    idx = montage_slices(result.labels, n)
    how = radiological_transform(vol.affine) if vol.spacing_known else (False, False, False)
    dz, dy, dx = vol.spacing if vol.spacing_known else (1.0, 1.0, 1.0)
    tiles = []
    for k in idx:
        rgb = overlay_rgb(display_slice(vol, k), result.labels[k])
        rgb = _orient(rgb, how)
        h, w = rgb.shape[:2]
        ph, pw = (dx, dy) if how[0] else (dy, dx)  # physical size of a pixel (rows, cols)
        aspect_h, aspect_w = h * ph, w * pw
        scale = tile / max(aspect_h, aspect_w)
        size = (max(1, int(round(aspect_w * scale))), max(1, int(round(aspect_h * scale))))
        resample = Image.Resampling.NEAREST if max(h, w) < tile else Image.Resampling.BILINEAR
        im = Image.fromarray(rgb).resize(size, resample)
        canvas = Image.new("RGB", (tile, tile), (0, 0, 0))
        canvas.paste(im, ((tile - size[0]) // 2, (tile - size[1]) // 2))
        draw = ImageDraw.Draw(canvas)
        draw.text((4, 4), f"slice {k}", fill=(255, 255, 0), font=ImageFont.load_default())
        tiles.append(canvas)
    cols = min(columns, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    legend_h = 56
    sheet = Image.new("RGB", (cols * tile, rows * tile + legend_h), (24, 24, 24))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * tile, (i // cols) * tile))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    y0 = rows * tile + 8
    x = 8
    st = result.stats
    for label, colour in LABEL_COLOURS.items():
        draw.rectangle([x, y0, x + 14, y0 + 14], fill=colour, outline=(255, 255, 255))
        if st.spacing_known:
            amount = f"{st.liver_ml:.1f} mL" if label is Label.LIVER else f"{st.tumour_ml:.1f} mL"
        else:
            amount = f"{st.liver_voxels} vx" if label is Label.LIVER else f"{st.tumour_voxels} vx"
        text = f"{LABEL_NAMES[label]} ({amount})"
        draw.text((x + 20, y0 + 1), text, fill=(255, 255, 255), font=font)
        x += 30 + int(draw.textlength(text, font=font)) + 16
    orient = "radiological view (patient right on the left)" if vol.spacing_known else "stored orientation"
    draw.text((8, y0 + 24), f"{Path(vol.source).name or 'input'} - {orient}", fill=(200, 200, 200), font=font)
    return np.asarray(sheet)


def write_montage(result: SegmentationResult, path: str | Path, *, overwrite: bool = False, n: int = 12) -> Path:
    """``<name>_montage.png``: the ``n`` slices with the most liver, overlay coloured, with a legend."""
    return _save_png(montage_image(result, n=n), path, overwrite)


# -- DICOM SEG ------------------------------------------------------------------------
def _source_files(volume: Volume) -> list[Path]:
    files = volume.meta.get("files")
    if not files:
        src = Path(volume.source) if volume.source else None
        if src is not None and src.is_file():
            return [src]
        raise LiversegError(f"{volume.source}: no DICOM source files recorded; cannot reference them in a DICOM SEG")
    return [Path(str(f)) for f in files]


def _frames_for_sources(volume: Volume, sources: list[Any]) -> list[int]:
    """The volume slice of each source image (frame), from its ImagePositionPatient and the volume affine."""
    if seg_multiframe.is_multiframe_source(sources):  # enhanced / legacy-converted CT: one plane per frame
        return seg_multiframe.slices_for_frames(volume, sources[0])
    if len(sources) == 1 and volume.n_slices == 1:
        return [0]  # one image: nothing to place
    inv = np.linalg.inv(volume.affine)
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    out = []
    for ds in sources:
        pos = getattr(ds, "ImagePositionPatient", None)
        if pos is None:
            raise LiversegError(f"{ds.filename}: no ImagePositionPatient; cannot place it in a DICOM SEG")
        ras = np.asarray([float(v) for v in pos]) * lps_to_ras
        x, y, z = (inv @ np.append(ras, 1.0))[:3]
        k = int(round(z))
        if abs(x) > 0.05 or abs(y) > 0.05 or abs(z - k) > 0.05 or not 0 <= k < volume.n_slices:
            raise LiversegError(
                f"{ds.filename}: source image position does not match the segmented volume's geometry"
            )
        out.append(k)
    return out


def dicom_seg_dataset(result: SegmentationResult, *, repairs: list[str] | None = None) -> Any:
    """A highdicom ``Segmentation`` of ``result`` referencing the source series.

    Real-world source headers are mended first (:mod:`.seg_sources`: empty character
    set, missing UIDs, no frame of reference ...); ``repairs`` (if given) receives one
    sentence per change, for the warning and the report.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    from liverseg_studio.segment.seg_sources import mend_sources

    vol = result.volume
    files = _source_files(vol)
    try:
        sources = [pydicom.dcmread(str(f), stop_before_pixels=True) for f in files]
    except Exception as exc:  # noqa: BLE001
        raise LiversegError(f"cannot re-read DICOM source files for the SEG: {exc}") from exc
    thickness = float(vol.spacing[0]) if vol.spacing_known and not vol.is_2d else None
    sources, mended = mend_sources(sources, slice_thickness_mm=thickness, label=str(vol.source))
    if repairs is not None:
        repairs.extend(mended)
    frames = _frames_for_sources(vol, sources)
    pixel = np.stack([np.asarray(result.labels[k], dtype=np.uint8) for k in frames])
    name = result.model.name or result.backend or "unknown model"
    algorithm = hd.AlgorithmIdentificationSequence(
        name=name[:64],
        family=codes.cid7162.ArtificialIntelligence,
        version=(result.model.version or "unknown")[:64],
        source=SOFTWARE_NAME,
    )
    descriptions = []
    for number, label, (cat, cat_meaning), (typ, typ_meaning) in _SEGMENTS:
        colour = LABEL_COLOURS[Label(number)]
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label,
                segmented_property_category=Code(cat, "SCT", cat_meaning),
                segmented_property_type=Code(typ, "SCT", typ_meaning),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC  # corrected by a reader
                if result.edit
                else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
                anatomic_regions=[Code("10200004", "SCT", "Liver")] if number == Label.TUMOUR else None,
                display_color=hd.color.CIELabColor.from_rgb(*colour)
                if hasattr(hd.color.CIELabColor, "from_rgb")
                else None,
            )
        )
    series_number = int(getattr(sources[0], "SeriesNumber", 0) or 0) + 1000
    try:
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixel,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=SOFTWARE_NAME,
            manufacturer_model_name=f"{name} {result.model.version}".strip()[:64],
            software_versions=__version__,
            device_serial_number="none",
            series_description="LiverSeg liver and tumour" + (" (edited)" if result.edit else ""),
            content_description=f"liver and liver tumour segmentation by {name}"[:64],
            content_label="LIVERSEG",
            omit_empty_frames=bool(np.any(pixel)),
        )
    except LiversegError:
        raise
    except Exception as exc:  # noqa: BLE001 - incomplete source headers etc.
        raise LiversegError(f"cannot make a DICOM SEG for {vol.source}: {type(exc).__name__}: {exc}") from exc
    return seg


def write_dicom_seg(
    result: SegmentationResult, path: str | Path, *, overwrite: bool = False, repairs: list[str] | None = None
) -> Path:
    """``<name>_seg.dcm`` (DICOM inputs only); ``repairs`` receives what was mended in the source headers."""
    if not is_dicom(result.volume):
        raise LiversegError(f"{result.volume.source}: DICOM SEG needs a DICOM input")
    seg = dicom_seg_dataset(result, repairs=repairs)
    with atomic_output(path, overwrite=overwrite) as tmp:
        seg.save_as(str(tmp), enforce_file_format=True)
    return Path(path)


# -- report -----------------------------------------------------------------------
def report_dict(
    result: SegmentationResult,
    *,
    input_path: str | Path | None = None,
    load_seconds: float | None = None,
    outputs: Mapping[str, Path] | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The content of ``<name>_report.json``."""
    vol = result.volume
    st = result.stats
    t = result.timings
    meta = {
        k: v
        for k, v in vol.meta.items()
        if k != "files" and isinstance(v, (str, int, float, bool)) and not isinstance(v, bytes)
    }
    report: dict[str, Any] = {
        "software": {"name": SOFTWARE_NAME, "version": __version__},
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "input": {
            "path": str(input_path if input_path is not None else vol.source),
            "loader": vol.loader,
            "shape_zyx": list(vol.shape),
            "spacing_mm_zyx": [round(s, 6) for s in vol.spacing] if vol.spacing_known else None,
            "spacing_known": vol.spacing_known,
            "intensity": vol.intensity.value,
            "n_source_files": len(vol.meta.get("files") or []) or None,
            "meta": meta,
        },
        "model": {"backend": result.backend, **result.model.to_json()},
        "postprocessing": {
            "enabled": result.postprocessed,
            "min_component_mm3": result.min_component_mm3,
            "threshold_unit": "mm3" if vol.spacing_known else "voxels (spacing unknown)",
            "changes": result.postprocess_report.to_json() if result.postprocess_report else None,
        },
        "timings_s": {
            "load": None if load_seconds is None else round(load_seconds, 4),
            "inference": round(t.get("inference", 0.0), 4),
            "postprocess": round(t.get("postprocess", 0.0), 4),
            "volumetry": round(t.get("volumetry", 0.0), 4),
            **{k: round(v, 4) for k, v in t.items() if k.startswith("backend_")},
        },
        "throughput_slices_per_s": round(result.slices_per_second, 3)
        if np.isfinite(result.slices_per_second)
        else None,
        "liver_ml": None if st.liver_ml is None else round(st.liver_ml, 3),
        "tumour_ml": None if st.tumour_ml is None else round(st.tumour_ml, 3),
        "tumour_burden_percent": None if st.tumour_burden_percent is None else round(st.tumour_burden_percent, 3),
        "liver_voxels": st.liver_voxels,
        "tumour_voxels": st.tumour_voxels,
        "lesions": [_lesion_json(les, vol) for les in st.lesions],
        "volumetry": st.to_json(),
        "labels": LABEL_TABLE,
        "outputs": {k: Path(p).name for k, p in (outputs or {}).items()},
        "notes": [n for n in ([st.note] if st.note else []) + list(notes) if n],
        # a reader corrected the mask in the studio: who produced it, voxels changed per label
        "edited": bool(result.edit),
        "editing": dict(result.edit) if result.edit else None,
    }
    if not vol.spacing_known and vol.is_2d:
        report["liver_area_px"] = st.liver_voxels
        report["tumour_area_px"] = st.tumour_voxels
    return report


def _lesion_json(lesion: Any, volume: Volume) -> dict[str, Any]:
    d = lesion.to_json()
    if volume.spacing_known:
        z, y, x = lesion.centroid_zyx
        d["centroid_ras_mm"] = [round(float(v), 2) for v in volume.index_to_world(z, y, x)]
    return d


def write_report(
    result: SegmentationResult,
    path: str | Path,
    *,
    overwrite: bool = False,
    input_path: str | Path | None = None,
    load_seconds: float | None = None,
    outputs: Mapping[str, Path] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """``<name>_report.json``."""
    data = report_dict(result, input_path=input_path, load_seconds=load_seconds, outputs=outputs, notes=notes)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


# -- all at once --------------------------------------------------------------------
def export_result(
    result: SegmentationResult,
    out_dir: str | Path,
    name: str,
    formats: Iterable[str] = DEFAULT_FORMATS,
    *,
    overwrite: bool = False,
    input_path: str | Path | None = None,
    load_seconds: float | None = None,
    notes: Sequence[str] = (),
    optional: Iterable[str] = (),
    skipped: dict[str, str] | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Path]:
    """Write every requested output of one input; returns key -> path of what was written.

    Every requested format is attempted: one that fails with a clear error
    (:class:`LiversegError` or ``OSError``: a DICOM SEG that cannot be made, a
    full disk) does not stop the others.  Files are written to temporary files
    first and renamed into place together at the end, so an interrupt (Ctrl-C,
    SIGTERM turned into KeyboardInterrupt) or an internal error leaves nothing of
    this input behind.

    Failed formats in ``optional`` are left out with a note in the report
    (``skipped``, if given, receives format -> reason); any other failure raises
    :class:`ExportError` (format -> reason, and what was written) after the
    successful files are in place.  ``warnings`` (if given) receives sentences
    the user should see (e.g. what was mended in DICOM source headers); they
    are in the report's notes too.
    """
    out = Path(out_dir)
    plan = planned_outputs(result.volume, name, out, formats)
    check_can_write(plan.values(), overwrite=overwrite)
    optional_formats = set(normalise_formats(list(optional))) if optional else set()
    notes = list(notes)
    failures: dict[str, str] = {}
    done: list[str] = []  # file keys whose temporary file is complete

    def _failed(fmt: str, exc: BaseException) -> None:
        why = str(exc) if isinstance(exc, LiversegError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError):  # pydicom puts a traceback in the message: the OS's reason only
            why = f"cannot write: {os_error_reason(exc)}"
        why = " ".join(why.split("Traceback (most recent call last)")[0].split())  # one line
        notes.append(f"{fmt} not written: {why}")
        failures[fmt] = why

    writers: dict[str, Callable[[Path], None]] = {}
    seg_dataset: Any = None
    if "dicom_seg" in plan:
        repairs: list[str] = []
        try:
            seg_dataset = dicom_seg_dataset(result, repairs=repairs)  # before any file is written
        except (LiversegError, OSError) as exc:
            _failed("seg", exc)
        for r in repairs:
            notes.append(f"seg: {r}")
            if warnings is not None:
                warnings.append(f"seg: {r}")
    if "mask_nifti" in plan:

        writers["mask_nifti"] = lambda tmp: save_nifti_mask(result, tmp)
    if "mask_png" in plan:
        writers["mask_png"] = lambda tmp: _pil_save(np.asarray(result.labels[0], dtype=np.uint8), tmp)
    if "overlay_png" in plan:
        writers["overlay_png"] = lambda tmp: _pil_save(
            overlay_rgb(display_slice(result.volume, 0), result.labels[0]), tmp
        )
    if "dicom_seg" in plan and "seg" not in failures:
        writers["dicom_seg"] = lambda tmp: seg_dataset.save_as(str(tmp), enforce_file_format=True)
    if "montage" in plan:
        writers["montage"] = lambda tmp: _pil_save(montage_image(result), tmp)
    for f in (f for f in normalise_formats(list(formats)) if f in EXTRA_FORMATS):  # mesh, plan
        for key in _extra(f).planned(result.volume, name, out, f):
            writers[key] = functools.partial(_extra(f).write, result, key, f, dest=plan[key], notes=notes,
                                             overwrite=overwrite)
    if "report" in plan:

        def _report(tmp: Path) -> None:
            outputs = {k: plan[k] for k in [*done, "report"]}
            data = report_dict(
                result, input_path=input_path, load_seconds=load_seconds, outputs=outputs, notes=notes
            )
            tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")

        writers["report"] = _report  # last: it lists what failed before it

    with contextlib.ExitStack() as stack:
        for key, write in writers.items():
            one = stack.enter_context(contextlib.ExitStack())
            try:
                tmp = one.enter_context(atomic_output(plan[key], overwrite=overwrite))
                write(tmp)
            except (LiversegError, OSError) as exc:
                error: BaseException = exc
                try:
                    one.__exit__(type(exc), exc, exc.__traceback__)  # removes this temporary file only
                except (LiversegError, OSError) as clearer:  # atomic_output names the file
                    error = clearer
                _failed(FILE_FORMAT.get(key, key), error)
                continue
            done.append(key)
        # leaving the stack renames every complete temporary file into place
    written = {k: plan[k] for k in done}
    hard = {fmt: why for fmt, why in failures.items() if fmt not in optional_formats}
    for fmt, why in failures.items():
        if fmt in optional_formats and skipped is not None:
            skipped[fmt] = why
    if hard:
        raise ExportError(hard, written)
    return written


@dataclass(frozen=True)
class ExportOutcome:
    """What :func:`export_outputs` did for one input."""

    #: file key -> path of every file written
    written: dict[str, Path]
    #: format -> reason (one line) for the requested formats that failed
    failed: dict[str, str] = field(default_factory=dict)
    #: format -> reason for the optional formats left out (a DICOM SEG that cannot be made)
    skipped: dict[str, str] = field(default_factory=dict)
    #: sentences the user should see (e.g. what was mended in DICOM source headers)
    warnings: list[str] = field(default_factory=list)


def export_outputs(
    result: SegmentationResult,
    out_dir: str | Path,
    name: str,
    formats: Iterable[str] = DEFAULT_FORMATS,
    *,
    explicit_formats: bool = False,
    overwrite: bool = False,
    input_path: str | Path | None = None,
    load_seconds: float | None = None,
    notes: Sequence[str] = (),
) -> ExportOutcome:
    """:func:`export_result` as ``liverseg segment`` and ``liverseg cohort`` run it.

    Every format is attempted; a DICOM SEG that cannot be made is only skipped (with its reason)
    unless the formats were asked for explicitly (``explicit_formats``); failures are returned,
    not raised (the other files are in place).  Errors before anything is written (an existing
    output without ``overwrite``) still raise.
    """
    skipped: dict[str, str] = {}
    warnings: list[str] = []
    try:
        written = export_result(
            result,
            out_dir,
            name,
            formats,
            overwrite=overwrite,
            input_path=input_path,
            load_seconds=load_seconds,
            notes=notes,
            optional=() if explicit_formats else ("seg",),
            skipped=skipped,
            warnings=warnings,
        )
    except ExportError as exc:  # the other formats were written
        return ExportOutcome(exc.written, exc.failures, skipped, warnings)
    return ExportOutcome(written, {}, skipped, warnings)


def _pil_save(arr: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(arr)).save(path, format="PNG")
