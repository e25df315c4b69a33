"""The worker side of ``liverseg cohort``.

:class:`ModelPlugin` is a Dask ``WorkerPlugin``: registered once by the client,
it runs on every worker (and on every worker that joins or is restarted later)
and loads the backend and model there once (``commands.common.load_backend``,
as ``liverseg segment`` does).  Tasks find the loaded backend through
``get_worker().plugins[name]``; the model never travels with a task.

:func:`run_study` is one task: load -> ``segment_volume`` -> ``export_outputs``
with ``liverseg segment``'s functions and rules (planned outputs checked first,
loader warnings and skipped formats noted in the report, a DICOM SEG that
highdicom cannot make is optional unless ``--export`` asked for it).  It
returns the study's table row; a bad input is a ``failed`` row, not an
exception.  When the worker closes (Ctrl-C on the client, cluster shut down)
the plugin's teardown cancels the running segmentation at its next slice
batch, and the atomic writes leave nothing partial behind.

Outputs of a study are "claimed" (``.liverseg-cohort/claims/<name>.json`` in
the output folder names the input) before they are written, so that a study
redone by a later run or by Dask after a lost worker may replace its own
earlier outputs, and never a file the cohort did not write (unless
``--overwrite``).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin, get_worker

from liverseg_studio.cohort.inputs import Study
from liverseg_studio.cohort.table import FAILED, OK

STATE_DIR = ".liverseg-cohort"


def claims_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / STATE_DIR / "claims"


@dataclass(frozen=True)
class ModelSpec:
    """Which backend and model every worker loads."""

    backend: str
    model_dir: str | None = None
    #: Inference threads per worker (``--threads-per-worker``).
    threads: int | None = None
    trust_pickle: bool = False

    def plugin_name(self) -> str:
        import hashlib

        key = json.dumps([self.backend, self.model_dir, self.threads, self.trust_pickle])
        return "liverseg-model-" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class TaskSettings:
    """What every task needs besides its study (small: sent with each task)."""

    out_dir: str
    plugin_name: str
    formats: tuple[str, ...]
    explicit_formats: bool = False
    overwrite: bool = False
    postprocess: bool = True
    min_component_mm3: float = 0.0
    load_options: Any = None


class ModelPlugin(WorkerPlugin):
    """Loads the model once per worker process; counts loads and tasks (for tests and diagnostics)."""

    #: Registering the same spec again (a rerun on the same cluster) keeps the loaded model.
    idempotent = True

    def __init__(self, spec: ModelSpec, *, ignore_sigint: bool = False) -> None:
        self.spec = spec
        #: Workers of our own LocalCluster leave Ctrl-C to the client, which closes them cleanly.
        self.ignore_sigint = ignore_sigint
        self.backend: Any = None
        self.error = ""
        self.loads = 0
        self.tasks = 0
        self.identity: dict[str, str] = {}

    async def setup(self, worker: Any) -> None:
        self.stop = threading.Event()
        if self.ignore_sigint and threading.current_thread() is threading.main_thread():
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
        # in a thread: a slow model load must not block the worker's heartbeats
        await asyncio.get_running_loop().run_in_executor(None, self._load)

    def _load(self) -> None:
        from liverseg_studio.commands.common import load_backend
        from liverseg_studio.plugins.manager import get_plugin_manager
        from liverseg_studio.segment.pipeline import model_info

        s = self.spec
        try:
            backend = load_backend(
                get_plugin_manager(), s.backend, s.model_dir, threads=s.threads, trust_pickle=s.trust_pickle
            )
        except Exception as exc:  # noqa: BLE001 - reported to the client, which stops with one line
            self.error = " ".join(str(exc).split()) or type(exc).__name__
            return
        self.backend = backend
        self.loads += 1
        info = model_info(backend)
        self.identity = {
            "engine": str(getattr(backend, "name", s.backend)),
            "model_name": info.name,
            "model_version": info.version,
            "model_sha256": info.sha256,
        }

    def teardown(self, worker: Any) -> None:
        stop = getattr(self, "stop", None)
        if stop is not None:
            stop.set()  # the running segmentation stops at its next slice batch
        self.backend = None


def worker_state(plugin_name: str, dask_worker: Any = None) -> dict[str, Any]:
    """For ``client.run``: the plugin's identity, error, loads and tasks on this worker."""
    worker = dask_worker if dask_worker is not None else get_worker()
    plugin = worker.plugins.get(plugin_name)
    if plugin is None:
        return {"error": "the model plugin is not installed on this worker", "loads": 0, "tasks": 0, "pid": os.getpid()}
    return {
        "error": plugin.error,
        "loads": plugin.loads,
        "tasks": plugin.tasks,
        "pid": os.getpid(),
        **plugin.identity,
    }


