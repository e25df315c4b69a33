"""``liverseg plugins``: every plugin, what it registers, and its status."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list plugins, their loaders/backends and status")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from liverseg_studio.plugins.manager import get_plugin_manager

    pm = get_plugin_manager()
    records = list(pm.records.values())
    if args.json:
        print(json.dumps([asdict(r) for r in records], indent=2))
        return 0
    for r in records:
        dist = f"{r.distribution} {r.version}".strip() or "-"
        print(f"{r.name}  [{r.status}]  ({dist})")
        for name in r.loaders:
            spec = pm.loaders.get(name)
            exts = " ".join(spec.extensions) or ("folder" if spec.reads_directories else "")
            print(f"    loader   {name:14s} {exts}")
        for name in r.backends:
            spec = pm.backends.get(name)
            print(f"    backend  {name:14s} {spec.description}")
        if r.error:
            print(f"    error: {r.error}")
    return 1 if pm.problems() and not records else 0
