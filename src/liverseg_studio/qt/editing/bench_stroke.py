"""Benchmark: time of the brush's handler per mouse move on a 512 x 512 x 200 volume.

``python -m liverseg_studio.qt.editing.bench_stroke`` (offscreen by default).
It builds the real viewer and :class:`~liverseg_studio.qt.editing.controller.EditController`
on a synthetic CT volume (0.7 x 0.7 x 2.5 mm), drags a brush stroke of
``--moves`` mouse moves along a circle through the liver region, and prints the
handler time per move (median / p95 / max; the handler paints the capsule and
marks the changed rectangle of the panel for repainting), in wall-clock time
and in the thread's CPU time (on a shared, overloaded machine the wall-clock
tail is the scheduler's), against one frame at 60 Hz (16.7 ms), the time Qt
then takes to repaint, the 3D brush, the eraser, the end of the stroke (undo
step) and the live volumetry (run in a worker after each stroke).

A benchmark, not a test: it prints measured numbers and ratios and asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Sequence

import numpy as np

FRAME_MS = 1000.0 / 60.0


def _stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (
        f"median {np.median(a):6.2f} ms  p95 {np.percentile(a, 95):6.2f} ms  max {a.max():6.2f} ms  "
        f"(median = {np.median(a) / FRAME_MS:.2f} frame, p95 = {np.percentile(a, 95) / FRAME_MS:.2f} frame)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m liverseg_studio.qt.editing.bench_stroke", description=__doc__)
    parser.add_argument("--shape", default="200,512,512", help="z,y,x (default 200,512,512)")
    parser.add_argument("--moves", type=int, default=400, help="mouse moves per stroke (default 400)")
    parser.add_argument("--radius", type=float, default=10.0, help="brush radius in mm (default 10)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication

    from liverseg_studio.core.volume import Volume
    from liverseg_studio.qt.editing.controller import EditController
    from liverseg_studio.qt.viewer import SliceViewer

    nz, ny, nx = (int(v) for v in args.shape.split(","))
    app = QApplication.instance() or QApplication([sys.argv[0]])
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    hu = np.full((nz, ny, nx), -1000, dtype=np.int16)
    yy, xx = np.mgrid[0:ny, 0:nx]
    body = ((yy - ny / 2) / (0.42 * ny)) ** 2 + ((xx - nx / 2) / (0.46 * nx)) ** 2 <= 1
    liver = ((yy - 0.47 * ny) / (0.25 * ny)) ** 2 + ((xx - 0.36 * nx) / (0.2 * nx)) ** 2 <= 1
    labels = np.zeros((nz, ny, nx), dtype=np.uint8)
    for z in range(nz):
        sl = hu[z]
        sl[body] = 0
        sl[liver] = 60
        sl += rng.integers(-10, 11, size=(ny, nx), dtype=np.int16)
        labels[z][liver] = 1
    affine = np.diag([-0.7, -0.7, 2.5, 1.0])
    volume = Volume(array=hu, affine=affine, source="synthetic", loader="bench")
    print(f"volume {nx} x {ny} x {nz} (0.7 x 0.7 x 2.5 mm), built in {time.perf_counter() - t0:.1f} s")

    viewer = SliceViewer()
    viewer.resize(1400, 800)
    viewer.show()
    viewer.set_volume(volume)
    app.processEvents()
    c = EditController(viewer)
    c.begin(volume, labels)
    app.processEvents()

    def stroke(tool: str, label: int, brush_3d: bool) -> tuple[list[float], list[float], list[float], float]:
        c.set_tool(tool)
        c.set_label(label)
        c.set_radius(args.radius)
        c.set_brush_3d(brush_3d)
        cy, cx, rad = 0.47 * ny, 0.36 * nx, 0.18 * ny
        pts = [
            (cy + rad * math.sin(2 * math.pi * i / args.moves), cx + rad * math.cos(2 * math.pi * i / args.moves))
            for i in range(args.moves + 1)
        ]
        handler, cpu, repaint = [], [], []
        c.press(*pts[0])
        for y, x in pts[1:]:
            t, tc = time.perf_counter(), time.thread_time()
            c.move_to(y, x)
            handler.append((time.perf_counter() - t) * 1000)
            cpu.append((time.thread_time() - tc) * 1000)
            tc = time.thread_time()
            app.processEvents()  # Qt repaints the panels here, after the handler
            repaint.append((time.thread_time() - tc) * 1000)
        t = time.perf_counter()
        c.release()
        return handler, cpu, repaint, (time.perf_counter() - t) * 1000

    step_px = 2 * math.pi * 0.18 * ny / args.moves
    print(f"stroke: {args.moves} mouse moves of ~{step_px:.1f} px, brush radius {args.radius:g} mm")
    for name, tool, label, b3d in (
        ("brush, tumour (2D)", "brush", 2, False),
        ("eraser, liver (2D)", "eraser", 1, False),
        ("brush, tumour (3D sphere)", "brush", 2, True),
    ):
        handler, cpu, repaint, end_ms = stroke(tool, label, b3d)
        print(f"  {name:26s} handler per move, wall: {_stats(handler)}")
        print(f"  {'':26s} handler per move, CPU:  {_stats(cpu)}")
        print(f"  {'':26s} Qt repaint per move (CPU): median {np.median(repaint):.2f} ms; end of stroke "
              f"(undo step): {end_ms:.1f} ms; undo history {c.undo_stack.nbytes / 1e6:.2f} MB")
    t = time.perf_counter()
    stats = c.stats_now()
    print(f"volumetry of the whole volume (in a worker after each stroke): {(time.perf_counter() - t) * 1000:.0f} ms "
          f"({stats.n_lesions} lesions)")
    t = time.perf_counter()
    c.set_tool("fill")
    c.fill(int(0.47 * ny), int(0.36 * nx))
    print(f"flood fill of one slice: {(time.perf_counter() - t) * 1000:.1f} ms")
    t = time.perf_counter()
    for _ in range(3):
        c.undo()
    print(f"undo (per step): {(time.perf_counter() - t) * 1000 / 3:.1f} ms")
    c.shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
