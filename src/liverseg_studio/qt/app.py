"""Studio entry point (``liverseg-studio``, ``python -m liverseg_studio``, ``make run``).

Start-up stays fast: only Qt and the start screen are imported here; the
viewer (pyqtgraph) is imported when the first case opens and torch or
onnxruntime only inside the first segmentation.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from liverseg_studio.qt.main_window import MainWindow


def create_app(argv: Sequence[str] | None = None) -> "QApplication":
    """The QApplication (reused if one exists), named and themed."""
    from PySide6.QtWidgets import QApplication

    from liverseg_studio.qt.settings import APPLICATION, ORGANISATION
    from liverseg_studio.qt.theme import apply_theme

    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
        app.setOrganizationName(ORGANISATION)
        app.setApplicationName(APPLICATION)
        app.setApplicationDisplayName(APPLICATION)
        apply_theme(app)
    return app  # type: ignore[return-value]


def create_window() -> "MainWindow":
    from liverseg_studio.qt.main_window import MainWindow
    from liverseg_studio.qt.view3d.studio import install_view3d

    window = MainWindow()
    install_view3d(window)  # the 3D view and resection dock (issue 25)
    return window


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="liverseg-studio", description="LiverSeg Studio desktop app")
    parser.add_argument("path", nargs="?", help="a CT image, volume or DICOM folder to open")
    parser.add_argument("--sample", action="store_true", help="open the sample case (LiTS case 117)")
    args, _unknown = parser.parse_known_args(list(argv))  # Qt's own options pass through
    return args


def install_excepthook(window: "MainWindow") -> None:
    """Unexpected exceptions in Qt slots: log them and show a dialog; the studio keeps running."""
    import logging
    import traceback

    log = logging.getLogger("liverseg_studio")
    showing = [False]

    def hook(exc_type: type[BaseException], exc: BaseException, tb: object) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)  # type: ignore[arg-type]
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))  # type: ignore[arg-type]
        if showing[0]:
            return
        showing[0] = True
        try:
            from PySide6.QtWidgets import QMessageBox

            QMessageBox.critical(
                window,
                "Unexpected error",
                f"{exc_type.__name__}: {exc}\n\nThe studio keeps running; the details were written to the log.",
            )
        finally:
            showing[0] = False

    sys.excepthook = hook


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    from liverseg_studio.qt.platform_check import missing_xcb_message

    problem = missing_xcb_message()  # Qt would abort with a long message: say what to install
    if problem:
        print(problem, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app([sys.argv[0], *argv])
    window = create_window()
    install_excepthook(window)
    window.show()
    if args.path:
        window.open_path(args.path)
    elif args.sample:
        window.open_sample()
    return int(app.exec())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
