"""``liverseg pacs``: query a PACS, retrieve series into the local cache, send DICOM files.

``liverseg pacs nodes`` lists the configured nodes; ``find NODE`` prints studies and their series;
``get NODE STUDY_UID`` retrieves (C-GET, C-MOVE or WADO-RS, as the node says; ``--via`` overrides)
with progress; Ctrl-C stops it and the same command resumes where it stopped; ``store NODE FILE...``
sends files (C-STORE or STOW-RS).  Nodes live in a TOML file (``--pacs-config``,
``$LIVERSEG_PACS_CONFIG``, ``~/.config/liverseg/pacs.toml``).

This module also holds the options ``liverseg segment`` takes for a PACS (``pacs://NODE/STUDY_UID``
inputs, ``--from-pacs``, ``--store-to``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pacs-config", metavar="FILE", help="PACS node config (default $LIVERSEG_PACS_CONFIG or "
                   "~/.config/liverseg/pacs.toml)")
    p.add_argument("--via", choices=("auto", "dimse", "dicomweb"), default="auto",
                   help="protocol (default auto: DICOMweb when the node retrieves by wado or has no DIMSE address)")


def add_cache(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", metavar="DIR", help="retrieval cache (default $LIVERSEG_PACS_CACHE or "
                   "~/.cache/liverseg/pacs)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pacs", help="query a PACS, retrieve series into the local cache, send DICOM files",
                       description=__doc__.split("\n\n", 1)[1].split("\n\nThis module")[0] if __doc__ else None)
    psub = p.add_subparsers(dest="pacs_command", metavar="ACTION")

    q = psub.add_parser("nodes", help="list the configured PACS nodes")
    q.add_argument("--pacs-config", metavar="FILE")
    q.set_defaults(func=run_nodes)

    q = psub.add_parser("find", help="find studies (and their series) on a node")
    q.add_argument("node", metavar="NODE")
    q.add_argument("--patient-id", default="", metavar="ID")
    q.add_argument("--patient-name", default="", metavar="NAME", help="wildcards * and ? allowed")
    q.add_argument("--accession", default="", metavar="NUMBER")
    q.add_argument("--date", default="", metavar="YYYYMMDD[-YYYYMMDD]", help="study date or range")
    q.add_argument("--modality", default="", metavar="MOD", help="e.g. CT")
    q.add_argument("--study", default="", metavar="UID", help="StudyInstanceUID")
    q.add_argument("--no-series", action="store_true", help="studies only (one query instead of one per study)")
    add_common(q)
    q.set_defaults(func=run_find)

    q = psub.add_parser("get", help="retrieve a study's series into the local cache (resumable)")
    q.add_argument("node", metavar="NODE")
    q.add_argument("study", metavar="STUDY_UID")
    q.add_argument("--series", action="append", default=[], metavar="UID", help="only this series (repeatable)")
    q.add_argument("--modality", default="", metavar="MOD", help="only series of this modality, e.g. CT")
    add_common(q)
    add_cache(q)
    q.set_defaults(func=run_get)

    q = psub.add_parser("store", help="send DICOM files (e.g. a SEG) to a node")
    q.add_argument("node", metavar="NODE")
    q.add_argument("files", nargs="+", metavar="FILE")
    add_common(q)
    q.set_defaults(func=run_store)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _config(args: argparse.Namespace) -> Any:
    from liverseg_studio.pacs.config import load_config

    return load_config(getattr(args, "pacs_config", None))


def _cache(args: argparse.Namespace) -> Any:
    from liverseg_studio.pacs.cache import SeriesCache
    from liverseg_studio.pacs.config import default_cache_dir

    return SeriesCache(Path(args.cache) if getattr(args, "cache", None) else default_cache_dir())


def run_nodes(args: argparse.Namespace) -> int:
    from liverseg_studio.pacs.config import default_config_path

    cfg = _config(args)
    print(f"config: {cfg.path or f'none ({default_config_path()} does not exist)'}")
    print(f"local: AE {cfg.local.ae_title}, port {cfg.local.port}")
    for node in cfg.nodes.values():
        print(f"  {node.describe()}  retrieve={node.retrieve}")
    return 0


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def run_find(args: argparse.Namespace) -> int:
    from liverseg_studio.pacs.client import open_client
    from liverseg_studio.pacs.model import Query

    client = open_client(_config(args), args.node, args.via)
    query = Query(args.patient_id, args.patient_name, args.accession, args.date, args.modality, args.study)
    studies = client.find_studies(query)
    rows: list[list[str]] = []
    for st in studies:
        rows.append(["study", st.patient_id, st.patient_name, st.study_date, st.accession, st.modalities,
                     st.description, st.study_uid])
        if not args.no_series:
            for se in client.find_series(st.study_uid):
                n = "" if se.n_instances is None else str(se.n_instances)
                rows.append(["  series", "", "", "", "", se.modality, f"#{se.number} {se.description} ({n} inst.)",
                             se.series_uid])
    print(_table(rows, ["LEVEL", "PATIENT ID", "NAME", "DATE", "ACCESSION", "MODALITY", "DESCRIPTION", "UID"]))
    print(f"{len(studies)} stud{'y' if len(studies) == 1 else 'ies'} on {args.node} ({client.protocol})")
    return 0


def retrieve(client: Any, cache: Any, series: Sequence[Any], *, stream: Any = None) -> list[Path]:
    """Retrieve ``series`` with a progress bar per series on ``stream`` (stderr); their cache folders."""
    from liverseg_studio.pacs.client import retrieve_series
    from liverseg_studio.segment.progress import ProgressBar

    stream = stream if stream is not None else sys.stderr
    out = []
    for se in series:
        bar = ProgressBar(f"{se.modality or '?'} {se.description or se.series_uid}"[:40], stream=stream,
                          unit="instances")
        try:
            out.append(retrieve_series(client, cache, se, progress=bar))
        finally:
            bar.close()
    return out


def run_get(args: argparse.Namespace) -> int:
    from liverseg_studio.core.signals import sigterm_as_interrupt
    from liverseg_studio.pacs.client import open_client
    from liverseg_studio.pacs.config import PacsError

    client = open_client(_config(args), args.node, args.via)
    series = client.find_series(args.study)
    if not series:
        raise PacsError(f"study {args.study} not found on PACS node {args.node!r}")
    if args.series:
        unknown = sorted(set(args.series) - {s.series_uid for s in series})
        if unknown:
            raise PacsError(f"series {unknown[0]} not found in study {args.study} on PACS node {args.node!r}")
        series = [s for s in series if s.series_uid in args.series]
    if args.modality:
        series = [s for s in series if s.modality.upper() == args.modality.upper()]
        if not series:
            raise PacsError(f"study {args.study} has no {args.modality} series on PACS node {args.node!r}")
    with sigterm_as_interrupt():
        folders = retrieve(client, _cache(args), series)
    for se, folder in zip(series, folders):
        n = sum(1 for _ in folder.glob("*.dcm"))
        print(f"{se.modality or '?'} series {se.series_uid}: {n} instance(s) in {folder}")
    return 0


def run_store(args: argparse.Namespace) -> int:
    from liverseg_studio.pacs.client import open_client, store_files

    client = open_client(_config(args), args.node, args.via)
    n = store_files(client, args.files)
    print(f"sent {n} file(s) to {args.node} ({client.protocol})")
    return 0


# -- `liverseg segment` from and to a PACS ---------------------------------------------------------
def add_segment_options(p: argparse.ArgumentParser) -> None:
    """``liverseg segment``'s PACS options (inputs ``pacs://NODE/STUDY_UID[/SERIES_UID]`` need no option)."""
    g = p.add_argument_group("PACS")
    g.add_argument("--from-pacs", metavar="NODE", help="the INPUTs are STUDY_UID[/SERIES_UID] on this PACS node")
    g.add_argument("--store-to", metavar="NODE", help="send each DICOM SEG written to this PACS node")
    g.add_argument("--pacs-config", metavar="FILE", help="PACS node config")
    g.add_argument("--pacs-via", dest="via", choices=("auto", "dimse", "dicomweb"), default="auto",
                   help="protocol for --from-pacs / pacs:// and --store-to")
    add_cache(g)


