"""Export -> Send to PACS…: the DICOM SEG of the result (with the reader's corrections) to a node,
written to a temporary file and sent (C-STORE / STOW-RS) in a worker."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QInputDialog, QMessageBox

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.qt.worker import Worker, WorkerFailure


def send_seg(config: Any, node: str, result: Any, *, progress: Any = None, is_cancelled: Any = None) -> str:
    """Write ``result``'s SEG to a temporary folder and send it; returns its SOPInstanceUID."""
    import pydicom

    from liverseg_studio.pacs.client import open_client, store_files
    from liverseg_studio.segment import exporters

    client = open_client(config, node)
    with tempfile.TemporaryDirectory(prefix="liverseg-send-") as tmp:
        path = exporters.write_dicom_seg(result, Path(tmp) / "seg.dcm")
        store_files(client, [path], progress=progress)
        return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def send_to_pacs(window: Any, node: str | None = None, config: Any = None) -> Worker | None:
    from liverseg_studio.pacs.config import load_config
    from liverseg_studio.segment import exporters

    result = window.result
    if result is None:
        window.statusBar().showMessage("Nothing to send yet: run a segmentation first.", 4000)
        return None
    if window.editing is not None:
        result = window.editing.export_result(result)
    if not exporters.is_dicom(result.volume):
        QMessageBox.warning(window, "Send to PACS", "A DICOM SEG needs a DICOM source image.")
        return None
    try:
        config = config or load_config()
    except LiversegError as exc:
        QMessageBox.warning(window, "Send to PACS", str(exc))
        return None
    if node is None:
        names = list(config.nodes)
        if not names:
            QMessageBox.warning(window, "Send to PACS", "No PACS node configured (see README, 'With a PACS').")
            return None
        node, ok = QInputDialog.getItem(window, "Send to PACS", "Node:", names, 0, False)
        if not ok:
            return None
    worker = Worker(send_seg, config, node, result, kind="pacs-send")
    worker.signals.returned.connect(
        lambda res: window.statusBar().showMessage(f"DICOM SEG {res.value} sent to {node}", 8000))
    worker.signals.errored.connect(lambda f: _failed(window, f))
    window.statusBar().showMessage(f"Sending the DICOM SEG to {node}…")
    window.loader_runner.start(worker)
    return worker


def _failed(window: Any, failure: WorkerFailure) -> None:
    text = " ".join(str(failure.error).split())
    QMessageBox.warning(window, "Send to PACS failed", text)
