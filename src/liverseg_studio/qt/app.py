"""Studio entry point (``liverseg-studio``, ``python -m liverseg_studio``, ``make run``)."""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication.instance() or QApplication(list(argv) if argv is not None else sys.argv)
    window = QMainWindow()
    window.setWindowTitle("LiverSeg Studio")
    window.resize(1280, 800)
    window.show()
    return app.exec()
