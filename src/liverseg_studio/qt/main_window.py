"""The studio's main window: start screen, viewer, segmentation, results, export.

Threads: loading and segmentation run in two private single-thread pools
(:class:`~liverseg_studio.qt.worker.TaskRunner`); every answer carries a
request id and is dropped when it is stale (another case was opened, the user
went back, or a newer run superseded it).  Every failure arrives in
:meth:`MainWindow._on_failed`, which shows one dialog; the window stays usable.

A second *Run* while one is running cancels the first (cooperatively, at its
next slice batch) and queues the new one behind it in the single-thread pool,
so two predictions never run at once.  Closing the window cancels and joins
all workers.

pyqtgraph (slow to import) is imported only when the first case is opened
(:meth:`MainWindow._ensure_studio`); torch/onnxruntime only inside the first
segmentation.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDragLeaveEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from liverseg_studio.core.errors import LiversegError, LoaderError, MultipleSeriesError
from liverseg_studio.qt.about import AboutPanel
from liverseg_studio.qt.cohort_table import cohort_action
from liverseg_studio.qt.pacs import pacs_actions
from liverseg_studio.qt.results import format_seconds
from liverseg_studio.qt import series_picker
from liverseg_studio.qt.settings import StudioSettings
from liverseg_studio.qt.start_screen import StartScreen
from liverseg_studio.qt.studio_page import StudioPage
from liverseg_studio.qt.tasks import BackendCache, RunRequest, default_model_dir, load_case, needs_pickle_trust
from liverseg_studio.qt.tasks import run_segmentation as run_segmentation_task
from liverseg_studio.qt.worker import TaskRunner, Worker, WorkerFailure, WorkerResult

if TYPE_CHECKING:
    from liverseg_studio.core.volume import Volume
    from liverseg_studio.plugins.manager import PluginManager
    from liverseg_studio.plugins.registry import LoadOptions
    from liverseg_studio.qt.editing.studio import StudioEditing
    from liverseg_studio.segment.pipeline import SegmentationResult

log = logging.getLogger(__name__)

BROWSE = "__browse__"
#: Export kinds, the words of ``liverseg segment --export``: key -> (menu text, file-dialog filter, suffix)
EXPORTS: dict[str, tuple[str, str, str]] = {
    "mask": ("Mask: NIfTI labels (.nii.gz)…", "NIfTI (*.nii.gz *.nii)", "_mask.nii.gz"),
    "overlay": ("Overlay: this slice as shown (.png)…", "PNG image (*.png)", "_overlay.png"),
    "montage": ("Montage: the liver slices (.png)…", "PNG image (*.png)", "_montage.png"),
    "seg": ("SEG: DICOM Segmentation (.dcm)…", "DICOM (*.dcm)", "_seg.dcm"),
    "report": ("Report (.json)…", "JSON (*.json)", "_report.json"),
}
_OLD_EXPORT_KINDS = {"nifti": "mask", "dicom-seg": "seg", "png": "overlay", "json": "report"}


def _normalise_ext(ext: str) -> str:
    ext = ext.strip()
    if not ext:
        return ""
    return ext if ext.startswith(".") else "." + ext


def file_dialog_filter(filters: list[tuple[str, tuple[str, ...]]]) -> str:
    """Qt name filter from the loader registry's ``(description, extensions)``."""
    parts = []
    every: list[str] = []
    for desc, exts in filters:
        pats = [f"*{_normalise_ext(e)}" for e in exts if _normalise_ext(e)]
        if not pats:
            continue
        every += [p for p in pats if p not in every]
        parts.append(f"{desc} ({' '.join(pats)})")
    head = [f"All supported ({' '.join(every)})"] if every else []
    return ";;".join(head + parts + ["All files (*)"])


