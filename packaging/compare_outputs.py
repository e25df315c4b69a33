"""Compare what the installed ``liverseg segment`` and the frozen one wrote for the same input.

    python packaging/compare_outputs.py INSTALLED_DIR FROZEN_DIR [--expect-seg] [--dciodvfy PATH]

Run by ``make package-test`` (packaging/package_test.sh) with the project's virtual environment.
Checks, failing (exit 1) on the first difference that matters:

* both folders hold the same files (every requested export format, for this input kind);
* the label masks are the same voxel for voxel: NIfTI (data, shape, affine and data type), PNG
  masks (pixels), DICOM SEG (the label map highdicom reads back per source image);
* the montage and overlay PNGs have the same pixels, and the reports the same volumetry;
* any other file (formats added later, e.g. meshes) exists in both; it is compared byte for byte
  and a difference is printed, not failed (a writer may stamp times or UIDs);
* every DICOM SEG is read by highdicom and, with ``--dciodvfy``, validated by dciodvfy with
  0 errors.

One summary line per file is printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

#: report keys (last part of the dotted key) whose values must agree: the input's shape, the engine and
#: model, the volumetry and what post-processing changed; timings, paths and dates may differ
REPORT_KEYS = ("shape_zyx", "backend", "sha256", "liver_ml", "tumour_ml", "tumour_burden_percent", "liver_voxels",
               "tumour_voxels", "n_lesions", "lesions", "liver_slices")
REPORT_PREFIXES = ("postprocessing.changes.",)


class Mismatch(Exception):
    pass


def _nifti(a: Path, b: Path) -> str:
    import nibabel as nib

    ia, ib = nib.load(str(a)), nib.load(str(b))
    da, db = np.asarray(ia.dataobj), np.asarray(ib.dataobj)
    if da.shape != db.shape:
        raise Mismatch(f"shape {da.shape} != {db.shape}")
    if da.dtype != db.dtype:
        raise Mismatch(f"data type {da.dtype} != {db.dtype}")
    if not np.array_equal(ia.affine, ib.affine):
        raise Mismatch(f"affine differs:\n{ia.affine}\n{ib.affine}")
    n = int(np.count_nonzero(da != db))
    if n:
        raise Mismatch(f"{n} voxels differ")
    counts = {int(v): int(c) for v, c in zip(*np.unique(da, return_counts=True))}
    return f"voxel-identical {da.shape}, label counts {counts}"


def _png(a: Path, b: Path) -> str:
    from PIL import Image

    with Image.open(a) as ia, Image.open(b) as ib:
        pa, pb = np.asarray(ia), np.asarray(ib)
        if ia.mode != ib.mode:
            raise Mismatch(f"mode {ia.mode} != {ib.mode}")
    if pa.shape != pb.shape:
        raise Mismatch(f"size {pa.shape} != {pb.shape}")
    n = int(np.count_nonzero(np.any((pa != pb).reshape(pa.shape[0], pa.shape[1], -1), axis=-1)))
    if n:
        raise Mismatch(f"{n} pixels differ")
    return f"pixel-identical {pa.shape}" + (" (byte-identical file)" if a.read_bytes() == b.read_bytes() else "")


def seg_labels(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The label map (segment number per pixel) of each referenced source image, read by highdicom."""
    import highdicom as hd

    seg = hd.seg.segread(str(path))
    numbers = [int(d.SegmentNumber) for d in seg.SegmentSequence]
    names = [str(d.SegmentLabel) for d in seg.SegmentSequence]
    uids = [str(i.ReferencedSOPInstanceUID) for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=numbers,
                                               assert_missing_frames_are_empty=True)
    out = {}
    for k, uid in enumerate(uids):
        lab = np.zeros(pixels.shape[1:3], np.uint8)
        for i, number in enumerate(numbers):
            lab[pixels[k, ..., i] > 0] = number
        out[uid] = lab
    return out, names


