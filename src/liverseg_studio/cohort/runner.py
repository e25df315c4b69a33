"""The client side of ``liverseg cohort``: Dask's own primitives, no scheduler of ours.

1. A ``LocalCluster`` (worker processes on 127.0.0.1, sized to the machine's
   cores and memory) or ``Client(address)`` of an existing cluster.
2. ``client.register_plugin(ModelPlugin)``: every worker loads the model once;
   ``client.run`` asks each worker which model it loaded (engine + sha256; a
   worker that could not load it stops the run with one line).
3. Resume (:func:`~liverseg_studio.cohort.table.plan_resume`): the table is
   rewritten once with the rows kept; the other studies are submitted with
   ``client.map(run_study, ..., retries=1)`` (a killed worker's tasks are
   rerun by Dask) and their rows appended as ``as_completed`` yields them.
4. Ctrl-C / SIGTERM: the futures are cancelled, the cluster closed (its
   workers' plugin teardown cancels the running segmentations), temporary
   files of dead processes are swept, and the table holds what was done.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TextIO

from liverseg_studio.cohort.inputs import Study
from liverseg_studio.cohort.table import (
    FAILED,
    OK,
    PARQUET_NAME,
    TABLE_NAME,
    CohortTable,
    columns_for,
    plan_resume,
    read_table,
    write_parquet,
)
from liverseg_studio.cohort.task import STATE_DIR, ModelPlugin, ModelSpec, TaskSettings, claims_dir, failed_row, run_study, worker_state
from liverseg_studio.core.errors import BackendError, LiversegError
from liverseg_studio.core.io import TEMP_PREFIX
from liverseg_studio.core.signals import sigterm_as_interrupt
from liverseg_studio.segment.progress import format_seconds

#: Memory one worker may need for a large CT (512 x 512 x 200 peaks at ~1.2 GB with onnx).
MEMORY_PER_WORKER = 2 * 1024**3


@dataclass
class CohortConfig:
    out_dir: Path
    model: ModelSpec
    formats: tuple[str, ...]
    explicit_formats: bool = False
    overwrite: bool = False
    postprocess: bool = True
    min_component_mm3: float = 0.0
    load_options: Any = None
    redo_failed: bool = False
    #: ``tcp://host:8786`` of an existing cluster; None: a LocalCluster.
    scheduler: str | None = None
    #: LocalCluster worker processes (None: sized to the machine).
    n_workers: int | None = None
    #: Seconds to wait for the first worker of an existing cluster.
    wait_workers_s: float = 120.0
    dashboard: bool = True


@dataclass
class CohortSummary:
    total: int = 0
    submitted: int = 0
    ok: int = 0
    failed: int = 0
    skipped_ok: int = 0
    skipped_failed: int = 0
    seconds: float = 0.0
    table: Path | None = None
    parquet: Path | None = None
    dashboard: str = ""
    workers: int = 0
    #: Rows of the cohort's studies now in the table whose status is failed.
    failed_in_table: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def studies_per_minute(self) -> float:
        done = self.ok + self.failed
        return 60.0 * done / self.seconds if self.seconds > 0 and done else 0.0


def machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def machine_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return None


def local_workers(threads_per_worker: int | None) -> int:
    """Worker processes for this machine: cores / inference threads, bounded by memory."""
    tpw = max(1, threads_per_worker or 1)
    n = max(1, machine_cpus() // tpw)
    mem = machine_memory()
    if mem:
        n = min(n, max(1, int(mem * 0.8) // MEMORY_PER_WORKER))
    return n


def has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


# -- output folder hygiene ------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_temps(out_dir: Path) -> list[Path]:
    """Remove temporary files (``core.io`` prefix) whose writing process no longer exists on this
    machine: what a killed worker left behind.  Files of live processes are never touched."""
    removed = []
    for folder in (out_dir, claims_dir(out_dir)):
        if not folder.is_dir():
            continue
        for p in folder.glob(f"{TEMP_PREFIX}*"):
            pid_text = p.name[len(TEMP_PREFIX) :].split("-", 1)[0]
            if not pid_text.isdigit() or _pid_alive(int(pid_text)):
                continue
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


@contextlib.contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """One cohort run per output folder at a time (a lock file naming the pid; a dead pid's lock is stale)."""
    state = out_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    lock = state / "lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _pid_alive(pid):
                raise LiversegError(f"{out_dir}: another liverseg cohort (pid {pid}) is writing here") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        break
    else:  # pragma: no cover - a race with another run
        raise LiversegError(f"{out_dir}: cannot take the cohort lock {lock}")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()


# -- progress ---------------------------------------------------------------------------
class CohortProgress:
    """Studies done / total, studies per minute and the estimated finish, on ``stream``.

    On a terminal one line is redrawn; otherwise a line is printed at every 10 %
    and at least every 30 s (logs stay short for large cohorts)."""

    def __init__(self, total: int, stream: TextIO, *, width: int = 24) -> None:
        self.total = total
        self.stream = stream
        self.width = width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.done = 0
        self.failed = 0
        self._last_step = -1
        self._last_time = 0.0

    def rate_per_min(self) -> float:
        elapsed = time.perf_counter() - self.start
        return 60.0 * self.done / elapsed if elapsed > 0 and self.done else 0.0

    def line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(round(frac * self.width))
        rate = self.rate_per_min()
        eta = 60.0 * (self.total - self.done) / rate if rate > 0 else float("nan")
        finish = ""
        if rate > 0 and self.done < self.total:
            finish = time.strftime(" (%H:%M)", time.localtime(time.time() + eta))
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"cohort [{bar:.<{self.width}}] {self.done}/{self.total} studies{failed}, "
            f"{rate:.1f} studies/min, ETA {format_seconds(eta)}{finish}"
        )

    def update(self, failed: bool) -> None:
        self.done += 1
        self.failed += int(failed)
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K" + ("\n" if self.done >= self.total else ""))
        else:
            step = int(10 * self.done / max(self.total, 1))
            if step == self._last_step and now - self._last_time < 30 and self.done < self.total:
                return
            self._last_step, self._last_time = step, now
            self.stream.write(self.line() + "\n")
        self.stream.flush()