class MainWindow(QMainWindow):
    """LiverSeg Studio."""

    #: the loaded :class:`~liverseg_studio.core.volume.Volume`
    case_loaded = Signal(object)
    #: the :class:`~liverseg_studio.segment.pipeline.SegmentationResult` now shown
    segmentation_finished = Signal(object)
    #: a :class:`~liverseg_studio.qt.worker.WorkerFailure` that was handled (dialog or "cancelled")
    task_failed = Signal(object)
    #: a run was superseded or its case closed and its answer dropped (request id)
    stale_dropped = Signal(int)
    went_back = Signal()
    #: emitted once from the first showEvent
    shown = Signal()

    def __init__(
        self,
        settings: StudioSettings | None = None,
        manager: "PluginManager | None" = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("LiverSeg Studio")
        self.resize(1500, 920)
        self.setMinimumSize(QSize(400, 300))  # usable from 1024 x 640; below that the pages scroll
        self.setAcceptDrops(True)
        if manager is None:
            from liverseg_studio.plugins.manager import get_plugin_manager

            manager = get_plugin_manager()
        self.manager = manager
        self.settings = settings or StudioSettings()
        self.loader_runner = TaskRunner(1, self)
        self.segment_runner = TaskRunner(1, self)
        self._backend_cache = BackendCache()
        self._volume: Volume | None = None
        self._result: SegmentationResult | None = None
        self._case_path: str = ""
        self._load_path: str = ""
        self._load_rid: int | None = None
        self._run_rid: int | None = None
        self._load_worker: Worker | None = None
        self._run_worker: Worker | None = None
        self._pending_slice: int | None = None
        self._shown_once = False
        self.studio: StudioPage | None = None
        self.editing: StudioEditing | None = None  # built with the studio page

        self.stack = QStackedWidget()
        self.start_screen = StartScreen()
        self.stack.addWidget(self.start_screen)
        self.setCentralWidget(self.stack)
        self.start_screen.open_file_requested.connect(self.open_file_dialog)
        self.start_screen.open_folder_requested.connect(self.open_folder_dialog)
        self.start_screen.open_sample_requested.connect(self.open_sample)
        self.start_screen.open_path_requested.connect(self.open_path)
        self.start_screen.set_formats(self._format_names())

        self._build_about()
        self._build_actions()
        self._build_status()
        self._refresh_recent()
        self._update_actions()

    # ==================================================================== building
    def _format_names(self) -> list[str]:
        names = []
        for spec in self.manager.loaders:
            names.append(spec.description or spec.name)
        return names

    def _build_about(self) -> None:
        from PySide6.QtWidgets import QDockWidget

        self.about_panel = AboutPanel()
        self.about_dock = QDockWidget("Contact, licence and model card", self)
        self.about_dock.setObjectName("aboutDock")
        self.about_dock.setWidget(self.about_panel)
        self.about_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable | QDockWidget.DockWidgetFeature.DockWidgetMovable
        )
        self.about_dock.setMinimumWidth(340)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.about_dock)
        self.about_dock.hide()
        self._update_model_card()

    def _action(
        self, text: str, slot: Callable[..., Any], shortcut: Any = None, tip: str = "", checkable: bool = False
    ) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                act.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        self.addAction(act)  # shortcuts work even when the menu bar is hidden
        return act

    def _build_actions(self) -> None:
        a = self._action
        self.open_action = a("&Open image or volume…", self.open_file_dialog, QKeySequence.StandardKey.Open)
        self.open_folder_action = a("Open DICOM &folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self.sample_action = a("Open &sample case (LiTS 117)", self.open_sample)
        self.back_action = a("&Go back", self.go_back, "Ctrl+W", "Close the case and return to the start screen")
        self.settings_action = a("&Settings…", self.show_settings, "Ctrl+,")
        self.quit_action = a("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.run_action = a("&Run segmentation", self.run_segmentation, "Ctrl+R")
        self.cancel_action = a("&Cancel segmentation", self.cancel_run, "Esc")
        self.export_action = a("&Export…", self.show_export_menu, "Ctrl+E")
        self.next_action = a("Next slice", lambda: self.step_slice(1), ["PgDown", "Down", "Right"])
        self.prev_action = a("Previous slice", lambda: self.step_slice(-1), ["PgUp", "Up", "Left"])
        self.about_action = self.about_dock.toggleViewAction()
        self.about_action.setShortcut(QKeySequence("F1"))
        self.about_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.addAction(self.about_action)

        self.export_menu = QMenu("&Export", self)
        self.export_actions: dict[str, QAction] = {}
        for key, (text, _flt, _suffix) in EXPORTS.items():
            act = QAction(text, self)
            act.triggered.connect(lambda _=False, k=key: self.export(k))
            self.export_menu.addAction(act)
            self.export_actions[key] = act

        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addActions([self.open_action, self.open_folder_action, self.sample_action, cohort_action(self),
                              *pacs_actions(self)])
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        file_menu.addMenu(self.export_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.back_action)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        seg_menu = mb.addMenu("&Segmentation")
        seg_menu.addActions([self.run_action, self.cancel_action])
        view_menu = mb.addMenu("&View")
        view_menu.addActions([self.next_action, self.prev_action])
        self.view_menu = view_menu
        help_menu = mb.addMenu("&Help")
        help_menu.addAction(self.about_action)

        # the contact/about toggle, always visible at the right of the menu bar
        corner = QPushButton("Contact && about")
        corner.setCheckable(True)
        corner.setFlat(True)
        corner.toggled.connect(self.about_dock.setVisible)
        self.about_dock.visibilityChanged.connect(corner.setChecked)
        mb.setCornerWidget(corner, Qt.Corner.TopRightCorner)
        self.about_button = corner

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.readout_label = QLabel("")
        self.readout_label.setMinimumWidth(380)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setFixedWidth(120)
        self.busy.setVisible(False)
        sb.addPermanentWidget(self.readout_label)
        sb.addPermanentWidget(self.busy)

    def _ensure_studio(self) -> StudioPage:
        """Build the viewer page on first use (imports pyqtgraph)."""
        if self.studio is not None:
            return self.studio
        page = StudioPage()
        self.studio = page
        self.stack.addWidget(page)
        page.back_button.clicked.connect(self.go_back)
        page.run_button.clicked.connect(self.run_segmentation)
        page.cancel_button.clicked.connect(self.cancel_run)
        page.export_button.setMenu(self.export_menu)
        page.results.lesion_activated.connect(self.go_to_slice)
        from liverseg_studio.qt.editing.studio import StudioEditing

        self.editing = StudioEditing(self, page)
        page.viewer.cursor_moved.connect(self.readout_label.setText)
        page.viewer.set_opacity(self.settings.opacity)
        from liverseg_studio.qt.viewer import LAYOUTS

        if self.settings.layout in LAYOUTS:
            page.viewer.set_layout_mode(self.settings.layout)
        page.viewer.layout_changed.connect(lambda mode: setattr(self.settings, "layout", mode))
        page.viewer.opacity_slider.sliderReleased.connect(
            lambda: setattr(self.settings, "opacity", page.viewer.opacity)
        )
        for name in self.manager.backends.names():
            spec = self.manager.backends.get(name)
            page.backend_combo.addItem(name, name)
            page.backend_combo.setItemData(
                page.backend_combo.count() - 1, spec.description or name, Qt.ItemDataRole.ToolTipRole
            )
        page.backend_combo.setCurrentIndex(max(0, page.backend_combo.findData(self._initial_backend())))
        page.backend_combo.currentIndexChanged.connect(self._backend_changed)
        self._fill_models()
        page.model_combo.activated.connect(self._model_activated)
        for mode, view_name in LAYOUTS.items():
            act = QAction(f"Layout: {view_name}", self)
            act.triggered.connect(lambda _=False, m=mode: page.viewer.set_layout_mode(m))
            self.view_menu.addAction(act)
        self._backend_changed()
        return page

    # ============================================================ backend / model choice
    def _initial_backend(self) -> str:
        names = self.manager.backends.names()
        if not names:
            return ""
        wanted = self.settings.default_backend
        if wanted in names:
            return wanted
        if default_model_dir() is not None and self.manager.backends.default_name():
            return str(self.manager.backends.default_name())  # the fastest installed engine
        for n in names:  # without a default model, prefer one that needs none
            if not self.manager.backends.get(n).needs_model:
                return n
        return names[0]

    def _fill_models(self) -> None:
        assert self.studio is not None
        combo = self.studio.model_combo
        combo.blockSignals(True)
        combo.clear()
        d = default_model_dir()
        combo.addItem("Default model" if d else "Default model (not installed)", "")
        combo.setItemData(0, str(d) if d else "resources/models/default is missing", Qt.ItemDataRole.ToolTipRole)
        last = self.settings.last_model_dir
        if last and Path(last).is_dir():
            combo.addItem(Path(last).name, last)
            combo.setItemData(1, last, Qt.ItemDataRole.ToolTipRole)
            combo.setCurrentIndex(1)
        combo.addItem("Choose folder…", BROWSE)
        combo.blockSignals(False)

    def selected_backend(self) -> str:
        if self.studio is None:
            return self._initial_backend()
        return str(self.studio.backend_combo.currentData() or "")

    def selected_model_dir(self) -> str | None:
        """The chosen model folder; None = the default model."""
        if self.studio is None:
            return self.settings.last_model_dir or None
        data = self.studio.model_combo.currentData()
        return str(data) if data and data != BROWSE else None

    def set_backend(self, name: str) -> None:
        page = self._ensure_studio()
        idx = page.backend_combo.findData(name)
        if idx < 0:
            raise ValueError(f"unknown backend {name!r}")
        page.backend_combo.setCurrentIndex(idx)

    def set_model_dir(self, path: str | None) -> None:
        """Select a model folder (None: the default model)."""
        page = self._ensure_studio()
        combo = page.model_combo
        if not path:
            combo.setCurrentIndex(0)
        else:
            idx = combo.findData(str(path))
            if idx < 0:
                combo.insertItem(combo.count() - 1, Path(path).name, str(path))
                idx = combo.findData(str(path))
                combo.setItemData(idx, str(path), Qt.ItemDataRole.ToolTipRole)
            combo.setCurrentIndex(idx)
            self.settings.last_model_dir = str(path)
        self._update_model_card()

    def _model_activated(self, index: int) -> None:
        assert self.studio is not None
        if self.studio.model_combo.itemData(index) == BROWSE:
            folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (with model.json)", self.settings.last_model_dir)
            if folder and not (Path(folder) / "model.json").is_file():
                QMessageBox.warning(
                    self,
                    "Not a model folder",
                    f"{folder} has no model.json. A model folder holds model.json and the model files "
                    "(model.int8.onnx, model.onnx or model.safetensors), as `liverseg export` writes them.",
                )
                folder = ""
            if folder:
                self.set_model_dir(folder)
            else:
                self.studio.model_combo.setCurrentIndex(0)
        self._update_model_card()

    def _backend_changed(self, *_: Any) -> None:
        if self.studio is None:
            return
        name = self.selected_backend()
        needs = self.manager.backends.get(name).needs_model if name in self.manager.backends else True
        self.studio.model_combo.setEnabled(needs)
        self.studio.model_combo.setToolTip("" if needs else f"The {name} backend needs no model")
        self._update_model_card()

    def _model_dir_path(self) -> Path | None:
        chosen = self.selected_model_dir()
        return Path(chosen) if chosen else default_model_dir()

    def _update_model_card(self) -> None:
        name = self.selected_backend()
        needs = self.manager.backends.get(name).needs_model if name in self.manager.backends else True
        mdir = self._model_dir_path()
        self.about_panel.set_model(mdir, name, needs)
        if self.studio is not None:
            spec = None
            if needs and mdir is not None:
                try:
                    from liverseg_studio.core.modelcard import read_card

                    spec = read_card(mdir).preprocessing
                except Exception:  # noqa: BLE001 - the run reports a broken card
                    spec = None
            from liverseg_studio.core.preprocess import DEFAULT_SPEC

            self.studio.viewer.set_preprocess_spec(spec or DEFAULT_SPEC)

    # ==================================================================== opening
    @property
    def volume(self) -> "Volume | None":
        return self._volume

    @property
    def result(self) -> "SegmentationResult | None":
        return self._result

    def open_file_dialog(self) -> None:
        flt = file_dialog_filter(self.manager.loaders.file_dialog_filters())
        path, _ = QFileDialog.getOpenFileName(self, "Open a CT image or volume", self.settings.last_dir, flt)
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a DICOM series folder", self.settings.last_dir)
        if folder:
            self.open_path(folder)

    def open_sample(self) -> None:
        from liverseg_studio.sample import sample_case

        case = sample_case()
        if case is None:
            self._show_error(
                "Sample case not installed",
                "The sample case (LiTS case 117 from liver-ct-segmentation-package) is not installed. "
                "Run `make setup` to install it.",
            )
            return
        self.open_path(str(case.image))

    def open_path(self, path: str, options: "LoadOptions | None" = None) -> int:
        """Start loading ``path`` in the background; returns the request id (-1: series picker cancelled)."""
        if options is None and (options := series_picker.ask(self, str(path))) is False:
            return -1
        if self._load_worker is not None:
            self._load_worker.cancel()
        worker = Worker(load_case, str(path), options, self.manager, kind="load")
        self._load_rid = worker.request_id
        self._load_path = str(path)
        self._load_worker = worker
        worker.signals.returned.connect(self._on_loaded)
        worker.signals.errored.connect(self._on_failed)
        worker.signals.finished.connect(self._on_load_finished)
        self.busy.setVisible(True)
        self.statusBar().showMessage(f"Opening {Path(path).name}…")
        self.loader_runner.start(worker)
        # build the viewer (pyqtgraph import) while the file is read in the worker
        QTimer.singleShot(0, self, self._ensure_studio)
        return worker.request_id

    def _on_load_finished(self, rid: int) -> None:
        if rid == self._load_rid:
            self._load_worker = None
            self.busy.setVisible(False)

    def _on_loaded(self, res: WorkerResult) -> None:
        if res.request_id != self._load_rid:
            self.stale_dropped.emit(res.request_id)
            return
        volume = res.value
        path = self._load_path or str(volume.source or "")
        self._close_case()
        page = self._ensure_studio()
        self._volume = volume
        self._case_path = path
        page.viewer.set_volume(volume)
        page.results.clear()
        page.run_status.setText("Not segmented yet. Choose a backend and press Run.")
        page.case_name.setText(self._case_title(path))
        page.show_case(volume)  # geometry, loader, orientation and the loader's warning (qt.studio_page)
        page.case_details.setToolTip(path)
        self.stack.setCurrentWidget(page)
        if path:
            self.settings.add_recent_file(path)
            self.settings.last_dir = str(Path(path).parent)
            self._refresh_recent()
        self.statusBar().showMessage(f"Opened {Path(path).name}", 5000)
        self._update_actions()
        self.case_loaded.emit(volume)

    @staticmethod
    def _case_title(path: str) -> str:
        if not path:
            return "(unnamed)"
        from liverseg_studio.sample import sample_case

        case = sample_case()
        if case is not None and Path(path).resolve() == case.image.resolve():
            return f"{case.name} (sample) · {Path(path).name}"
        return Path(path).name

    # ==================================================================== segmentation
    def run_segmentation(self) -> int | None:
        """Start a run on the open case; a run in progress is cancelled first. Returns the request id."""
        if self._volume is None or self.studio is None:
            self.statusBar().showMessage("Open a case first.", 4000)
            return None
        if self.editing is not None and not self.editing.confirm_discard("run the segmentation again"):
            return None
        backend = self.selected_backend()
        if not backend:
            self._show_error("No backend", "No segmentation backend is installed (see `liverseg plugins`).")
            return None
        request = RunRequest(
            backend=backend,
            model_dir=self.selected_model_dir(),
            threads=self.settings.threads or None,
        )
        needs_model = self.manager.backends.get(backend).needs_model if backend in self.manager.backends else True
        if needs_model and request.model_dir is None and default_model_dir() is None:
            others = [n for n in self.manager.backends.names() if not self.manager.backends.get(n).needs_model]
            hint = f", or use the {others[0]} backend, which needs no model" if others else ""
            self._show_error(
                "No model",
                "The default model (resources/models/default) is not installed. Choose a model folder "
                f"in the Model list{hint}.",
            )
            return None
        pickle_path = needs_pickle_trust(backend, request.model_dir)
        if pickle_path is not None:
            answer = QMessageBox.warning(
                self,
                "Load a pickled model?",
                f"{pickle_path}\n\nThis model folder has only a fastai pickle (export.pkl). Loading a pickle "
                "can run arbitrary code hidden in the file. Load it only if you trust where it came from.\n\n"
                "Load this pickle?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                self.statusBar().showMessage("Not run: the pickled model was not trusted.", 6000)
                return None
            request = RunRequest(**{**request.__dict__, "trust_pickle": True})
        previous = self._run_worker
        if previous is not None and not previous.is_done():
            previous.cancel()  # its answer is now stale; the new run waits in the queue
            self.statusBar().showMessage("Previous run cancelled; starting again…", 4000)
        worker = Worker(
            run_segmentation_task, self._volume, request, self.manager, self._backend_cache, kind="segment"
        )
        self._run_rid = worker.request_id
        self._run_worker = worker
        worker.signals.started.connect(self._on_run_started)
        worker.signals.progress.connect(self._on_run_progress)
        worker.signals.returned.connect(self._on_segmented)
        worker.signals.errored.connect(self._on_failed)
        worker.signals.finished.connect(self._on_run_finished)
        page = self.studio
        page.progress.setRange(0, 0)
        page.progress.setVisible(True)
        page.run_status.setText(f"Loading the {backend} backend…")
        self._update_actions()
        self.segment_runner.start(worker)
        return worker.request_id

    def cancel_run(self) -> None:
        if self._run_worker is not None and not self._run_worker.is_done():
            self._run_worker.cancel()
            if self.studio is not None:
                self.studio.run_status.setText("Cancelling…")
            self.statusBar().showMessage("Cancelling the segmentation…", 4000)

    def is_running(self) -> bool:
        return self._run_worker is not None and not self._run_worker.is_done()

    def _on_run_started(self, rid: int) -> None:
        if rid == self._run_rid and self.studio is not None:
            self.studio.run_status.setText("Segmenting…")

    def _on_run_progress(self, rid: int, done: int, total: int) -> None:
        if rid != self._run_rid or self.studio is None:
            return
        bar = self.studio.progress
        if bar.maximum() != total:
            bar.setRange(0, max(1, total))
        bar.setValue(done)
        self.studio.run_status.setText(f"Segmenting… slice {done} of {total}")

    def _on_segmented(self, res: WorkerResult) -> None:
        result = res.value
        if res.request_id != self._run_rid or self._volume is None or result.volume is not self._volume:
            self.stale_dropped.emit(res.request_id)
            return
        assert self.studio is not None
        self._result = result
        page = self.studio
        page.viewer.set_labels(result.labels)
        page.results.set_result(result)
        t = result.timings.get("total", 0.0)
        page.run_status.setText(
            f"Done in {format_seconds(t)} with {result.backend}"
            + (f" · {result.model.name}" if result.model.name and result.model.name != result.backend else "")
        )
        # show the slice with the largest lesion, else the one with most liver
        if result.stats.lesions:
            page.viewer.set_slice(result.stats.lesions[0].centroid_slice)
        self.statusBar().showMessage("Segmentation finished.", 5000)
        self._update_actions()
        self.segmentation_finished.emit(result)

    def _on_run_finished(self, rid: int) -> None:
        if rid != self._run_rid:
            return
        self._run_worker = None
        if self.studio is not None:
            self.studio.progress.setVisible(False)
        self._update_actions()

    # ==================================================================== failures (one place)
    def _on_failed(self, failure: WorkerFailure) -> None:
        current = self._load_rid if failure.kind == "load" else self._run_rid
        if failure.request_id != current:
            self.stale_dropped.emit(failure.request_id)
            return
        if failure.kind == "segment" and self.studio is not None:
            self.studio.progress.setVisible(False)
            self.studio.run_status.setText("Cancelled." if failure.cancelled else "Failed: see the message.")
        if failure.cancelled:
            self.statusBar().showMessage("Cancelled.", 5000)
            self.task_failed.emit(failure)
            return
        err = failure.error
        if failure.kind == "load" and isinstance(err, MultipleSeriesError):
            self.task_failed.emit(failure)
            series_picker.choose_tied(self, err)
            return
        if isinstance(err, LiversegError):
            text = str(err)
        else:
            log.error("internal error in %s job:\n%s", failure.kind, failure.traceback)
            text = f"Internal error: {type(err).__name__}: {err}\n\nThe details were written to the log."
        title = "Cannot open this file" if failure.kind == "load" else "Segmentation failed"
        if failure.kind == "load" and isinstance(err, LoaderError):
            self.statusBar().showMessage(f"Could not open {Path(err.path).name}", 6000)
        self._show_error(title, text)
        self._update_actions()
        self.task_failed.emit(failure)

    def _show_error(self, title: str, text: str) -> None:
        QMessageBox.critical(self, title, text)

    def adopt_result(self, result: "SegmentationResult", status: str) -> None:
        """Show ``result`` as the current segmentation (a mask opened onto the image for editing)."""
        assert self.studio is not None
        self._result = result
        self.studio.viewer.set_labels(result.labels)
        self.studio.results.set_stats(result.stats)
        self.studio.run_status.setText(status)
        self._update_actions()
        self.segmentation_finished.emit(result)

    # ==================================================================== navigation
    def step_slice(self, delta: int) -> None:
        if self.studio is not None and self._volume is not None and self.stack.currentWidget() is self.studio:
            self.studio.viewer.step(delta)

    def go_to_slice(self, index: int) -> None:
        if self.studio is not None and self._volume is not None:
            self.studio.viewer.set_slice(index)

    # ==================================================================== export
    def show_export_menu(self) -> None:
        if self._result is None or self.studio is None:
            self.statusBar().showMessage("Nothing to export yet: run a segmentation first.", 4000)
            return
        btn = self.studio.export_button
        self.export_menu.popup(btn.mapToGlobal(btn.rect().bottomLeft()))

    def export(self, kind: str, path: str | None = None) -> Path | None:
        """Export the result as ``kind`` (see ``EXPORTS``); asks for a path and before overwriting."""
        if self._result is None:
            self.statusBar().showMessage("Nothing to export yet: run a segmentation first.", 4000)
            return None
        from liverseg_studio.segment import exporters

        result = self.editing.export_result(self._result) if self.editing is not None else self._result
        kind = _OLD_EXPORT_KINDS.get(kind, kind)
        text, flt, suffix = EXPORTS[kind]
        if kind == "seg" and not exporters.is_dicom(result.volume):
            self._show_error("Export", "A DICOM SEG needs a DICOM source image.")
            return None
        if path is None:
            base = exporters.output_name(self._case_path or "segmentation")
            start = str(Path(self.settings.last_dir or Path.home()) / f"{base}{suffix}")
            path, _ = QFileDialog.getSaveFileName(
                self, text.rstrip("…"), start, flt, options=QFileDialog.Option.DontConfirmOverwrite
            )
            if not path:
                return None
        target = Path(path)
        overwrite = False
        if target.exists():
            answer = QMessageBox.question(
                self,
                "Replace file?",
                f"{target} already exists.\n\nReplace it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                self.statusBar().showMessage("Export cancelled: the file was kept.", 5000)
                return None
            overwrite = True
        try:
            if kind == "mask":
                out = exporters.write_nifti_mask(result, target, overwrite=overwrite)
            elif kind == "seg":
                out = exporters.write_dicom_seg(result, target, overwrite=overwrite)
            elif kind == "overlay":
                out = self._write_slice_png(result, target, overwrite)
            elif kind == "montage":
                out = exporters.write_montage(result, target, overwrite=overwrite)
            elif kind == "report":
                out = exporters.write_report(result, target, overwrite=overwrite, input_path=self._case_path or None)
            else:  # pragma: no cover - menu keys
                raise ValueError(kind)
        except LiversegError as exc:
            self._show_error("Export failed", str(exc))
            return None
        except OSError as exc:
            self._show_error("Export failed", f"{target}: {exc.strerror or exc}")
            return None
        self.settings.last_dir = str(target.parent)
        self.statusBar().showMessage(f"Exported {out}", 6000)
        if self.editing is not None:
            self.editing.exported(kind)
        return Path(out)

    def _write_slice_png(self, result: "SegmentationResult", path: Path, overwrite: bool) -> Path:
        """The current slice with the overlay as shown (radiological orientation, opacity)."""
        import numpy as np

        from liverseg_studio.core.colours import overlay_rgb
        from liverseg_studio.core.io import atomic_output
        from liverseg_studio.segment import exporters

        assert self.studio is not None
        viewer = self.studio.viewer
        z = viewer.slice_index
        labels = np.where(
            np.isin(result.labels[z], viewer.visible_labels()), result.labels[z], 0
        ).astype(np.uint8)
        rgb = overlay_rgb(exporters.display_slice(result.volume, z), labels, alpha=viewer.opacity)
        if result.volume.spacing_known:
            transpose, flip_rows, flip_cols = exporters.radiological_transform(result.volume.affine)
            if transpose:
                rgb = np.swapaxes(rgb, 0, 1)
            if flip_rows:
                rgb = rgb[::-1]
            if flip_cols:
                rgb = rgb[:, ::-1]
        from PIL import Image

        with atomic_output(path, overwrite=overwrite) as tmp:
            Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")
        return path

    # ==================================================================== go back / close
    def _close_case(self) -> None:
        """Forget the case: stale-mark and cancel its run, clear the views."""
        if self._run_worker is not None:
            self._run_worker.cancel()
        self._run_worker = None
        self._run_rid = None
        self._volume = None
        self._result = None
        self._case_path = ""
        if self.studio is not None:
            self.studio.viewer.clear()
            self.studio.results.clear()
            self.studio.progress.setVisible(False)
        self.readout_label.setText("")

    def go_back(self) -> None:
        """Return to the start screen and free the loaded case (no restart); asks first about unsaved edits."""
        if self.editing is not None and not self.editing.confirm_discard("go back"):
            return
        if self._load_worker is not None:
            self._load_worker.cancel()
        self._load_worker = None
        self._load_rid = None
        self.busy.setVisible(False)
        self._close_case()
        self.stack.setCurrentWidget(self.start_screen)
        self._refresh_recent()
        self._update_actions()
        self.statusBar().showMessage("Ready for the next case.", 4000)
        self.went_back.emit()

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Cancel and join all workers; True when every thread finished in time."""
        ok_load = self.loader_runner.shutdown(timeout_s)
        ok_seg = self.segment_runner.shutdown(timeout_s)
        if self.editing is not None:
            self.editing.controller.shutdown(timeout_s)
        if not (ok_load and ok_seg):
            log.warning("a worker did not stop within %.0f s", timeout_s)
        self._backend_cache.clear()
        return ok_load and ok_seg

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        if self.editing is not None and not self.editing.confirm_discard("close the studio"):
            event.ignore()
            return
        self.statusBar().showMessage("Stopping…")
        self._run_rid = None
        self._load_rid = None
        self.shutdown()
        self.settings.sync()
        super().closeEvent(event)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt name
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self.shown.emit()

    # ==================================================================== drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.isLocalFile() for u in urls):
            event.acceptProposedAction()
            self.start_screen.set_drag_active(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802
        self.start_screen.set_drag_active(False)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.start_screen.set_drag_active(False)
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    # ==================================================================== misc
    def _refresh_recent(self) -> None:
        recent = self.settings.recent_files()
        self.start_screen.set_recent_files(recent)
        self.recent_menu.clear()
        for p in recent:
            act = self.recent_menu.addAction(p)
            act.setEnabled(Path(p).exists())
            act.triggered.connect(lambda _=False, path=p: self.open_path(path))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear recent files", self._clear_recent)
        self.recent_menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        self.settings.clear_recent_files()
        self._refresh_recent()

    def _update_actions(self) -> None:
        has_case = self._volume is not None
        running = self.is_running()
        has_result = self._result is not None
        self.run_action.setEnabled(has_case)
        self.cancel_action.setEnabled(running)
        self.export_action.setEnabled(has_result)
        self.export_menu.setEnabled(has_result)
        self.back_action.setEnabled(has_case or self._load_worker is not None)
        for key, act in self.export_actions.items():
            enabled = has_result
            if key == "seg" and has_result:
                from liverseg_studio.segment.exporters import is_dicom

                enabled = is_dicom(self._result.volume)  # type: ignore[union-attr]
            act.setEnabled(enabled)
        if self.studio is not None:
            self.studio.run_button.setEnabled(has_case)
            self.studio.run_button.setText("Run again  (Ctrl+R)" if has_result else "Run  (Ctrl+R)")
            self.studio.cancel_button.setEnabled(running)
            self.studio.export_button.setEnabled(has_result)

    def show_settings(self) -> None:
        from liverseg_studio.qt.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.settings, self.manager.backends.names(), self)
        if dlg.exec():
            dlg.apply()
            if self.studio is not None:
                self.studio.viewer.set_opacity(self.settings.opacity)
                self._backend_cache.clear()  # threads may have changed
            self.statusBar().showMessage("Settings saved.", 4000)


def volume_ref(window: MainWindow) -> "weakref.ref[Volume] | None":
    """A weak reference to the open volume (tests use it to check Go back frees it)."""
    return weakref.ref(window.volume) if window.volume is not None else None