def _seg(a: Path, b: Path) -> str:
    la, names = seg_labels(a)
    lb, _ = seg_labels(b)
    if set(la) != set(lb):
        raise Mismatch("the SEGs reference different source images")
    n = sum(int(np.count_nonzero(la[u] != lb[u])) for u in la)
    if n:
        raise Mismatch(f"{n} pixels of the SEG label maps differ")
    labelled = sum(int(np.count_nonzero(v)) for v in la.values())
    return f"SEG label maps identical over {len(la)} source images ({labelled} labelled pixels; segments {names})"


def _flatten(d: object, prefix: str = "") -> dict[str, object]:
    if isinstance(d, dict):
        out: dict[str, object] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def _report(a: Path, b: Path) -> str:
    ra, rb = _flatten(json.loads(a.read_text())), _flatten(json.loads(b.read_text()))
    keys = sorted(k for k in ra if k.split(".")[-1] in REPORT_KEYS or k.startswith(REPORT_PREFIXES))
    if not keys:
        raise Mismatch("the report has none of the volumetry keys " + ", ".join(REPORT_KEYS))
    diff = [f"{k}: {ra[k]!r} != {rb.get(k)!r}" for k in keys if ra[k] != rb.get(k)]
    if diff:
        raise Mismatch("; ".join(diff))
    return f"same volumetry ({len(keys)} values)"


def compare_file(a: Path, b: Path) -> tuple[bool, str]:
    """(must match?, summary); raises Mismatch when it must match and does not."""
    name = a.name.lower()
    if name.endswith("_mask.nii.gz") or name.endswith(".nii.gz") or name.endswith(".nii"):
        return True, _nifti(a, b)
    if name.endswith("_seg.dcm"):
        return True, _seg(a, b)
    if name.endswith(".png"):
        return True, _png(a, b)
    if name.endswith("_report.json"):
        return True, _report(a, b)
    same = a.read_bytes() == b.read_bytes()
    return False, "byte-identical" if same else f"differs in bytes ({a.stat().st_size} vs {b.stat().st_size} bytes)"


def dciodvfy_errors(path: Path, exe: str) -> tuple[int, str]:
    proc = subprocess.run([exe, str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", timeout=300, check=False)
    errors = [line for line in proc.stdout.splitlines() if line.lstrip().startswith("Error")]
    return len(errors), "\n".join(errors[:20])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("installed", type=Path)
    p.add_argument("frozen", type=Path)
    p.add_argument("--expect-seg", action="store_true", help="a DICOM input: a *_seg.dcm must be there")
    p.add_argument("--dciodvfy", metavar="PATH", help="validate every DICOM SEG with this dciodvfy")
    p.add_argument("--label", default="", help="prefix of the printed lines")
    args = p.parse_args(argv)
    files_a = sorted(f.name for f in args.installed.iterdir() if f.is_file())
    files_b = sorted(f.name for f in args.frozen.iterdir() if f.is_file())
    tag = f"{args.label}: " if args.label else ""
    if files_a != files_b:
        print(f"{tag}FAIL: different files: installed {files_a}, frozen {files_b}")
        return 1
    if not any(f.endswith(("_mask.nii.gz", "_mask.png")) for f in files_a):
        print(f"{tag}FAIL: no mask written: {files_a}")
        return 1
    if args.expect_seg and not any(f.endswith("_seg.dcm") for f in files_a):
        print(f"{tag}FAIL: no DICOM SEG written for a DICOM input: {files_a}")
        return 1
    failed = False
    for name in files_a:
        try:
            strict, summary = compare_file(args.installed / name, args.frozen / name)
            print(f"{tag}{name}: {summary}" + ("" if strict else " (not compared strictly)"))
        except Mismatch as exc:
            print(f"{tag}FAIL {name}: {exc}")
            failed = True
        if name.endswith("_seg.dcm") and args.dciodvfy:
            for which, folder in (("frozen", args.frozen), ("installed", args.installed)):
                n, errors = dciodvfy_errors(folder / name, args.dciodvfy)
                print(f"{tag}{name} ({which}): dciodvfy {n} error(s)" + (f"\n{errors}" if n else ""))
                failed |= n > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
