"""``liverseg bench``: measured CPU inference speed (a benchmark, not a test).

In ONE run, on the same input slices and the same weights, it measures the
per-slice latency (median and p90 of repeated batch-1 runs after warm-up) of

* fastai / torch eager fp32,
* torch eager with bf16 autocast,
* ONNX Runtime fp32,
* ONNX Runtime int8 (static QDQ, per-channel; calibrated on the bench slices),
* OpenVINO int8 (the same int8 file, as the openvino backend runs it; when installed),

at each requested input size, and prints their ratios against torch eager
fp32.  The same weights means: the model folder's ``model.safetensors`` when it
has one, else a randomly initialised network of the same architecture (latency
does not depend on the weight values; the table says which).  The shipped
``model.int8.onnx`` is timed too, at its own input size.

End to end, it segments a 512x512x200 CT volume with ``liverseg segment`` in a
subprocess (load, preprocess, infer, post-process, write) and records its wall
time and peak RSS; it also measures the studio's time to window shown and the
time from "Run" to the first result on a 512x512 slice, each in a fresh process.
The end-to-end run's report gives the time of each pipeline stage, and
``end_to_end_vs_torch_fp32`` = torch eager fp32 per-slice latency at the model's
input size / end-to-end seconds per slice.  ``int8_vs_torch_fp32`` is the
default engine's (OpenVINO when installed); the CPU's avx2 / VNNI / AMX flags are printed.

Needs the ``train`` extra (torch, fastai, onnx) for the torch and export rows.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from liverseg_studio.backends.common import resize_chw
from liverseg_studio.core.preprocess import PreprocessSpec, windowed_rgb

LogFn = Callable[[str], None]


@dataclass
class Row:
    name: str
    size: int
    median_s: float
    p90_s: float
    runs: int
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "median_s": self.median_s,
            "p90_s": self.p90_s,
            "runs": self.runs,
            "note": self.note,
        }


@dataclass
class BenchResult:
    cpu: str
    threads: int
    weights: str
    rows: list[Row] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str, size: int) -> Row | None:
        return next((r for r in self.rows if r.name == name and r.size == size), None)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: CPU features that decide int8 / bf16 speed (VNNI: int8 dot products; AMX: matrix tiles).
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


#: The flags the table prints (all of CPU_FLAGS go to the JSON).
SHOWN_FLAGS = ("avx2", "avx512_vnni", "amx_int8", "amx_bf16")


def cpu_flags() -> dict[str, bool]:
    """Which of :data:`CPU_FLAGS` this CPU reports (/proc/cpuinfo; all False elsewhere)."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {f: f in flags for f in CPU_FLAGS}


def _time(fn: Callable[[], Any], repeats: int, warmup: int) -> tuple[float, float, int]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    arr = np.asarray(times)
    return float(np.median(arr)), float(np.percentile(arr, 90)), len(times)


# -- input slices -------------------------------------------------------------------
def sample_hu_volume() -> tuple[np.ndarray, str]:
    """Real CT (LiTS case 117, the sample case) when installed, else a synthetic phantom."""
    from liverseg_studio.sample import sample_case

    case = sample_case()
    if case is not None:
        from liverseg_studio.plugins.manager import get_plugin_manager

        volume = get_plugin_manager().loaders.load(case.image)
        return np.asarray(volume.array, dtype=np.float32), "LiTS case 117 (sample case)"
    z, y, x = 64, 128, 128
    zz, yy, xx = np.mgrid[:z, :y, :x].astype(np.float32)
    hu = np.full((z, y, x), -1000.0, np.float32)
    body = ((yy - 64) / 55) ** 2 + ((xx - 64) / 60) ** 2 <= 1
    hu[body] = 0.0
    liver = ((yy - 60) / 30) ** 2 + ((xx - 45) / 25) ** 2 + ((zz - 32) / 25) ** 2 <= 1
    hu[liver] = 70.0
    hu += np.random.default_rng(0).normal(0, 15, hu.shape).astype(np.float32)
    return hu, "synthetic phantom (sample case not installed)"


