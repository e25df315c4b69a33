"""Screenshots of the 3D view and a resection plan on a real volume (3D-IRCADb 1.01), for the README.

Called by :mod:`liverseg_studio.qt.screenshots` (``make screenshots``) after its own shots, or alone:
``python -m liverseg_studio.qt.view3d.screenshots docs/screenshots``.  It opens the DICOM series of
ircad-1.01 from the shared data folder (``LIVERSEG_DATA`` or ``../shared/data`` beside the
repository; never committed) with the data set's *reference* labels opened as a mask (File > Open
mask), so that the picture shows the data set's surfaces, not a model's.  Skipped, with a line
saying why, where the data or OpenGL is missing (Qt's offscreen platform has no OpenGL: run it
under Xvfb, as ``make screenshots`` does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

DATA_ENV = "LIVERSEG_DATA"


def ircad_case() -> Path | None:
    """The ircad-1.01 folder (``ct/`` DICOM series and ``labels.nii.gz``), or None."""
    roots = [Path(os.environ[DATA_ENV])] if os.environ.get(DATA_ENV) else []
    roots.append(Path(__file__).resolve().parents[4] / ".." / "shared" / "data")
    for root in roots:
        case = root / "volumes" / "ircad-1.01"
        if (case / "ct").is_dir() and (case / "labels.nii.gz").is_file():
            return case.resolve()
    return None


def view3d_shots(window: Any, app: Any, out_dir: Path) -> list[Path]:
    """06: the 3D view of ircad-1.01 (a lesion picked); 07: a resection plan with its FLR figures."""
    from PySide6.QtCore import Qt

    from liverseg_studio.core.resection import ResectionPlan
    from liverseg_studio.qt.screenshots import _grab, _settle, _wait
    from liverseg_studio.qt.view3d.panel import gl_status
    from liverseg_studio.qt.view3d.studio import install_view3d

    case = ircad_case()
    if case is None:
        print("note: 3D-IRCADb 1.01 not found (set LIVERSEG_DATA): 3D screenshots skipped")
        return []
    ok, why = gl_status()
    if not ok:
        print(f"note: {why}: 3D screenshots skipped (run under Xvfb)")
        return []
    studio = getattr(window, "view3d", None) or install_view3d(window)
    window.open_path(str(case / "ct"))
    idx, args = _wait(app, [window.case_loaded, window.task_failed], 300)
    if idx != 0:
        print(f"note: ircad-1.01 did not open ({args[0].error if args else 'timeout'}): 3D screenshots skipped")
        return []
    if not window.editing.open_mask(str(case / "labels.nii.gz")):
        print("note: the ircad-1.01 labels did not open onto the CT: 3D screenshots skipped")
        return []
    result = window.result
    studio.dock.show()
    window.resizeDocks([studio.dock], [760], Qt.Orientation.Horizontal)
    _settle(app, 0.5)
    panel = studio.panel
    if not panel.surfaces:
        _wait(app, [panel.built], 300)
    panel.set_view("anterior")
    lesion = result.stats.lesions[0] if result.stats.lesions else None
    if lesion is not None:
        studio.select_lesion(lesion.id)
        panel.highlight(lesion.id)
    written = [_grab(window, out_dir / "06_ircad101_3d_view.png", app)]
    # a sagittal plane through the liver's centre, the patient's right (RAS +x) resected: on this
    # patient two lesions lie across it, so the picture shows the touch warnings too
    import numpy as np

    plan = ResectionPlan.through_centre(np.asarray(result.labels), result.volume.affine, normal=(1.0, 0.0, 0.0))
    studio.resection.set_plan(plan)
    panel.highlight(None)
    panel.set_view("reset")
    written.append(_grab(window, out_dir / "07_ircad101_resection_plan.png", app))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m liverseg_studio.qt.view3d.screenshots", description=__doc__)
    parser.add_argument("out_dir", nargs="?", default="docs/screenshots", type=Path)
    args = parser.parse_args(argv)
    settings_file = Path(tempfile.mkdtemp(prefix="liverseg-shots-")) / "studio.ini"
    os.environ["LIVERSEG_SETTINGS"] = str(settings_file)
    from liverseg_studio.qt.app import create_app
    from liverseg_studio.qt.main_window import MainWindow
    from liverseg_studio.qt.screenshots import SIZE
    from liverseg_studio.qt.settings import StudioSettings

    app = create_app([sys.argv[0]])
    window = MainWindow(settings=StudioSettings(settings_file))
    window.resize(*SIZE)
    window.show()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    view3d_shots(window, app, args.out_dir)
    window.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
