"""``--export mesh`` and ``--export plan`` (issue 25), registered in :data:`segment.exporters.EXTRA_FORMATS`.

``mesh`` (``mesh-stl``, ``mesh-obj``, ``mesh-ply``; ``--mesh-format`` picks one, STL by default)
    ``<name>_mesh/``: one closed surface per label and per lesion (:mod:`liverseg_studio.core.mesh`):
    ``liver.<ext>`` (the LiTS liver, tumours inside), ``tumour.<ext>``, ``lesion_01.<ext>``...
    (numbered as the report's lesions), and ``surfaces.json`` (coordinate system, units, voxel
    and mesh volumes, bounds).  Watertight, outward normals, enclosed volume within 1-3 % of the
    voxel volume: fit for 3D printing.  Vertices are in millimetres in the patient coordinates of
    the input: **LPS** for DICOM inputs (DICOM's patient coordinate system), **RAS** for NIfTI and
    the others (nibabel's); each file says which (STL header, OBJ and PLY comments).
``plan``
    ``<name>_plan_mask.nii.gz``: the mask with the resection plan ``<name>_plan.json`` (saved by
    the studio beside the mask in the output folder) applied: 0 background, 1 remnant liver,
    2 tumour, 3 resected liver (:data:`liverseg_studio.core.resection.PLAN_LABELS`).  The report
    gets the plan's figures as a note.  Without a plan file the format fails with that reason.

A DICOM Surface Segmentation is not written: highdicom (0.2x) writes no Surface Segmentation IOD
and pydicom has no builder for its point/triangle sequences (README, "3D view").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.core.volume import Volume

MESH_FORMATS = ("stl", "obj", "ply")
DEFAULT_MESH_FORMAT = "stl"
#: format names this module writes (the table in exporters.py lists the same)
NAMES = ("mesh", *(f"mesh-{f}" for f in MESH_FORMATS), "plan")


def with_mesh_format(formats: Iterable[str], mesh_format: str | None) -> tuple[str, ...]:
    """``--mesh-format X``: ``mesh`` in ``formats`` becomes ``mesh-X`` (others unchanged)."""
    if mesh_format and mesh_format not in MESH_FORMATS:
        raise LiversegError(f"unknown mesh format {mesh_format!r} (known: {', '.join(MESH_FORMATS)})")
    return tuple(f"mesh-{mesh_format}" if f == "mesh" and mesh_format else f for f in formats)


def mesh_extension(fmt: str) -> str:
    return fmt.split("-", 1)[1] if "-" in fmt else DEFAULT_MESH_FORMAT


def coordinates_for(volume: Volume) -> str:
    """"LPS" for DICOM inputs, "RAS" otherwise (the input's own patient coordinates)."""
    from liverseg_studio.segment.exporters import is_dicom

    return "LPS" if is_dicom(volume) else "RAS"


# -- the hook exporters.py calls ----------------------------------------------------------
def skipped(volume: Volume, fmt: str) -> str | None:
    if fmt != "plan" and (volume.is_2d or not volume.spacing_known):
        return "a single slice or an image without voxel size has no surface in mm"
    if fmt == "plan" and volume.is_2d:
        return "a resection plan needs a volume"
    return None


def planned(volume: Volume, name: str, out_dir: Path, fmt: str) -> dict[str, Path]:
    if skipped(volume, fmt):
        return {}
    if fmt == "plan":
        return {"plan": Path(out_dir) / f"{name}_plan_mask.nii.gz"}
    return {"mesh": Path(out_dir) / f"{name}_mesh"}


def write(result: Any, key: str, fmt: str, tmp: Path, *, dest: Path, notes: list[str], overwrite: bool) -> None:
    """Write file ``key`` of format ``fmt`` to ``tmp`` (renamed onto ``dest`` afterwards)."""
    if key == "plan":
        _write_plan_mask(result, tmp, dest, notes)
    else:
        _write_mesh_folder(result, mesh_extension(fmt), tmp, dest, notes, overwrite)


# -- mesh ------------------------------------------------------------------------------------
def encode_mesh(surface: Any, ext: str, *, source: str = "") -> bytes:
    """One :class:`~liverseg_studio.core.mesh.SurfaceMesh` as STL (binary), OBJ or PLY (binary) bytes."""
    import trimesh

    tm = trimesh.Trimesh(vertices=surface.vertices, faces=surface.faces, process=False)
    text = f"LiverSeg Studio {surface.name}: patient coordinates {surface.coordinates}, mm"
    if ext == "stl":
        data = bytearray(trimesh.exchange.stl.export_stl(tm))
        data[:80] = text.encode("ascii")[:80].ljust(80, b" ")
        return bytes(data)
    if ext == "obj":
        return trimesh.exchange.obj.export_obj(tm, include_normals=False, include_color=False,
                                               include_texture=False, header=f"{text} {source}".strip()).encode()
    if ext == "ply":
        data = trimesh.exchange.ply.export_ply(tm, encoding="binary")
        line_end = data.index(b"\n", data.index(b"format ")) + 1
        return data[:line_end] + f"comment {text}\n".encode("ascii") + data[line_end:]
    raise LiversegError(f"unknown mesh format {ext!r} (known: {', '.join(MESH_FORMATS)})")


def write_meshes(labels: np.ndarray, volume: Volume, folder: Path, ext: str = DEFAULT_MESH_FORMAT,
                 *, coordinates: str | None = None) -> dict[str, Any]:
    """Write every surface of ``labels`` into ``folder`` (created); returns the ``surfaces.json`` content."""
    from liverseg_studio.core.mesh import iter_label_surfaces

    if ext not in MESH_FORMATS:
        raise LiversegError(f"unknown mesh format {ext!r} (known: {', '.join(MESH_FORMATS)})")
    coords = coordinates or coordinates_for(volume)
    folder.mkdir(parents=False, exist_ok=True)
    entries = []
    for s in iter_label_surfaces(np.asarray(labels), volume.affine):
        s = s.to_lps() if coords == "LPS" else s
        path = folder / f"{s.name}.{ext}"
        path.write_bytes(encode_mesh(s, ext, source=Path(volume.source).name if volume.source else ""))
        entries.append({**s.to_json(), "file": path.name})
    info = {
        "software": "LiverSeg Studio",
        "coordinates": coords,
        "coordinates_note": ("DICOM patient coordinates (LPS: x to the left, y to the back, z up)" if coords == "LPS"
                             else "RAS (x to the right, y to the front, z up), as the NIfTI affine"),
        "units": "mm",
        "format": ext,
        "source": volume.source,
        "surfaces": entries,
    }
    (folder / "surfaces.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def _write_mesh_folder(result: Any, ext: str, tmp: Path, dest: Path, notes: list[str], overwrite: bool) -> None:
    try:
        info = write_meshes(result.labels, result.volume, tmp, ext)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    worst = max((abs(e["mesh_volume_ml"] - e["voxel_volume_ml"]) / e["voxel_volume_ml"]
                 for e in info["surfaces"] if e["voxel_volume_ml"]), default=0.0)
    notes.append(f"mesh: {len(info['surfaces'])} surfaces ({ext.upper()}, {info['coordinates']} mm), "
                 f"enclosed volumes within {100 * worst:.1f} % of the voxel volumes")
    if overwrite and dest.is_dir():  # a folder cannot be renamed over another: the old one goes now
        shutil.rmtree(dest)


# -- plan ------------------------------------------------------------------------------------
def plan_mask_image(result: Any, plan: Any) -> tuple[Any, Any]:
    """(NIfTI image, figures) of ``plan`` applied to ``result``: 1 remnant, 2 tumour, 3 resected liver."""
    import dataclasses

    import nibabel as nib

    from liverseg_studio.core.resection import PLAN_LABELS, evaluate_plan, plan_label_map
    from liverseg_studio.segment.exporters import _nifti_image

    labels = np.asarray(result.labels)
    figures = evaluate_plan(labels, result.volume.affine, plan)
    # the mask's own header (shape, affine, units, intent), with the plan's label table
    img = _nifti_image(dataclasses.replace(result, labels=plan_label_map(labels, result.volume.affine, plan)))
    hdr = img.header
    hdr["descrip"] = b"liverseg plan 0=bg 1=remnant liver 2=tumour 3=resected liver"
    hdr["cal_max"] = 3
    hdr.extensions.clear()
    ext = {"labels": PLAN_LABELS, "plan": plan.to_json(), "figures": figures.to_json(), "source": result.volume.source}
    hdr.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(ext).encode("utf-8")))
    return img, figures


def _write_plan_mask(result: Any, tmp: Path, dest: Path, notes: list[str]) -> None:
    import nibabel as nib

    from liverseg_studio.core.resection import load_plan

    name = dest.name[: -len("_plan_mask.nii.gz")]
    plan_file = dest.with_name(f"{name}_plan.json")
    img, figures = plan_mask_image(result, load_plan(plan_file))
    nib.save(img, str(tmp))
    notes.append(f"resection plan {plan_file.name}: {figures.summary()}")
