"""``liverseg segment INPUT... --out OUT_DIR``: segment whole CT volumes and export the results.

Each INPUT is a file or folder a loader reads (JPG/PNG slice, DICOM file,
DICOM series folder, NIfTI, MRC) or a folder of such inputs (batch; a folder
that is itself a DICOM series is one input).  For each input: load ->
``segment_volume`` (backend in slice batches, progress bar on stderr, 3D
post-processing, volumetry) -> exports (``segment.exporters``), written
atomically.  Corrupt or unsupported inputs are reported and skipped; the
exit code is 2 at the end if any input failed (1 if one hit an internal error).
Ctrl-C and SIGTERM stop the run without leaving partial output files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from liverseg_studio.commands.common import (
    add_mesh_format_option,
    add_trust_pickle_option,
    engine_summary,
    load_backend,
    non_negative_float,
    positive_int,
)
from liverseg_studio.commands import series_choice
from liverseg_studio.commands import pacs
from liverseg_studio.commands.info import add_load_options, load_options
from liverseg_studio.core.signals import sigterm_as_interrupt

#: "auto": the fastest installed engine (``BackendRegistry.default_name``: openvino when
#: installed, else onnx = ONNX Runtime); the run says which one it used.
DEFAULT_BACKEND = "auto"


class _Formats(tuple):
    """The parsed ``--export`` names, with the deprecation notes of old names used."""

    notes: tuple[str, ...] = ()


def _formats(text: str) -> tuple[str, ...]:
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.segment.exporters import normalise_formats

    notes: list[str] = []
    try:
        parsed = _Formats(normalise_formats(text, notes=notes))
    except LiversegError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    parsed.notes = tuple(notes)
    return parsed


def register(sub: argparse._SubParsersAction) -> None:
    from liverseg_studio.core.postprocess import DEFAULT_MIN_COMPONENT_MM3

    p = sub.add_parser(
        "segment",
        help="segment liver and tumours in CT volumes or slices; write masks, DICOM SEG, montage, report",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="files or folders (a folder of inputs is a batch), or pacs://NODE/STUDY_UID[/SERIES_UID]")
    p.add_argument("--out", "-o", required=True, metavar="OUT_DIR", help="output folder (created if missing)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: resources/models/default)")
    p.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        metavar="NAME",
        help="backend (default auto: the fastest installed engine, openvino, else onnx)",
    )
    p.add_argument(
        "--export",
        type=_formats,
        default=None,
        metavar="FORMATS",
        help="comma-separated, named after the files: mask (NIfTI or PNG label mask), overlay (PNG of a "
        "single slice), montage (PNG), seg (DICOM SEG, DICOM inputs only), report (JSON); default: all. "
        "Also mesh (3D surfaces, see --mesh-format) and plan (the studio's <name>_plan.json as a mask). "
        "Old names nifti, png, dicom-seg, json are deprecated",
    )
    p.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads for inference")
    add_trust_pickle_option(p)
    add_mesh_format_option(p)
    p.add_argument(
        "--no-postprocess",
        action="store_true",
        help="skip the 3D post-processing (largest liver component, tumour only in the liver, small "
        "tumours; volumes only: single slices are never post-processed)",
    )
    p.add_argument(
        "--min-component-mm3",
        type=non_negative_float,
        default=DEFAULT_MIN_COMPONENT_MM3,
        metavar="V",
        help="tumour components smaller than V mm^3 become liver (voxels if the spacing is unknown; "
        f"default {DEFAULT_MIN_COMPONENT_MM3:g})",
    )
    p.add_argument(
        "--min-2d-liver-prob",
        type=non_negative_float,
        default=0.0,
        metavar="P",
        help="single 2D slices: liver components whose mean liver probability is below P become "
        "background (default 0 = off: on validation people every floor lowered the mean slice Dice)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_load_options(p)
    pacs.add_segment_options(p)
    series_choice.add_options(p)
    p.set_defaults(func=run)


# -- inputs -------------------------------------------------------------------------
def _is_series_folder(folder: Path, loaders: Any) -> bool:
    """A folder is one input (a DICOM series) when a folder loader claims it and
    at least one of its own files is a DICOM file; otherwise it is a batch."""
    from liverseg_studio.core.errors import LiversegError

    try:
        loaders.find(folder)
    except LiversegError:
        return False
    for child in sorted(folder.iterdir(), key=lambda c: c.name):
        if child.name.startswith(".") or not child.is_file():
            continue
        try:
            spec = loaders.find(child)
        except LiversegError:
            continue
        if "dicom" in spec.name.lower():
            return True
    return False


#: How deep a batch folder's sub-folders are walked (patient/study/series).
MAX_BATCH_DEPTH = 4


def expand_inputs(
    paths: list[str], loaders: Any, out_dir: Path, skipped: list[Path] | None = None, _depth: int = 0
) -> list[Path]:
    """The inputs of a run: files as given; a folder holding a ``DICOMDIR`` as that DICOMDIR;
    a folder holding DICOM files as one input (a series: the loader picks the series,
    ``--series`` chooses among several); any other folder expanded to its non-hidden
    entries, sorted (a batch; its sub-folders are walked in turn, so a folder of per-case
    sub-folders, each a NIfTI or a DICOM series, is a batch of cases).  ``out_dir`` is
    never an input, and files in a batch folder named like our outputs
    (``*_mask.nii.gz``, ``*_report.json`` ...) are left out (added to ``skipped``)."""
    from liverseg_studio.segment.exporters import looks_like_output

    out_resolved = out_dir.resolve()
    result: list[Path] = []
    for text in paths:
        p = Path(text)
        dicomdir = [c for c in p.iterdir() if c.name.upper() == "DICOMDIR" and c.is_file()] if p.is_dir() else []
        if dicomdir:
            result.append(dicomdir[0])
            continue
        if not p.is_dir() or _is_series_folder(p, loaders) or (_depth and _depth >= MAX_BATCH_DEPTH):
            result.append(p)
            continue
        children = [
            c
            for c in sorted(p.iterdir(), key=lambda c: c.name)
            if not c.name.startswith(".") and c.resolve() != out_resolved
        ]
        outputs = [c for c in children if looks_like_output(c)]  # files, and <name>_mesh folders
        if skipped is not None:
            skipped.extend(outputs)
        children = [c for c in children if c not in outputs]
        if not children:
            result.append(p)  # reported by the loader ("no DICOM images" etc.)
        for c in children:
            if c.is_dir():
                result.extend(expand_inputs([str(c)], loaders, out_dir, skipped, _depth + 1))
            else:
                result.append(c)
    return result


def _fmt_ml(value: float | None, voxels: int) -> str:
    return f"{value:.1f} mL" if value is not None else f"{voxels} voxels"


def run(args: argparse.Namespace) -> int:
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.core.io import check_can_write, check_free_space, output_bytes_needed, prepare_output_dir
    from liverseg_studio.plugins.manager import get_plugin_manager
    from liverseg_studio.segment.exporters import (
        DEFAULT_FORMATS,
        export_outputs,
        planned_outputs,
        skipped_formats,
        unique_names,
    )
    from liverseg_studio.segment.export_mesh import with_mesh_format
    from liverseg_studio.segment.pipeline import segment_volume
    from liverseg_studio.segment.progress import ProgressBar

    formats = with_mesh_format(args.export or DEFAULT_FORMATS, args.mesh_format)
    for note in getattr(args.export, "notes", ()):
        print(f"liverseg segment: note: {note}", file=sys.stderr)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise LiversegError(f"{out_dir}: --out must be a folder")
    pm = get_plugin_manager()
    skipped: list[Path] = []
    inputs = expand_inputs(pacs.resolve_segment_inputs(args), pm.loaders, out_dir, skipped)
    for path in skipped:
        print(f"skipping {path}: named like a liverseg output", file=sys.stderr)
    names = unique_names(inputs)
    inputs, names, per_input = series_choice.expand(args, inputs, names, load_options(args))
    prepare_output_dir(out_dir)  # cannot create, read-only, full: one line, before any inference
    backend = load_backend(pm, args.backend, args.model, threads=args.threads, trust_pickle=args.trust_pickle)
    print(f"engine: {engine_summary(backend)}", file=sys.stderr)

    failures: list[tuple[Path, str]] = []
    export_failures: list[str] = []  # "PATH: FORMAT not written: why", one per failed format
    internal_error = False
    seg_paths: list[Path] = []  # sent to --store-to at the end
    total_slices = 0
    total_inference = 0.0
    done = 0
    explicit_formats = args.export is not None
    err = sys.stderr
    with sigterm_as_interrupt():
        for i, (path, name) in enumerate(zip(inputs, names), start=1):
            prefix = f"[{i}/{len(inputs)}] {path}" if len(inputs) > 1 else str(path)
            try:
                t0 = time.perf_counter()
                volume = pm.loaders.load(path, per_input[i - 1])
                load_s = time.perf_counter() - t0
                plan = planned_outputs(volume, name, out_dir, formats)
                check_can_write(plan.values(), overwrite=args.overwrite)
                check_free_space(out_dir, output_bytes_needed(volume))
                src = path.resolve()
                if any(p.resolve() == src for p in plan.values()):
                    raise LiversegError(f"{path}: an output would replace the input; choose another --out")
                notes = [volume.meta["series_choice"]] if volume.meta.get("series_choice") else []
                for line in notes:  # which series of a study folder, and why
                    print(f"{prefix}: {line}", file=err)
                if volume.meta.get("warning"):
                    notes.append(f"loader warning: {volume.meta['warning']}")
                    print(f"{prefix}: warning: {volume.meta['warning']}", file=err)
                if args.min_2d_liver_prob > 0 and volume.is_2d:
                    notes.append(f"2D confidence floor: liver components with mean probability < "
                                 f"{args.min_2d_liver_prob:g} removed")
                for fmt, why in skipped_formats(volume, formats).items():
                    notes.append(f"{fmt} not written: {why}")
                    if explicit_formats:
                        print(f"{prefix}: {fmt} skipped ({why})", file=err)
                bar = ProgressBar(f"{name}", stream=err, n_items=volume.n_slices)
                try:
                    result = segment_volume(
                        volume,
                        backend,
                        postprocess=not args.no_postprocess,
                        min_component_mm3=args.min_component_mm3,
                        progress=bar,
                        min_2d_liver_prob=args.min_2d_liver_prob,
                    )
                finally:
                    bar.close()
                t1 = time.perf_counter()
                # a DICOM SEG that cannot be made fails the input only when asked for
                outcome = export_outputs(
                    result,
                    out_dir,
                    name,
                    formats,
                    explicit_formats=explicit_formats,
                    overwrite=args.overwrite,
                    input_path=path,
                    load_seconds=load_s,
                    notes=notes,
                )
                written = outcome.written
                seg_paths.extend([written["dicom_seg"]] if "dicom_seg" in written else [])
                for warning in outcome.warnings:
                    print(f"{prefix}: warning: {warning}", file=err)
                for fmt, why in outcome.skipped.items():
                    print(f"{prefix}: warning: {fmt} not written: {why}", file=err)
                for fmt, why in outcome.failed.items():
                    line = f"{path}: {fmt} not written: {why}"
                    print(f"liverseg segment: error: {line}", file=err)
                    export_failures.append(line)
                export_s = time.perf_counter() - t1
            except KeyboardInterrupt:
                raise
            except LiversegError as exc:
                msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
                print(f"liverseg segment: error: {msg}", file=err)
                failures.append((path, msg))
                continue
            except MemoryError:
                print(f"liverseg segment: error: {path}: not enough memory", file=err)
                failures.append((path, f"{path}: not enough memory"))
                continue
            except Exception as exc:  # noqa: BLE001 - keep going with the other inputs
                if os.environ.get("LIVERSEG_DEBUG"):
                    import traceback

                    traceback.print_exc()
                print(
                    f"liverseg segment: internal error: {path}: {type(exc).__name__}: {exc} "
                    "(set LIVERSEG_DEBUG=1 for the traceback)",
                    file=err,
                )
                failures.append((path, f"{path}: internal error: {type(exc).__name__}: {exc}"))
                internal_error = True
                continue
            st = result.stats
            n = volume.n_slices
            inf = result.timings["inference"]
            total_slices += n
            total_inference += inf
            done += 1
            burden = f" ({st.tumour_burden_percent:.1f} % burden)" if st.tumour_burden_percent is not None else ""
            print(
                f"{prefix}: liver {_fmt_ml(st.liver_ml, st.liver_voxels)}, tumour "
                f"{_fmt_ml(st.tumour_ml, st.tumour_voxels)}{burden}, {st.n_lesions} lesion(s)"
            )
            rate = n / inf if inf > 0 else float("inf")
            print(
                f"    {n} slice(s): load {load_s:.2f} s, inference {inf:.2f} s ({rate:.1f} slices/s), "
                f"post-processing {result.timings['postprocess']:.2f} s, export {export_s:.2f} s"
            )
            for key, p in written.items():
                print(f"    wrote {p}")
            del volume, result

    if total_slices:
        rate = total_slices / total_inference if total_inference > 0 else float("inf")
        print(
            f"throughput: {total_slices} slices in {total_inference:.2f} s of inference "
            f"({rate:.1f} slices/s, backend {getattr(backend, 'name', args.backend)})"
        )
    summary = f"segmented {done} of {len(inputs)} input(s)"
    if failures:
        summary += f"; {len(failures)} failed"
    if export_failures:
        summary += f"; {len(export_failures)} export(s) failed"
    print(summary + (":" if failures or export_failures else ""))
    for _path, why in failures:
        print(f"    FAILED {why}")
    for why in export_failures:
        print(f"    FAILED {why}")
    pacs.store_segment_outputs(args, seg_paths)
    if internal_error:
        return 1
    return 2 if failures or export_failures else 0
