"""``liverseg listen``: a DICOM node that segments the CT series sent to it.

A C-STORE SCP (pynetdicom).  A series is complete when none of its instances arrived for --quiet
seconds; complete CT series go through the same pipeline as ``liverseg segment`` and the DICOM SEG
goes to --send-to (a node of the PACS config).  WORK holds the spool, the outputs and a journal:
a series is done exactly once across kill and restart.  Log lines are JSON on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liverseg_studio.commands.common import add_trust_pickle_option, load_backend, non_negative_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("listen", help="a DICOM node (C-STORE SCP) that segments the CT series it receives",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("--work", required=True, metavar="DIR", help="spool, outputs and journal (created if missing)")
    p.add_argument("--ae-title", metavar="AET", help="our AE title (default: [local] ae_title of the config)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, metavar="N", help="port (default: [local] port of the config)")
    p.add_argument("--quiet", type=non_negative_float, default=10.0, metavar="S",
                   help="a series is complete after S seconds without a new instance (default 10)")
    p.add_argument("--allow", action="append", default=[], metavar="AET",
                   help="calling AE title allowed to send (repeatable; default: any)")
    p.add_argument("--send-to", metavar="NODE", help="PACS node the DICOM SEG is sent to (C-STORE or STOW-RS)")
    p.add_argument("--pacs-config", metavar="FILE", help="PACS node config")
    p.add_argument("--via", choices=("auto", "dimse", "dicomweb"), default="auto", help="protocol for --send-to")
    p.add_argument("--tls-cert", metavar="PEM", help="serve DICOM over TLS with this certificate")
    p.add_argument("--tls-key", metavar="PEM", help="its private key")
    p.add_argument("--tls-ca", metavar="PEM", help="require client certificates signed by this CA")
    p.add_argument("--once", action="store_true", help="handle what arrives, then exit (exit 2 if any series failed)")
    p.add_argument("--max-wait", type=non_negative_float, metavar="S",
                   help="with --once: exit 2 when nothing arrived for S seconds")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: resources/models/default)")
    p.add_argument("--backend", default="auto", metavar="NAME", help="backend (default auto)")
    p.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads for inference")
    add_trust_pickle_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.core.signals import sigterm_as_interrupt
    from liverseg_studio.pacs.client import open_client, store_files
    from liverseg_studio.pacs.config import load_config, server_ssl_context
    from liverseg_studio.pacs.listen import ListenOptions, Listener, Log, pipeline_segmenter
    from liverseg_studio.plugins.manager import get_plugin_manager

    cfg = load_config(args.pacs_config)
    send = None
    if args.send_to:
        client = open_client(cfg, args.send_to, args.via)

        def send(path: Path) -> None:
            store_files(client, [path])

    if args.tls_key and not args.tls_cert:
        raise LiversegError("--tls-key needs --tls-cert")
    ssl_context = server_ssl_context(args.tls_cert, args.tls_key or "", args.tls_ca or "") if args.tls_cert else None
    log = Log(sys.stderr)
    pm = get_plugin_manager()
    backend = load_backend(pm, args.backend, args.model, threads=args.threads, trust_pickle=args.trust_pickle)
    log("engine", backend=getattr(backend, "name", args.backend))
    opts = ListenOptions(
        work=Path(args.work), ae_title=args.ae_title or cfg.local.ae_title, host=args.host,
        port=args.port if args.port is not None else cfg.local.port, quiet_s=args.quiet, allow=tuple(args.allow),
        once=args.once, max_wait_s=args.max_wait, ssl_context=ssl_context, send=send,
        destination=args.send_to or "", segment=pipeline_segmenter(backend),
    )
    listener = Listener(opts, log)
    with sigterm_as_interrupt():
        try:
            return listener.serve()
        except KeyboardInterrupt:
            log("interrupted", level="warning")
            return 130