def bench_slices(n: int, size: int) -> tuple[np.ndarray, str]:
    """``n`` model inputs (n, 3, size, size) float32 in [0, 1] from CT with liver in it."""
    hu, source = sample_hu_volume()
    z = hu.shape[0]
    idx = np.linspace(z * 0.3, z * 0.7, n).astype(int)
    stack = resize_chw(hu[idx], (size, size))  # the backends' own resampling
    x = windowed_rgb(stack, PreprocessSpec(), as_float=True)  # (n, S, S, 3)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), source


def _bf16_note() -> str:
    try:
        from liverseg_studio.training.train import cpu_has_native_bf16

        return "native bf16" if cpu_has_native_bf16() else "no native bf16 on this CPU (emulated)"
    except Exception:  # noqa: BLE001 - a note only
        return ""


# -- per-slice latency ----------------------------------------------------------------
def bench_latency(
    model_dir: Path | None,
    sizes: Sequence[int],
    threads: int,
    repeats: int,
    log: LogFn = print,
) -> BenchResult:
    import torch

    from liverseg_studio.core.modelcard import read_card
    from liverseg_studio.model.arch import build_normalized_model
    from liverseg_studio.training.export import export_fp32, make_session, quantize_int8

    torch.set_num_threads(threads)
    card = None
    weights = None
    if model_dir is not None and (Path(model_dir) / "model.json").is_file():
        card = read_card(model_dir)
        st = card.file_path("safetensors", Path(model_dir))
        if st.is_file():
            weights = st
    arch = dict(card.architecture) if card else {}
    wdesc = f"{weights}" if weights else "random initialisation, same architecture (no safetensors in the model folder)"
    result = BenchResult(cpu=cpu_model(), threads=threads, weights=wdesc)
    log(f"CPU: {result.cpu}; threads: {threads}; weights: {wdesc}")

    with tempfile.TemporaryDirectory(prefix="liverseg-bench-") as tmp:
        for size in sizes:
            reps = max(3, repeats if size <= 256 else max(3, repeats // 2))
            x, source = bench_slices(8, size)
            result.extra["slices"] = source
            one = torch.from_numpy(x[:1].copy())
            torch.manual_seed(0)
            model = build_normalized_model(size, arch, weights)
            model.eval()

            def eager() -> None:
                with torch.inference_mode():
                    model(one)

            def bf16() -> None:
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                    model(one)

            log(f"  {size}: timing torch eager fp32 ...")
            med, p90, n = _time(eager, reps, warmup=2)
            result.rows.append(Row("torch eager fp32", size, med, p90, n))
            # bf16 autocast is emulated (slow) on CPUs without AVX512-BF16/AMX: fewer runs
            log(f"  {size}: timing torch eager bf16 autocast ...")
            t = time.perf_counter()
            bf16()  # first run; when it is slow (emulated bf16: minutes at 512) it is the one measurement
            first = time.perf_counter() - t
            if first > 5.0:
                med = p90 = first
                n = 1
            else:
                med, p90, n = _time(bf16, 3, warmup=0)
            result.rows.append(Row("torch eager bf16 autocast", size, med, p90, n, note=_bf16_note()))
            fp32_path = Path(tmp) / f"fp32_{size}.onnx"
            export_fp32(model, fp32_path, size)
            int8_path = Path(tmp) / f"int8_{size}.onnx"
            log(f"  {size}: quantising int8 (calibration on the bench slices) ...")
            quantize_int8(fp32_path, int8_path, x)
            for name, path in (("ONNX Runtime fp32", fp32_path), ("ONNX Runtime int8", int8_path)):
                sess = make_session(path, threads)
                feed = {"image": x[:1]}
                log(f"  {size}: timing {name} ...")
                med, p90, n = _time(lambda: sess.run(["logits"], feed), reps, warmup=2)
                result.rows.append(Row(name, size, med, p90, n))
            ov = _openvino_request(int8_path, size, threads, batch=1)
            if ov is not None:
                log(f"  {size}: timing OpenVINO int8 ...")
                med, p90, n = _time(lambda: ov(x[:1]), reps, warmup=2)
                result.rows.append(Row("OpenVINO int8", size, med, p90, n))
            del model

        if card is not None:
            shipped = card.file_path("onnx_int8", Path(model_dir))  # type: ignore[arg-type]
            if shipped.is_file():
                s = card.input_size
                x, _ = bench_slices(4, s)
                sess = make_session(shipped, threads)
                med, p90, n = _time(lambda: sess.run(["logits"], {"image": x[:1]}), repeats, warmup=2)
                result.rows.append(Row("shipped model.int8.onnx", s, med, p90, n, note=card.name))
                # the engines as `liverseg segment` runs them: batches of 4 slices, seconds per slice
                x4 = x[:4]
                med, p90, n = _time(lambda: sess.run(["logits"], {"image": x4}), repeats, warmup=1)
                result.rows.append(Row("shipped int8 ONNX Runtime, per slice of a batch of 4", s, med / 4, p90 / 4, n))
                ov1 = _openvino_request(shipped, s, threads, batch=1)
                if ov1 is not None:
                    med, p90, n = _time(lambda: ov1(x[:1]), repeats, warmup=2)
                    result.rows.append(Row("shipped model.int8.onnx OpenVINO", s, med, p90, n, note=card.name))
                ov = _openvino_request(shipped, s, threads, batch=4)
                if ov is not None:
                    med, p90, n = _time(lambda: ov(x4), repeats, warmup=1)
                    result.rows.append(Row("shipped int8 OpenVINO, per slice of a batch of 4", s, med / 4, p90 / 4, n))
    return result


def _openvino_request(path: Path, size: int, threads: int, batch: int) -> Callable[[np.ndarray], Any] | None:
    """``run(x)`` on the CPU with OpenVINO, configured as the openvino backend is; None without OpenVINO.

    ``batch`` > 1 compiles that static batch; shorter inputs are padded, as the backend does.
    """
    try:
        from liverseg_openvino_backend import OpenVinoBackend
    except ImportError:
        return None
    from liverseg_studio.core.modelcard import ModelCard

    backend = OpenVinoBackend(batch_size=batch)
    try:
        backend._open(Path(path), threads, ModelCard(name="bench", input_size=size))
    except Exception:  # noqa: BLE001 - a missing/broken OpenVINO is a missing row, not a failed bench
        return None
    return backend.run_batch


# -- end to end ----------------------------------------------------------------------------
def make_bench_volume(path: Path, shape: tuple[int, int, int] = (200, 512, 512), tiles: int = 1) -> Path:
    """A 512x512x200 CT volume (NIfTI, 0.8 x 0.8 x 1.5 mm) resampled from the sample case;
    ``tiles`` > 1 repeats it along z (``tiles=5``: the 512x512x1000 volume of the memory rows)."""
    import nibabel as nib
    from scipy import ndimage

    hu, _ = sample_hu_volume()
    z, y, x = shape
    vol = ndimage.zoom(hu, (z / hu.shape[0], y / hu.shape[1], x / hu.shape[2]), order=1).astype(np.int16)
    if tiles > 1:
        vol = np.tile(vol, (int(tiles), 1, 1))
    affine = np.diag([0.8, 0.8, 1.5, 1.0])
    nib.save(nib.Nifti1Image(vol.T, affine), str(path))
    return path


def segment_peak_rss(volume: Path, out_dir: Path, model_dir: Path | None, threads: int) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``liverseg segment volume --out out_dir`` in a subprocess."""
    cmd = [_py(), "-m", "liverseg_studio.cli", "segment", str(volume), "--out", str(out_dir)]
    cmd += ["--threads", str(threads)] + (["--model", str(model_dir)] if model_dir is not None else [])
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_kb = 0
    # The child's own high-water mark (VmHWM, reset by exec), polled until it exits.
    # (RUSAGE_CHILDREN would count the forked copy of this process, torch and all.)
    while proc.poll() is None:
        peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - t
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"liverseg segment failed ({proc.returncode}): {stderr.strip()[-2000:]}")
    return wall, peak_kb / 1024.0


def bench_memory(
    model_dir: Path | None, threads: int, log: LogFn = print, *, measured_200: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Peak RSS of ``liverseg segment`` on 512x512x200 and 512x512x1000 NIfTI, and MB per extra slice.

    The 1000-slice volume is the 200-slice bench volume repeated five times along z.  ``measured_200``
    (wall seconds, peak MB) is the 200-slice run already made by :func:`bench_end_to_end`: not repeated.
    """
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="liverseg-bench-mem-") as tmp:
        for n, tiles in ((200, 1), (1000, 5)):
            if n == 200 and measured_200 is not None:
                wall, peak = measured_200
            else:
                vol = make_bench_volume(Path(tmp) / f"bench_512x512x{n}.nii.gz", tiles=tiles)
                log(f"  memory: liverseg segment on a 512x512x{n} volume ...")
                wall, peak = segment_peak_rss(vol, Path(tmp) / f"out{n}", model_dir, threads)
                vol.unlink()
            out[f"peak_rss_mb_{n}"] = peak
            out[f"seconds_{n}"] = wall
    out["rss_mb_per_slice"] = (out["peak_rss_mb_1000"] - out["peak_rss_mb_200"]) / 800.0
    return out


def _vm_hwm_kb(pid: int) -> int:
    """Peak resident set size (kB) of a running process, from /proc (0 when unavailable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _py() -> str:
    return sys.executable


def bench_end_to_end(model_dir: Path | None, threads: int, log: LogFn = print) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="liverseg-bench-e2e-") as tmp:
        vol = make_bench_volume(Path(tmp) / "bench_512x512x200.nii.gz")
        log("  end to end: liverseg segment on a 512x512x200 volume ...")
        wall, peak = segment_peak_rss(vol, Path(tmp) / "out", model_dir, threads)
        out["volume_seconds"] = wall
        out["volume_slices"] = 200
        out["end_to_end_s_per_slice"] = wall / 200
        out["peak_rss_mb"] = peak
        reports = list((Path(tmp) / "out").glob("*_report.json"))
        if reports:
            report = json.loads(reports[0].read_text())
            out["volume_timings"] = report.get("timings_s", {})
            out["end_to_end_engine"] = (report.get("model") or {}).get("backend")
    return out


_FIRST_RESULT = r"""
import sys, time, numpy as np
t0 = time.perf_counter()
from liverseg_studio.core.volume import Volume
from liverseg_studio.plugins.manager import get_plugin_manager
from liverseg_studio.segment.pipeline import segment_volume
rng = np.random.default_rng(0)
hu = rng.normal(40, 30, (1, 512, 512)).astype(np.float32)
vol = Volume(hu, np.diag([0.7, 0.7, 5.0, 1.0]))
backend = get_plugin_manager().backends.create("auto")  # the studio's default engine
model = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
backend.load(model, threads=int(sys.argv[2]))
segment_volume(vol, backend)
print(time.perf_counter() - t0)
"""

_WINDOW_SHOWN = r"""
import os, sys, time
t0 = float(os.environ["LIVERSEG_BENCH_T0"])
from liverseg_studio.qt.app import create_window
from PySide6.QtWidgets import QApplication
app = QApplication.instance() or QApplication([])
w = create_window()
w.show()
app.processEvents()
print(time.time() - t0)
"""


def bench_studio(model_dir: Path | None, threads: int, log: LogFn = print) -> dict[str, Any]:
    out: dict[str, Any] = {}
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    log("  studio: time to window shown (fresh process) ...")
    env["LIVERSEG_BENCH_T0"] = repr(time.time())
    proc = subprocess.run([_py(), "-c", _WINDOW_SHOWN], capture_output=True, text=True, env=env)
    if proc.returncode == 0:
        out["window_shown_s"] = float(proc.stdout.strip().splitlines()[-1])
    else:
        out["window_shown_error"] = proc.stderr.strip()[-500:]
    log("  studio: Run -> first result on a 512x512 slice (fresh process, model load included) ...")
    proc = subprocess.run(
        [_py(), "-c", _FIRST_RESULT, str(model_dir or ""), str(threads)], capture_output=True, text=True
    )
    if proc.returncode == 0:
        out["first_result_s"] = float(proc.stdout.strip().splitlines()[-1])
    else:
        out["first_result_error"] = proc.stderr.strip()[-500:]
    return out


# -- report --------------------------------------------------------------------------------
def summary(result: BenchResult, model_input_size: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "cpu": result.cpu,
        "threads": result.threads,
        "weights": result.weights,
        "rows": [r.to_json() for r in result.rows],
    }
    for size in sorted({r.size for r in result.rows}):
        base = result.row("torch eager fp32", size)
        if base is None:
            continue
        for r in result.rows:
            if r.size == size:
                data.setdefault("ratios_vs_torch_fp32", {}).setdefault(str(size), {})[r.name] = base.median_s / r.median_s
    base = result.row("torch eager fp32", model_input_size)
    int8 = result.row("ONNX Runtime int8", model_input_size)
    ov = result.row("OpenVINO int8", model_input_size)
    data["cpu_flags"] = cpu_flags()
    # the default engine's int8 (OpenVINO when installed: what `liverseg segment` runs)
    default = ov or int8
    data["default_engine"] = "openvino" if ov else "onnx"
    if base and default:
        data["int8_vs_torch_fp32"] = base.median_s / default.median_s
    if base and int8:
        data["int8_vs_torch_fp32_onnxruntime"] = base.median_s / int8.median_s
    if base and ov:
        data["int8_vs_torch_fp32_openvino"] = base.median_s / ov.median_s
    data.update(result.extra)
    e2e = data.get("end_to_end_s_per_slice")
    if base and isinstance(e2e, (int, float)) and e2e > 0:
        data["end_to_end_vs_torch_fp32"] = base.median_s / e2e
    return data


#: Stages of `liverseg segment` (its report's timings_s) shown by the bench, in pipeline order.
STAGES = (
    ("load", "load (reader)"),
    ("backend_preprocess", "preprocess (window, equalise, resize)"),
    ("backend_inference", "inference (engine)"),
    ("backend_postprocess", "labels (softmax, upsample, argmax)"),
    ("postprocess", "3D post-processing"),
    ("volumetry", "volumetry (lesion table)"),
)


def format_stages(data: dict[str, Any]) -> list[str]:
    """Per-stage seconds of the end-to-end run (from its report), total and per slice."""
    timings = data.get("volume_timings") or {}
    n = data.get("volume_slices") or 0
    if not timings or not n:
        return []
    lines = [f"  stages ({data.get('end_to_end_engine', '?')} engine):"]
    for key, label in STAGES:
        if isinstance(timings.get(key), (int, float)):
            v = float(timings[key])
            lines.append(f"    {label:40s} {v:7.2f} s  {1000 * v / n:7.1f} ms/slice")
    return lines


def format_table(result: BenchResult, data: dict[str, Any]) -> str:
    flags = data.get("cpu_flags") or cpu_flags()
    lines = [
        f"CPU: {result.cpu}   threads: {result.threads}",
        "CPU flags: " + " ".join(f"{k}={'yes' if flags.get(k) else 'no'}" for k in SHOWN_FLAGS),
        f"weights: {result.weights}",
        f"slices: {data.get('slices', '?')}",
        "",
        f"{'engine':28s} {'size':>5s} {'median s':>9s} {'p90 s':>8s} {'runs':>5s} {'speed-up vs torch fp32':>23s}",
    ]
    for r in result.rows:
        ratio = data.get("ratios_vs_torch_fp32", {}).get(str(r.size), {}).get(r.name)
        rs = f"{ratio:.2f}x" if ratio else "-"
        note = f"  ({r.note})" if r.note else ""
        lines.append(f"{r.name:28s} {r.size:5d} {r.median_s:9.3f} {r.p90_s:8.3f} {r.runs:5d} {rs:>23s}{note}")
    lines.append("")

    def fmt(key: str, unit: str, digits: int = 3) -> str:
        v = data.get(key)
        return f"{v:.{digits}f} {unit}" if isinstance(v, (int, float)) else f"n/a ({data.get(key.replace('_s', '') + '_error', 'not measured')})"

    lines += [
        f"int8 vs torch eager fp32 (model input size, {data.get('default_engine', 'onnx')}): "
        f"{data.get('int8_vs_torch_fp32', float('nan')):.2f}x"
        f"  (ONNX Runtime {data.get('int8_vs_torch_fp32_onnxruntime', float('nan')):.2f}x, "
        f"OpenVINO {data.get('int8_vs_torch_fp32_openvino', float('nan')):.2f}x)",
        f"512x512x200 volume end to end (liverseg segment): {fmt('volume_seconds', 's', 1)}",
        f"  per slice: {fmt('end_to_end_s_per_slice', 's')}   (the paper: about 2.1 s per image)",
        f"  end to end vs torch eager fp32 per slice: {fmt('end_to_end_vs_torch_fp32', 'x', 2)}",
        *format_stages(data),
        f"  peak RSS: {fmt('peak_rss_mb', 'MB', 0)}",
        f"peak RSS of liverseg segment, 512x512x200 NIfTI: {fmt('peak_rss_mb_200', 'MB', 0)} (target <= 800 MB)",
        f"peak RSS of liverseg segment, 512x512x1000 NIfTI: {fmt('peak_rss_mb_1000', 'MB', 0)} (target <= 1500 MB)",
        f"  growth: {fmt('rss_mb_per_slice', 'MB per slice', 3)} (target <= 0.5)",
        f"studio window shown: {fmt('window_shown_s', 's', 2)}",
        f"Run -> first result, 512x512 slice (incl. model load): {fmt('first_result_s', 's', 2)}",
    ]
    return "\n".join(lines)


def run_bench(
    model_dir: Path | None,
    sizes: Sequence[int],
    threads: int,
    repeats: int = 10,
    json_out: Path | None = None,
    end_to_end: bool = True,
    log: LogFn = print,
) -> dict[str, Any]:
    result = bench_latency(model_dir, sizes, threads, repeats, log)
    input_size = 256
    if model_dir is not None and (Path(model_dir) / "model.json").is_file():
        from liverseg_studio.core.modelcard import read_card

        input_size = read_card(model_dir).input_size
    if end_to_end:
        e2e = bench_end_to_end(model_dir, threads, log)
        result.extra.update(e2e)
        result.extra.update(
            bench_memory(model_dir, threads, log, measured_200=(e2e["volume_seconds"], e2e["peak_rss_mb"]))
        )
        result.extra.update(bench_studio(model_dir, threads, log))
    data = summary(result, input_size)
    data["model_input_size"] = input_size
    print(format_table(result, data))
    if json_out is not None:
        from liverseg_studio.core.io import atomic_write_text

        json_out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json_out, json.dumps(data, indent=2), overwrite=True)
        log(f"wrote {json_out}")
    return data
