"""``liverseg cohort INPUT... --out DIR``: segment a whole cohort on Dask distributed.

Each INPUT is what ``liverseg segment`` takes (files, DICOM series folders,
folders of inputs) or a CSV with a ``path`` column and optional ``id`` columns.
Every study is one Dask task: load -> segment -> export, exactly as ``segment``
does, on a worker that loaded the model once.  Without --scheduler a
LocalCluster of worker processes sized to this machine runs them (loopback
only); --scheduler tcp://host:8786 uses an existing cluster (its workers need
liverseg-studio installed and the inputs, model and DIR at the same paths).

DIR/cohort.csv gets one row per study as it finishes (a crash leaves a valid
table); DIR/cohort.parquet too when pyarrow is installed.  A rerun skips the
studies whose row and outputs exist for the same model (sha256); --redo-failed
retries the failed ones.  Exit code 2 when a study of the cohort is failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liverseg_studio.commands.common import (
    add_mesh_format_option,
    add_trust_pickle_option,
    non_negative_float,
    positive_int,
)
from liverseg_studio.commands.info import add_load_options, load_options
from liverseg_studio.plugins.registry import AUTO_BACKEND

#: "auto": the default engine, as for ``liverseg segment`` and the studio (``BackendRegistry.default_name``).
DEFAULT_BACKEND = AUTO_BACKEND


def _formats(text: str) -> tuple[str, ...]:
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.segment.exporters import normalise_formats

    try:
        return normalise_formats(text)
    except LiversegError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:
    from liverseg_studio.core.postprocess import DEFAULT_MIN_COMPONENT_MM3

    p = sub.add_parser(
        "cohort",
        help="segment a cohort of studies on Dask (local processes or a cluster); one table row per study",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, or CSV files with a 'path' column")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder (cohort.csv and the outputs)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: resources/models/default)")
    p.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        metavar="NAME",
        help="backend (default auto: the default engine, as for segment and the studio: openvino, else onnx)",
    )
    p.add_argument(
        "--export",
        type=_formats,
        default=None,
        metavar="FORMATS",
        help="comma-separated, as `liverseg segment --export` (default: all)",
    )
    add_mesh_format_option(p)
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="an existing Dask scheduler, e.g. tcp://host:8786 (default: a LocalCluster on this machine)",
    )
    p.add_argument(
        "--workers", type=positive_int, metavar="N", help="LocalCluster worker processes (default: cores / threads)"
    )
    p.add_argument(
        "--threads-per-worker", type=positive_int, default=None, metavar="N", help="inference threads of each worker (default 1)"
    )
    p.add_argument("--redo-failed", action="store_true", help="run the studies whose row is failed again")
    p.add_argument("--no-dashboard", action="store_true", help="no Dask dashboard for the LocalCluster")
    add_trust_pickle_option(p)
    p.add_argument("--no-postprocess", action="store_true", help="skip the 3D post-processing (as segment)")
    p.add_argument(
        "--min-component-mm3",
        type=non_negative_float,
        default=DEFAULT_MIN_COMPONENT_MM3,
        metavar="V",
        help=f"tumour components smaller than V mm^3 become liver (default {DEFAULT_MIN_COMPONENT_MM3:g})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files the cohort did not write")
    add_load_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.segment.export_mesh import with_mesh_format
    from liverseg_studio.segment.exporters import DEFAULT_FORMATS

    try:
        from liverseg_studio.cohort.runner import CohortConfig, run_cohort
        from liverseg_studio.cohort.task import ModelSpec
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("dask", "distributed"):
            raise
        raise LiversegError(
            f"liverseg cohort needs {exc.name} (install the 'cluster' extra: pip install 'liverseg-studio[cluster]')"
        ) from None
    from liverseg_studio.cohort.inputs import collect_studies
    from liverseg_studio.plugins.manager import get_plugin_manager

    out_dir = Path(args.out)
    pm = get_plugin_manager()
    pm.backends.get(args.backend)  # an unknown backend is one clear line before any cluster starts
    skipped: list[Path] = []
    studies = collect_studies(list(args.inputs), pm.loaders, out_dir, skipped)
    for path in skipped:
        print(f"skipping {path}: named like a liverseg output", file=sys.stderr)
    if not studies:
        raise LiversegError("no studies to segment")
    if args.model and not Path(args.model).is_dir():
        raise LiversegError(f"{args.model}: model folder does not exist")
    config = CohortConfig(
        out_dir=out_dir,
        model=ModelSpec(
            backend=args.backend,
            model_dir=str(Path(args.model).resolve()) if args.model else None,
            threads=args.threads_per_worker,
            trust_pickle=args.trust_pickle,
        ),
        formats=with_mesh_format(args.export or DEFAULT_FORMATS, args.mesh_format),
        explicit_formats=args.export is not None,
        overwrite=args.overwrite,
        postprocess=not args.no_postprocess,
        min_component_mm3=args.min_component_mm3,
        load_options=load_options(args),
        redo_failed=args.redo_failed,
        scheduler=args.scheduler,
        n_workers=args.workers,
        dashboard=not args.no_dashboard,
    )
    s = run_cohort(studies, config)
    rate = f", {s.studies_per_minute:.1f} studies/min" if s.ok + s.failed else ""
    print(
        f"cohort: {s.ok} ok, {s.failed} failed, {s.skipped_ok + s.skipped_failed} kept from the table "
        f"({s.submitted} task(s) run in {s.seconds:.1f} s{rate}); table {s.table}"
        + (f" and {s.parquet}" if s.parquet else "")
    )
    return 2 if s.failed_in_table else 0
