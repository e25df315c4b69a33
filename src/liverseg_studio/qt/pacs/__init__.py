"""The studio's PACS actions: File -> Open from PACS… and Export -> Send to PACS….

``pacs_actions(window)`` is the main window's only hook: it returns the File-menu action and adds
"Send to PACS…" to ``window.export_menu``.  The dialogs live in ``qt.pacs.dialog`` and
``qt.pacs.send``; network work runs in ``qt.worker`` workers (cancel, progress).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction


def pacs_actions(window: Any) -> list[QAction]:
    open_act = QAction("Open from &PACS…", window)
    open_act.setStatusTip("Find a study on a PACS node, retrieve a series and open it")
    open_act.triggered.connect(lambda: _open(window))
    send_act = QAction("Send to PACS…", window)
    send_act.setStatusTip("Send the DICOM SEG (with your corrections) to a PACS node")
    send_act.triggered.connect(lambda: _send(window))
    window.export_menu.addSeparator()
    window.export_menu.addAction(send_act)
    window.pacs_send_action = send_act
    return [open_act]


def _open(window: Any) -> None:
    from liverseg_studio.qt.pacs.dialog import open_from_pacs

    open_from_pacs(window)


def _send(window: Any) -> None:
    from liverseg_studio.qt.pacs.send import send_to_pacs

    send_to_pacs(window)
