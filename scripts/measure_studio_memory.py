"""Peak RSS of the studio opening a volume and segmenting it (offscreen; issue 17).

    QT_QPA_PLATFORM=offscreen python scripts/measure_studio_memory.py VOLUME [--timeout S]

Opens VOLUME in a real MainWindow (the same load and segmentation workers as a
user's clicks), runs the default model on it, and prints the process's peak
RSS (VmHWM) after loading and after segmenting.  ``liverseg_studio.bench``
makes the 512x512x1000 volume (``make_bench_volume(path, tiles=5)``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def vm_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("volume", type=Path)
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from liverseg_studio.qt.app import create_window

    app = QApplication.instance() or QApplication([])
    win = create_window()
    win.show()
    app.processEvents()
    state: dict[str, object] = {}
    win.case_loaded.connect(lambda v: state.setdefault("volume", v))
    win.segmentation_finished.connect(lambda r: state.setdefault("result", r))
    win.task_failed.connect(lambda e: state.setdefault("error", e))

    def wait(key: str) -> bool:
        t_end = time.monotonic() + args.timeout
        while key not in state and "error" not in state and time.monotonic() < t_end:
            app.processEvents()
            time.sleep(0.02)
        return key in state

    t0 = time.perf_counter()
    win.open_path(str(args.volume))
    if not wait("volume"):
        print(f"loading failed: {state.get('error')}", file=sys.stderr)
        return 1
    vol = state["volume"]
    print(f"loaded {vol.shape} {getattr(vol.array, 'dtype', '?')} in {time.perf_counter() - t0:.1f} s; "
          f"RSS {vm_kb('VmRSS') / 1024:.0f} MB, peak {vm_kb('VmHWM') / 1024:.0f} MB", flush=True)
    t1 = time.perf_counter()
    win.run_segmentation()
    if not wait("result"):
        print(f"segmentation failed: {state.get('error')}", file=sys.stderr)
        return 1
    for _ in range(50):  # let the views update with the result
        app.processEvents()
        time.sleep(0.02)
    print(f"segmented in {time.perf_counter() - t1:.1f} s; RSS {vm_kb('VmRSS') / 1024:.0f} MB, "
          f"peak RSS (VmHWM) {vm_kb('VmHWM') / 1024:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