# -- the run ---------------------------------------------------------------------------------
@contextlib.contextmanager
def open_client(config: CohortConfig, n_todo: int, err: TextIO) -> Iterator[Any]:
    """A ``distributed.Client``: of ``config.scheduler``, else of a new LocalCluster."""
    import logging

    from distributed import Client, LocalCluster

    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise LiversegError(f"cannot reach the Dask scheduler {config.scheduler}: {exc}") from exc
        try:
            if not client.scheduler_info().get("workers"):
                print(f"waiting for workers at {config.scheduler}…", file=err)
            try:
                client.wait_for_workers(1, timeout=config.wait_workers_s)
            except TimeoutError:
                raise LiversegError(
                    f"no Dask worker joined {config.scheduler} within {config.wait_workers_s:g} s"
                ) from None
            yield client
        finally:
            client.close()
        return
    threads = config.model.threads or 1
    n = config.n_workers or local_workers(threads)
    dashboard = "127.0.0.1:8787" if config.dashboard and has_bokeh() else None
    env = {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,  # one study at a time per worker; inference uses `threads`
        processes=True,
        host="127.0.0.1",  # loopback only
        dashboard_address=dashboard,
        # without a dashboard the scheduler's small HTTP server (health, metrics) takes any free port
        scheduler_kwargs=None if dashboard else {"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
        env=env,
    )
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _model_identity(client: Any, plugin_name: str) -> dict[str, str]:
    states = client.run(worker_state, plugin_name)
    errors = {w: s["error"] for w, s in states.items() if s.get("error")}
    if errors:
        worker, why = next(iter(errors.items()))
        raise BackendError(f"worker {worker} could not load the model: {why}")
    keys = ("engine", "model_name", "model_version", "model_sha256")
    identities = {tuple(s.get(k, "") for k in keys) for s in states.values()}
    if len(identities) != 1:
        raise BackendError(f"the workers loaded different models: {sorted(identities)}")
    return dict(zip(keys, identities.pop()))


def run_cohort(
    studies: Sequence[Study],
    config: CohortConfig,
    *,
    client: Any = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> CohortSummary:
    """Segment ``studies`` (see the module docstring); ``client`` overrides ``config``'s cluster."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    out_dir = Path(config.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LiversegError(f"{out_dir}: --out must be a folder")
    from liverseg_studio.core.io import prepare_output_dir

    prepare_output_dir(out_dir)  # cannot create, read-only, full: one line, before any inference
    summary = CohortSummary(total=len(studies), table=out_dir / TABLE_NAME)
    with folder_lock(out_dir), sigterm_as_interrupt():
        sweep_dead_temps(out_dir)
        try:
            if client is not None:
                _run(client, studies, config, summary, out, err, on_row, True, False)
            else:
                # a LocalCluster has a dashboard only with bokeh; an existing cluster shows its own
                show = bool(config.scheduler) or (config.dashboard and has_bokeh())
                with open_client(config, len(studies), err) as own:
                    _run(own, studies, config, summary, out, err, on_row, show, not config.scheduler)
        finally:
            sweep_dead_temps(out_dir)  # after the workers are gone: what a killed one left
            _, rows = read_table(out_dir / TABLE_NAME)
            if rows:
                header, _ = read_table(out_dir / TABLE_NAME)
                summary.parquet = write_parquet(rows, header, out_dir / PARQUET_NAME)
            ids = {s.id for s in studies}
            last = {r.get("id"): r for r in rows}
            summary.failed_in_table = sum(1 for i in ids if (last.get(i) or {}).get("status") == FAILED)
    return summary


def _run(
    client: Any,
    studies: Sequence[Study],
    config: CohortConfig,
    summary: CohortSummary,
    out: TextIO,
    err: TextIO,
    on_row: Callable[[dict[str, Any]], None] | None,
    show_dashboard: bool,
    own_cluster: bool,
) -> None:
    from distributed import as_completed

    out_dir = Path(config.out_dir)
    spec = config.model
    plugin_name = spec.plugin_name()
    client.register_plugin(ModelPlugin(spec, ignore_sigint=own_cluster), name=plugin_name)
    identity = _model_identity(client, plugin_name)
    summary.workers = len(client.scheduler_info().get("workers", {}))
    if show_dashboard:
        with contextlib.suppress(Exception):  # no dashboard: no link
            if client.scheduler_info().get("services", {}).get("dashboard"):
                summary.dashboard = client.dashboard_link
    model = identity["model_name"] or identity["engine"]
    sha = identity["model_sha256"]
    print(
        f"cohort: {len(studies)} studies, {summary.workers} worker(s), model {model}"
        + (f" (sha256 {sha[:12]}…)" if sha else "")
        + f", engine {identity['engine']}",
        file=err,
    )
    if summary.dashboard:
        print(f"Dask dashboard: {summary.dashboard}", file=err)

    header, rows = read_table(out_dir / TABLE_NAME)
    extra = [c for c in header if c not in columns_for()] + [c for s in studies for c, _ in s.extra]
    columns = columns_for(extra)
    plan = plan_resume(
        studies, rows, out_dir, engine=identity["engine"], model_sha256=sha, redo_failed=config.redo_failed
    )
    summary.skipped_ok, summary.skipped_failed = plan.skipped_ok, plan.skipped_failed
    table = CohortTable(out_dir / TABLE_NAME, columns)
    table.rewrite(plan.kept)
    skipped = plan.skipped_ok + plan.skipped_failed
    if skipped:
        print(
            f"resume: {plan.skipped_ok} done and {plan.skipped_failed} failed studies kept from {TABLE_NAME}"
            + (" (--redo-failed retries failures)" if plan.skipped_failed else ""),
            file=err,
        )
    redo = sum(1 for s in plan.todo if s.id in (plan.reasons or {}))
    if redo:
        print(f"resume: {redo} studies redone (model changed, outputs missing or failed before)", file=err)
    todo = plan.todo
    summary.submitted = len(todo)
    if not todo:
        print("nothing to do: every study is in the table", file=err)
        return
    settings = TaskSettings(
        out_dir=str(out_dir),
        plugin_name=plugin_name,
        formats=tuple(config.formats),
        explicit_formats=config.explicit_formats,
        overwrite=config.overwrite,
        postprocess=config.postprocess,
        min_component_mm3=config.min_component_mm3,
        load_options=config.load_options,
    )
    token = uuid.uuid4().hex[:8]
    keys = [f"liverseg-{s.name}-{token}" for s in todo]
    progress = CohortProgress(len(todo), err)
    t0 = time.perf_counter()
    futures = client.map(run_study, todo, settings=settings, key=keys, retries=1, pure=False)
    study_of = {f.key: s for f, s in zip(futures, todo)}
    try:
        with table:
            for fut in as_completed(futures):
                study = study_of[fut.key]
                try:
                    row = fut.result()
                except Exception as exc:  # noqa: BLE001 - retries exhausted, worker lost...: a failed row
                    row = failed_row(study, f"{study.path}: task failed: {type(exc).__name__}: {exc}", identity)
                table.append(row)
                fut.release()
                ok = row.get("status") == OK
                summary.ok += ok
                summary.failed += not ok
                summary.rows.append(row)
                _print_row(row, out)
                progress.update(failed=not ok)
                if on_row is not None:
                    on_row(row)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        summary.seconds = time.perf_counter() - t0


def _print_row(row: dict[str, Any], out: TextIO) -> None:
    if row.get("status") != OK:
        print(f"FAILED {row.get('id')}: {row.get('error')}", file=out, flush=True)
        return

    def ml(v: Any, vox: Any) -> str:
        return f"{v:.1f} mL" if isinstance(v, (int, float)) else f"{vox} voxels"

    burden = row.get("tumour_burden_percent")
    burden_text = f" ({burden:.1f} % burden)" if isinstance(burden, (int, float)) else ""
    print(
        f"ok {row.get('id')}: liver {ml(row.get('liver_ml'), row.get('liver_voxels'))}, tumour "
        f"{ml(row.get('tumour_ml'), row.get('tumour_voxels'))}{burden_text}, {row.get('n_lesions')} lesion(s), "
        f"{row.get('seconds', 0):.1f} s",
        file=out,
        flush=True,
    )