def _claimed_by(out_dir: Path, name: str, path: str) -> bool:
    claim = claims_dir(out_dir) / f"{name}.json"
    try:
        data = json.loads(claim.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("path") == path


def _claim(out_dir: Path, name: str, study: Study) -> None:
    from liverseg_studio.core.io import atomic_write_text

    folder = claims_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{name}.json", json.dumps({"id": study.id, "path": study.path}) + "\n", overwrite=True)


def base_row(study: Study) -> dict[str, Any]:
    return {"id": study.id, **dict(study.extra), "path": study.path}


def failed_row(study: Study, error: str, identity: dict[str, str] | None = None, seconds: float | None = None) -> dict[str, Any]:
    row = base_row(study)
    row.update(identity or {})
    row.update(
        status=FAILED,
        error=" ".join(str(error).split()),
        seconds=seconds,
        finished_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return row


def run_study(study: Study, settings: TaskSettings) -> dict[str, Any]:
    """One task: segment ``study`` with this worker's model; returns its table row."""
    from liverseg_studio.core.errors import BackendError, LiversegError

    worker = get_worker()
    plugin = worker.plugins.get(settings.plugin_name)
    if plugin is None or plugin.backend is None:
        why = plugin.error if plugin is not None and plugin.error else "the model is not loaded on this worker"
        raise BackendError(f"worker {worker.address}: {why}")  # retried elsewhere by Dask
    plugin.tasks += 1
    identity = dict(plugin.identity)
    where = f"{socket.gethostname()}:{os.getpid()}"
    t0 = time.perf_counter()
    try:
        row = _segment_and_export(study, settings, plugin)
    except LiversegError as exc:
        msg = str(exc) if study.path in str(exc) else f"{study.path}: {exc}"
        row = failed_row(study, msg, identity)
    except MemoryError:
        row = failed_row(study, f"{study.path}: not enough memory", identity)
    except Exception as exc:  # noqa: BLE001 - one study's bug must not stop the cohort
        row = failed_row(study, f"{study.path}: internal error: {type(exc).__name__}: {exc}", identity)
    row.update(identity)
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row["worker"] = where
    row.setdefault("finished_utc", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    return row


def _segment_and_export(study: Study, settings: TaskSettings, plugin: ModelPlugin) -> dict[str, Any]:
    """``liverseg segment``'s steps for one input (its public functions, the same order and rules)."""
    from liverseg_studio.plugins.manager import get_plugin_manager

    t0 = time.perf_counter()
    volume = get_plugin_manager().loaders.load(Path(study.path), settings.load_options)
    try:
        return _segment_loaded(study, settings, plugin, volume, time.perf_counter() - t0)
    finally:
        close = getattr(volume, "close", None)
        if callable(close):  # a lazy volume's temporary files
            close()


def _segment_loaded(study: Study, settings: TaskSettings, plugin: ModelPlugin, volume: Any, load_s: float) -> dict[str, Any]:
    from liverseg_studio.core.errors import LiversegError
    from liverseg_studio.core.io import check_can_write
    from liverseg_studio.segment.exporters import (
        export_outputs,
        planned_outputs,
        skipped_formats,
    )
    from liverseg_studio.segment.pipeline import segment_volume

    out_dir = Path(settings.out_dir)
    path = Path(study.path)
    plan = planned_outputs(volume, study.name, out_dir, settings.formats)
    overwrite = settings.overwrite or _claimed_by(out_dir, study.name, study.path)
    check_can_write(plan.values(), overwrite=overwrite)
    src = path.resolve()
    if any(p.resolve() == src for p in plan.values()):
        raise LiversegError(f"{path}: an output would replace the input; choose another --out")
    notes = []
    if volume.meta.get("warning"):
        notes.append(f"loader warning: {volume.meta['warning']}")
    for fmt, why in skipped_formats(volume, settings.formats).items():
        notes.append(f"{fmt} not written: {why}")
    _claim(out_dir, study.name, study)
    stop = getattr(plugin, "stop", None)
    result = segment_volume(
        volume,
        plugin.backend,
        postprocess=settings.postprocess,
        min_component_mm3=settings.min_component_mm3,
        is_cancelled=stop.is_set if stop is not None else None,
    )
    # a DICOM SEG that cannot be made fails the study only when asked for (as segment)
    outcome = export_outputs(
        result,
        out_dir,
        study.name,
        settings.formats,
        explicit_formats=settings.explicit_formats,
        overwrite=overwrite,
        input_path=path,
        load_seconds=load_s,
        notes=notes,
    )
    written, failed_exports, not_written, warnings = outcome.written, outcome.failed, outcome.skipped, outcome.warnings
    st = result.stats
    mask = written.get("mask_nifti") or written.get("mask_png")
    row = base_row(study)
    row.update(
        status=FAILED if failed_exports else OK,
        error="; ".join(f"{fmt} not written: {why}" for fmt, why in failed_exports.items()),
        warnings="; ".join([*warnings, *(f"{fmt} not written: {why}" for fmt, why in not_written.items())]),
        liver_ml=st.liver_ml,
        tumour_ml=st.tumour_ml,
        tumour_burden_percent=st.tumour_burden_percent,
        n_lesions=st.n_lesions,
        liver_voxels=st.liver_voxels,
        tumour_voxels=st.tumour_voxels,
        n_slices=volume.n_slices,
        mask=Path(mask).name if mask else "",
        outputs=";".join(sorted(Path(p).name for p in written.values())),
    )
    return row
