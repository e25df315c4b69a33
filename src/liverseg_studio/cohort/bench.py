"""Cohort throughput benchmark (not a test): studies per minute with 1 and 2 LocalCluster workers.

``python -m liverseg_studio.cohort.bench`` (``make bench-cohort``) segments the same
synthetic cohort (N volumes resampled from the sample case, 512 x 512 x S) with
``run_cohort`` on a LocalCluster of 1, then 2 worker processes (one inference
thread each unless --threads-per-worker), and prints studies/min (from the first
submitted task to the last row: cluster start-up and the per-worker model load
are reported apart) and the scaling ratio.  While it runs, /tmp/liverseg-bench.lock
exists (the session's background training pauses while it does).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

LOCK = Path("/tmp/liverseg-bench.lock")


def bench_cohort(
    *,
    studies: int = 4,
    slices: int = 4,
    size: int = 512,
    backend: str = "auto",
    model: str | None = None,
    workers: tuple[int, ...] = (1, 2),
    threads: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    from liverseg_studio.bench import cpu_model, make_bench_volume
    from liverseg_studio.cohort.inputs import collect_studies
    from liverseg_studio.cohort.runner import CohortConfig, run_cohort
    from liverseg_studio.cohort.task import ModelSpec
    from liverseg_studio.plugins.manager import get_plugin_manager
    from liverseg_studio.segment.exporters import DEFAULT_FORMATS

    result: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "backend": backend,
        "model": model or "default",
        "studies": studies,
        "shape_zyx": [slices, size, size],
        "threads_per_worker": threads,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="liverseg-cohort-bench-") as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        first = make_bench_volume(src / "case0.nii.gz", shape=(slices, size, size))
        for i in range(1, studies):
            shutil.copy(first, src / f"case{i}.nii.gz")
        cohort = collect_studies([str(src)], get_plugin_manager().loaders, Path(tmp) / "out")
        for n in workers:
            out = Path(tmp) / f"out{n}"
            config = CohortConfig(
                out_dir=out,
                model=ModelSpec(backend=backend, model_dir=model, threads=threads),
                formats=DEFAULT_FORMATS,
                n_workers=n,
                dashboard=False,
            )
            load_before = os.getloadavg()[0]
            t0 = time.perf_counter()
            with open(os.devnull, "w") as devnull:
                s = run_cohort(cohort, config, out=devnull, err=devnull)
            wall = time.perf_counter() - t0
            if s.failed:
                raise RuntimeError(f"{s.failed} studies failed: {[r.get('error') for r in s.rows if r.get('error')]}")
            run = {
                "workers": n,
                "studies_per_min": round(s.studies_per_minute, 3),
                "tasks_seconds": round(s.seconds, 2),
                "wall_seconds_with_cluster_start": round(wall, 2),
                "mean_study_seconds": round(sum(float(r["seconds"]) for r in s.rows) / max(len(s.rows), 1), 2),
                # other work on the machine: 1-minute load average before and after the run
                "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }
            result["runs"][str(n)] = run
            log(
                f"{n} worker(s): {run['studies_per_min']:.2f} studies/min ({studies} studies in {s.seconds:.1f} s; "
                f"{wall:.1f} s with cluster start-up and model loads; {run['mean_study_seconds']:.1f} s per study; "
                f"load average {run['load_average'][0]:.1f} -> {run['load_average'][1]:.1f} on {os.cpu_count()} cores)"
            )
    runs = result["runs"]
    if "1" in runs and "2" in runs and runs["1"]["studies_per_min"] > 0:
        result["scaling_2_over_1"] = round(runs["2"]["studies_per_min"] / runs["1"]["studies_per_min"], 3)
        log(f"scaling 2 workers / 1 worker: {result['scaling_2_over_1']:.2f}x (ideal 2.00x)")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m liverseg_studio.cohort.bench", description=__doc__)
    p.add_argument("--studies", type=int, default=4)
    p.add_argument("--slices", type=int, default=4)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--backend", default="auto", help="default auto: the default engine, as for segment")
    p.add_argument("--model", default=None)
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--settle", type=float, default=30.0, help="seconds to wait after taking the lock (default 30)")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    args = p.parse_args(argv)
    deadline = time.monotonic() + 600
    while LOCK.exists() and time.monotonic() < deadline:  # another benchmark is running: do not overlap it
        print(f"{LOCK} exists (another benchmark); waiting", file=sys.stderr)
        time.sleep(15)
    LOCK.touch()
    held = threading.Event()

    def keep_lock() -> None:  # another benchmark's clean-up may remove the shared file: hold it
        while not held.wait(5.0):
            LOCK.touch()

    keeper = threading.Thread(target=keep_lock, daemon=True)
    keeper.start()
    try:
        if args.settle > 0:
            print(f"{LOCK} taken; waiting {args.settle:g} s for background work to pause", file=sys.stderr)
            time.sleep(args.settle)
        result = bench_cohort(
            studies=args.studies,
            slices=args.slices,
            size=args.size,
            backend=args.backend,
            model=args.model,
            threads=args.threads_per_worker,
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        held.set()
        keeper.join()
        LOCK.unlink(missing_ok=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
