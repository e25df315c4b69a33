"""File -> Open from PACS…: query a node (C-FIND / QIDO-RS), pick a study or series, retrieve it into
the cache in a worker (progress, cancel, resume), then open the series as any DICOM folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.qt.worker import TaskRunner, Worker, WorkerFailure, WorkerResult

UID_ROLE = Qt.ItemDataRole.UserRole


def _find(config: Any, node: str, query: Any, *, progress: Any = None, is_cancelled: Any = None) -> list[Any]:
    """Studies with their series (a worker job)."""
    from dataclasses import replace

    from liverseg_studio.pacs.client import open_client

    client = open_client(config, node)
    out = []
    for st in client.find_studies(query):
        if is_cancelled and is_cancelled():
            break
        out.append(replace(st, series=tuple(client.find_series(st.study_uid))))
    return out


def _retrieve(config: Any, node: str, cache_dir: Path, series: list[Any], *, progress: Any = None,
              is_cancelled: Any = None) -> list[Path]:
    from liverseg_studio.pacs.cache import SeriesCache
    from liverseg_studio.pacs.client import open_client, retrieve_series

    client = open_client(config, node)
    cache = SeriesCache(cache_dir)
    return [retrieve_series(client, cache, s, progress=progress, is_cancelled=is_cancelled) for s in series]


class PacsDialog(QDialog):
    """Query form, study/series tree, retrieval with progress; ``opened`` is the folder to open."""

    def __init__(self, parent: Any = None, config: Any = None, cache_dir: Path | None = None) -> None:
        super().__init__(parent)
        from liverseg_studio.pacs.config import default_cache_dir, load_config

        self.setWindowTitle("Open from PACS")
        self.resize(900, 520)
        self.runner = TaskRunner(1, self)
        self.config = config
        self.cache_dir = cache_dir or default_cache_dir()
        self.opened: list[Path] = []
        self._worker: Worker | None = None
        self.node = QComboBox()
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b")
        if self.config is None:
            try:
                self.config = load_config()
            except LiversegError as exc:
                self.error.setText(str(exc))
        for name in (self.config.nodes if self.config else {}):
            self.node.addItem(name)
        self.patient_id, self.patient_name, self.accession = QLineEdit(), QLineEdit(), QLineEdit()
        self.date, self.modality = QLineEdit(), QLineEdit("CT")
        self.date.setPlaceholderText("YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.patient_name.setPlaceholderText("wildcards * ?")
        form = QFormLayout()
        form.addRow("Node", self.node)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.patient_name)
        form.addRow("Accession", self.accession)
        form.addRow("Study date", self.date)
        form.addRow("Modality", self.modality)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Patient / series", "ID", "Date", "Modality", "Description", "Instances"])
        self.tree.itemDoubleClicked.connect(lambda *_: self.retrieve())
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel retrieval")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Close)
        self.buttons.accepted.connect(self.retrieve)
        self.buttons.rejected.connect(self.reject)
        top = QHBoxLayout()
        top.addLayout(form, 1)
        top.addWidget(self.search_button, 0, Qt.AlignmentFlag.AlignBottom)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.error)
        lay.addWidget(self.tree, 1)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        lay.addWidget(self.buttons)

    # -- query -----------------------------------------------------------------------------
    def _start(self, worker: Worker) -> Worker:
        self.error.setText("")
        worker.signals.errored.connect(self._failed)
        worker.signals.finished.connect(self._finished)
        self._worker = worker
        self.search_button.setEnabled(False)
        self.buttons.setEnabled(False)
        return self.runner.start(worker)

    def search(self) -> Worker | None:
        from liverseg_studio.pacs.model import Query

        if not self.node.currentText():
            self.error.setText("No PACS node configured (see README, 'With a PACS').")
            return None
        query = Query(self.patient_id.text().strip(), self.patient_name.text().strip(), self.accession.text().strip(),
                      self.date.text().strip(), self.modality.text().strip())
        worker = Worker(_find, self.config, self.node.currentText(), query, kind="pacs-find")
        worker.signals.returned.connect(self._found)
        return self._start(worker)

    def _found(self, res: WorkerResult) -> None:
        self.tree.clear()
        for st in res.value:
            top = QTreeWidgetItem([st.patient_name, st.patient_id, st.study_date, st.modalities, st.description,
                                   str(len(st.series)) + " series"])
            top.setData(0, UID_ROLE, ("study", st))
            for se in st.series:
                n = "" if se.n_instances is None else str(se.n_instances)
                child = QTreeWidgetItem([f"#{se.number}", "", "", se.modality, se.description, n])
                child.setData(0, UID_ROLE, ("series", se))
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)
        if not res.value:
            self.error.setText("No study found.")

    # -- retrieval ---------------------------------------------------------------------------
    def selected_series(self) -> list[Any]:
        item = self.tree.currentItem()
        if item is None:
            return []
        level, obj = item.data(0, UID_ROLE)
        if level == "series":
            return [obj]
        return [s for s in obj.series if s.modality.upper() == "CT"][:1] or list(obj.series[:1])

    def retrieve(self) -> Worker | None:
        series = self.selected_series()
        if not series:
            self.error.setText("Choose a study or a series first.")
            return None
        worker = Worker(_retrieve, self.config, self.node.currentText(), self.cache_dir, series, kind="pacs-get")
        worker.signals.progress.connect(lambda _rid, done, total: (self.progress.setMaximum(max(total, 1)),
                                                                   self.progress.setValue(done)))
        worker.signals.returned.connect(self._retrieved)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        return self._start(worker)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def _retrieved(self, res: WorkerResult) -> None:
        self.opened = list(res.value)
        self.accept()

    def _failed(self, failure: WorkerFailure) -> None:
        if failure.cancelled:
            self.error.setText("Retrieval cancelled; opening the series again resumes it.")
        elif isinstance(failure.error, LiversegError):
            self.error.setText(" ".join(str(failure.error).split()))
        else:
            self.error.setText(f"Internal error: {type(failure.error).__name__}: {failure.error}")

    def _finished(self, _rid: int) -> None:
        self._worker = None
        self.search_button.setEnabled(True)
        self.buttons.setEnabled(True)
        self.cancel_button.setVisible(False)

    def done(self, result: int) -> None:  # noqa: D102 - also on Close / Esc: stop the worker
        self.cancel()
        self.runner.join(10.0)
        super().done(result)


def open_from_pacs(window: Any) -> None:
    dialog = PacsDialog(window)
    if dialog.exec() == QDialog.DialogCode.Accepted and dialog.opened:
        window.open_path(str(dialog.opened[0]))
