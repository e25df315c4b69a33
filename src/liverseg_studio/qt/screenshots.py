"""Write the studio's screenshots: ``python -m liverseg_studio.qt.screenshots docs/screenshots``.

``make screenshots`` runs this under Xvfb (or Qt's offscreen platform when
Xvfb is missing).  It drives the real window: the start screen, then the
sample case (LiTS case 117) segmented with the default model through the default
engine (``BackendRegistry.default_name``), or with the ``threshold`` example backend while no default model is
installed (the image and the report then say so).  Settings go to a temporary
file, never the user's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

SIZE = (1680, 1020)


def _wait(app: Any, signals: Sequence[Any], timeout_s: float) -> tuple[int, tuple[Any, ...]]:
    """Run the event loop until one of ``signals`` fires; (index, args) or (-1, ()) on timeout."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got: list[tuple[int, tuple[Any, ...]]] = []
    conns = []
    for i, sig in enumerate(signals):

        def slot(*args: Any, i: int = i) -> None:
            got.append((i, args))
            loop.quit()

        sig.connect(slot)
        conns.append((sig, slot))
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    if not got:
        loop.exec()
    for sig, slot in conns:
        sig.disconnect(slot)
    return got[0] if got else (-1, ())


def _settle(app: Any, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)


def _grab(window: Any, path: Path, app: Any) -> Path:
    _settle(app)
    pixmap = window.grab()
    if not pixmap.save(str(path), "PNG"):
        raise OSError(f"cannot write {path}")
    print(f"wrote {path} ({pixmap.width()}x{pixmap.height()})")
    return path


def _editing_shot(window: Any, app: Any, out_dir: Path, tmp_dir: Path) -> Path:
    """05: correcting the segmentation: a tumour brush stroke across the liver, the brush outline."""
    import numpy as np

    viewer = window.studio.viewer
    c = window.editing.controller
    viewer.set_layout_mode("focus")
    c.set_tool("brush")
    c.set_label(2)
    _, sy, _ = c.spacing()
    c.set_radius(5.0 * sy)  # five pixels (mm when the spacing is known)
    z = viewer.slice_index
    ys, xs = np.nonzero(c.labels[z] >= 1)
    if len(ys):
        # a tumour stroke across the middle of the liver, the brush outline where it ends
        y0, x0 = int(np.median(ys)), int(np.median(xs))
        pts = [(y0 + round(6 * np.sin(k / 4)), x0 + k) for k in range(-14, 15)]
        c.press(*pts[0])
        for y, x in pts[1:]:
            c.move_to(y, x)
        c.release()
        _wait(app, [c.stats_changed], 60)  # the live volumetry (a worker) counts the stroke
        viewer.hover(y0 + 16, x0 + 10)
        c._show_outline(viewer.seg_grey_item, y0 + 16, x0 + 10)
    path = _grab(window, out_dir / "05_case117_editing.png", app)
    window.export("mask", str(tmp_dir / "edited_mask.nii.gz"))  # saved: closing does not ask
    c.set_tool(None)
    viewer.set_layout_mode("three")
    return path


def take_screenshots(out_dir: Path, backend: str | None = None) -> list[Path]:
    """Drive the studio and write the PNGs; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    settings_file = Path(tempfile.mkdtemp(prefix="liverseg-shots-")) / "studio.ini"
    os.environ["LIVERSEG_SETTINGS"] = str(settings_file)

    from liverseg_studio.qt.app import create_app
    from liverseg_studio.qt.main_window import MainWindow
    from liverseg_studio.qt.settings import StudioSettings
    from liverseg_studio.qt.tasks import default_model_dir
    from liverseg_studio.sample import sample_case

    app = create_app([sys.argv[0]])
    settings = StudioSettings(settings_file)
    case = sample_case()
    if case is None:
        raise SystemExit("the sample case (liver-ct-segmentation-package) is not installed: run `make setup`")
    settings.add_recent_file(case.image)
    window = MainWindow(settings=settings)
    window.resize(*SIZE)
    window.show()
    written = [_grab(window, out_dir / "01_start_screen.png", app)]

    window.open_path(str(case.image))
    idx, args = _wait(app, [window.case_loaded, window.task_failed], 120)
    if idx != 0:
        raise SystemExit(f"could not open the sample case: {args[0].error if args else 'timeout'}")
    names = window.manager.backends.names()
    if backend is None:
        default = window.manager.backends.default_name()  # the default engine, as everywhere
        backend = default if default_model_dir() is not None and default else "threshold"
    if backend not in names:
        raise SystemExit(f"backend {backend!r} is not installed (available: {', '.join(names)})")
    window.set_backend(backend)
    window.set_model_dir(None)
    print(f"segmenting the sample case with the {backend} backend…")
    window.run_segmentation()
    idx, args = _wait(app, [window.segmentation_finished, window.task_failed], 600)
    if idx != 0:
        raise SystemExit(f"segmentation failed: {args[0].error if args else 'timeout'}")
    result = args[0]
    viewer = window.studio.viewer
    if result.stats.lesions:
        viewer.set_slice(result.stats.lesions[0].centroid_slice)
    else:
        import numpy as np

        counts = np.count_nonzero(result.labels.reshape(result.labels.shape[0], -1), axis=1)
        viewer.set_slice(int(np.argmax(counts)))
    viewer.apply_preset("Abdomen")
    # a cursor readout as a user would see it, over the liver
    import numpy as np

    z = viewer.slice_index
    ys, xs = np.nonzero(result.labels[z] >= 1)
    if len(ys):
        k = len(ys) // 2
        viewer.hover(int(ys[k]), int(xs[k]))
    written.append(_grab(window, out_dir / "02_case117_segmented.png", app))

    viewer.set_layout_mode("focus")
    written.append(_grab(window, out_dir / "03_case117_segmentation_large.png", app))
    viewer.set_layout_mode("three")

    window.about_dock.show()
    written.append(_grab(window, out_dir / "04_contact_about.png", app))
    window.about_dock.hide()
    written.append(_editing_shot(window, app, out_dir, settings_file.parent))
    from liverseg_studio.qt.view3d.screenshots import view3d_shots  # 06-07: ircad-1.01 in 3D (issue 25)

    written += view3d_shots(window, app, out_dir)
    window.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m liverseg_studio.qt.screenshots", description=__doc__)
    parser.add_argument("out_dir", nargs="?", default="docs/screenshots", type=Path)
    parser.add_argument("--backend", default=None, help="backend to segment with (default: the default engine with the "
                        "default model, else threshold)")
    args = parser.parse_args(argv)
    take_screenshots(args.out_dir, args.backend)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