def resolve_segment_inputs(args: argparse.Namespace) -> list[str]:
    """``args.inputs`` with every PACS reference replaced by its CT series' folder(s) in the cache
    (retrieved first); checks ``--store-to``'s node before any long work."""
    from liverseg_studio.pacs.client import choose_series, is_pacs_ref, open_client, parse_ref
    from liverseg_studio.pacs.config import PacsError

    inputs = [f"pacs://{args.from_pacs}/{i}" if getattr(args, "from_pacs", None) else i for i in args.inputs]
    if not any(is_pacs_ref(i) for i in inputs) and not getattr(args, "store_to", None):
        return list(args.inputs)
    cfg = _config(args)
    if args.store_to:
        cfg.node(args.store_to)
        if args.export is not None and "seg" not in args.export:
            raise PacsError("--store-to sends the DICOM SEG: add seg to --export")
    out: list[str] = []
    clients: dict[str, Any] = {}
    for text in inputs:
        if not is_pacs_ref(text):
            out.append(text)
            continue
        ref = parse_ref(text)
        client = clients.get(ref.node) or clients.setdefault(ref.node, open_client(cfg, ref.node, args.via))
        series = choose_series(client, ref.node, ref.study_uid, ref.series_uid)
        out.extend(str(p) for p in retrieve(client, _cache(args), series))
    return out


def store_segment_outputs(args: argparse.Namespace, seg_paths: Sequence[Path]) -> None:
    """After ``liverseg segment``: send the SEGs written to ``--store-to``."""
    if not getattr(args, "store_to", None) or not seg_paths:
        return
    from liverseg_studio.pacs.client import open_client, store_files

    client = open_client(_config(args), args.store_to, args.via)
    n = store_files(client, seg_paths)
    print(f"sent {n} DICOM SEG(s) to {args.store_to} ({client.protocol})")
