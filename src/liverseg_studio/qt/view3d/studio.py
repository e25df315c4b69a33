"""The 3D view and resection dock in the main window (issue 25).

:func:`install_view3d` adds a dock ("3D view and resection", View menu, Ctrl+3) holding the
:class:`~liverseg_studio.qt.view3d.panel.View3DPanel` and the
:class:`~liverseg_studio.qt.resection.panel.ResectionPanel`, and wires them to the window's
signals: a result shown -> surfaces rebuilt (in a worker, only while the dock is visible), a mask
edit finished (the editing controller's ``stats_changed``, after the stroke) -> rebuilt again,
a lesion clicked in 3D -> selected in the lesion table and the 2D views moved to its slice, a
row selected in the table -> highlighted in 3D.  A plan ``<name>_plan.json`` beside the input is
reopened with the case.  ``main_window.py`` does not know about any of this.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QSplitter

if TYPE_CHECKING:
    from liverseg_studio.qt.resection.panel import ResectionPanel
    from liverseg_studio.qt.view3d.panel import View3DPanel


def lesion_colour(lesion_id: int) -> tuple[float, float, float]:
    from liverseg_studio.qt.view3d.panel import lesion_colour as colour

    return colour(lesion_id)


def default_plan_path(result: Any) -> Path | None:
    """``<folder>/<name>_plan.json`` beside the case's input (where ``<name>_mask.nii.gz`` goes by default)."""
    from liverseg_studio.segment.exporters import output_name

    source = str(result.volume.source or "")
    if not source:
        return None
    p = Path(source)
    return p.parent / f"{output_name(p)}_plan.json"


class Studio3D(QObject):
    """See the module docstring."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        # built when first shown: start-up imports neither pyqtgraph nor OpenGL
        self.panel: View3DPanel | None = None
        self.resection: ResectionPanel | None = None
        self.dock = QDockWidget("3D view and resection", window)
        self.dock.setObjectName("view3dDock")
        self.dock.setWidget(QLabel("3D view"))
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self.action = self.dock.toggleViewAction()
        self.action.setText("3D view and resection")
        self.action.setShortcut(QKeySequence("Ctrl+3"))
        window.view_menu.addAction(self.action)
        window.export_menu.addSeparator()
        self.mesh_action = window.export_menu.addAction("3D surfaces (STL, OBJ, PLY)…", self._export_meshes_dialog)
        self.plan_action = window.export_menu.addAction("Mask with the resection plan…", self._export_plan_dialog)
        self.result: Any = None
        self.overlay: Any = None  # qt.resection.overlay.ResectedOverlay, with the studio page
        self._stale = False
        self._page_hooked = False
        window.segmentation_finished.connect(self.show_result)
        window.case_loaded.connect(lambda _v: self.clear())
        window.went_back.connect(self.clear)
        self.dock.visibilityChanged.connect(self._visible)

    def ensure_built(self) -> "View3DPanel":
        """Build the 3D panel and the resection controls (first show)."""
        if self.panel is not None:
            return self.panel
        from liverseg_studio.qt.resection.panel import ResectionPanel
        from liverseg_studio.qt.view3d.panel import View3DPanel

        self.panel = View3DPanel()
        self.resection = ResectionPanel()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.panel)
        split.addWidget(self.resection)
        split.setStretchFactor(0, 3)
        self.dock.setWidget(split)
        self.panel.lesion_picked.connect(self.select_lesion)
        self.resection.plan_changed.connect(self.panel.show_plan)
        self.panel.plane_dragged.connect(self.resection.drag)
        self.resection.plan_changed.connect(lambda _plan: self._update_overlay())
        self._stale = self.result is not None
        return self.panel

    # ------------------------------------------------------------------ data
    def labels(self) -> np.ndarray | None:
        """The labels shown: the editing copy while a reader corrects the mask, else the result's."""
        editing = getattr(self.window, "editing", None)
        controller = getattr(editing, "controller", None)
        if controller is not None and controller.active and controller.labels is not None:
            return controller.labels
        return None if self.result is None else np.asarray(self.result.labels)

    def show_result(self, result: Any) -> None:
        self.result = result
        self._hook_page()
        self._colour_table()
        self._stale = True
        if self.panel is None:
            return
        self.resection.default_path = default_plan_path(result)
        self.refresh()
        path = self.resection.default_path
        if path is not None and path.is_file():
            try:
                self.resection.open(path)
            except Exception as exc:  # noqa: BLE001 - a bad plan file is a status line, not a crash
                self.panel.status.setText(f"plan {path.name} not opened: {exc}")

    def refresh(self, *_: Any) -> None:
        """Labels changed: FLR figures now, surfaces now if the dock is visible (else when it is shown)."""
        if self.panel is None:
            self._stale = self.result is not None
            return
        labels = self.labels()
        affine = None if self.result is None else self.result.volume.affine
        self.resection.set_labels(labels, affine)
        self._update_overlay()
        self._colour_table()
        if self.dock.isVisible():
            self.panel.set_labels(labels, affine)
            self._stale = False
        else:
            self._stale = labels is not None

    def _visible(self, visible: bool) -> None:
        if not visible:
            return
        if self.panel is None:
            self.ensure_built()
            if self.result is not None:
                self.show_result(self.result)
                return
        if self._stale:
            self.refresh()

    def clear(self) -> None:
        self.result = None
        self._stale = False
        if self.panel is None:
            return
        self.panel.set_labels(None)
        self.resection.set_plan(None)
        self.resection.set_labels(None)

    def _update_overlay(self) -> None:
        """The resected liver in a second colour in the 2D segmentation panel."""
        page = getattr(self.window, "studio", None)
        if page is None or self.resection is None:
            return
        if self.overlay is None:
            if self.resection.plan is None:
                return
            from liverseg_studio.qt.resection.overlay import ResectedOverlay

            self.overlay = ResectedOverlay(page.viewer)
        affine = None if self.result is None else self.result.volume.affine
        self.overlay.set_state(self.resection.labels, affine, self.resection.plan)

    # ------------------------------------------------------------------ the lesion table
    def _hook_page(self) -> None:
        page = getattr(self.window, "studio", None)
        if self._page_hooked or page is None:
            return
        self._page_hooked = True
        page.results.table.itemSelectionChanged.connect(self._table_selected)
        editing = getattr(self.window, "editing", None)
        if editing is not None:  # after a stroke ends the controller recomputes the stats
            editing.controller.stats_changed.connect(self.refresh)

    def _colour_table(self) -> None:
        page = getattr(self.window, "studio", None)
        if page is None:
            return
        table = page.results.table
        for row in range(table.rowCount()):
            item = table.item(row, 0)
            if item is not None:
                r, g, b = lesion_colour(int(item.text()))  # the colour of the lesion in 3D
                item.setBackground(QColor.fromRgbF(r, g, b, 0.75))

    def _table_selected(self) -> None:
        table = self.window.studio.results.table
        rows = table.selectionModel().selectedRows()
        item = table.item(rows[0].row(), 0) if rows else None
        if self.panel is not None:
            self.panel.highlight(int(item.text()) if item is not None else None)

    def select_lesion(self, lesion_id: int) -> None:
        """A lesion picked in 3D: select its row and move the 2D views to its centre slice."""
        page = getattr(self.window, "studio", None)
        if page is None:
            return
        table = page.results.table
        for row in range(table.rowCount()):
            item = table.item(row, 0)
            if item is not None and int(item.text()) == lesion_id:
                table.selectRow(row)
                self.window.go_to_slice(int(item.data(Qt.ItemDataRole.UserRole)))
                return

    # ------------------------------------------------------------------ export
    def _result_to_export(self) -> Any:
        editing = getattr(self.window, "editing", None)
        return editing.export_result(self.result) if editing is not None else self.result

    def export_meshes(self, folder: str | Path, ext: str = "stl", *, overwrite: bool = False) -> dict:
        """Write ``folder`` (``<name>_mesh``) with one surface per label and lesion (segment.export_mesh)."""
        from liverseg_studio.core.io import atomic_output
        from liverseg_studio.segment.export_mesh import write
        from liverseg_studio.segment.exporters import is_dicom

        if self.result is None:
            raise ValueError("run a segmentation first")
        dest = Path(folder)
        notes: list[str] = []
        with atomic_output(dest, overwrite=overwrite) as tmp:
            write(self._result_to_export(), "mesh", f"mesh-{ext}", tmp, dest=dest, notes=notes, overwrite=overwrite)
        info = {"folder": dest, "notes": notes, "coordinates": "LPS" if is_dicom(self.result.volume) else "RAS"}
        return info

    def export_plan_mask(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """The mask with the current plan's third value (1 remnant, 2 tumour, 3 resected) as NIfTI."""
        import nibabel as nib

        from liverseg_studio.core.io import atomic_output
        from liverseg_studio.segment.export_mesh import plan_mask_image

        plan = None if self.resection is None else self.resection.plan
        if self.result is None or plan is None:
            raise ValueError("place a resection plane first")
        img, _figures = plan_mask_image(self._result_to_export(), plan)
        with atomic_output(path, overwrite=overwrite) as tmp:
            nib.save(img, str(tmp))
        return Path(path)

    def _export_meshes_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog, QMessageBox

        from liverseg_studio.segment.exporters import output_name

        if self.result is None:
            self.window.statusBar().showMessage("Nothing to export yet: run a segmentation first.", 4000)
            return
        start = Path(str(self.result.volume.source or "segmentation"))
        path, flt = QFileDialog.getSaveFileName(self.window, "Export 3D surfaces",
                                                str(start.parent / f"{output_name(start)}_mesh"),
                                                "STL (*.stl);;OBJ (*.obj);;PLY (*.ply)")
        if not path:
            return
        ext = flt[:3].lower() if flt[:3].lower() in ("stl", "obj", "ply") else "stl"
        target = Path(path).with_suffix("")
        try:
            info = self.export_meshes(target, ext)
        except Exception as exc:  # noqa: BLE001 - one dialog line
            QMessageBox.warning(self.window, "Export 3D surfaces", str(exc))
            return
        self.window.statusBar().showMessage(f"Surfaces written to {target} ({info['coordinates']} mm)", 6000)

    def _export_plan_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog, QMessageBox

        if self.result is None or self.resection is None or self.resection.plan is None:
            self.window.statusBar().showMessage("Place a resection plane in the 3D view first.", 4000)
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Export mask with the resection plan", "",
                                              "NIfTI (*.nii.gz)")
        if path:
            try:
                self.export_plan_mask(path)
            except Exception as exc:  # noqa: BLE001
                QMessageBox.warning(self.window, "Export plan", str(exc))

    def shutdown(self) -> None:
        if self.panel is not None:
            self.panel.shutdown()


def install_view3d(window: Any) -> Studio3D:
    """Add the 3D view and resection dock to ``window`` (a MainWindow); kept as ``window.view3d``."""
    from PySide6.QtWidgets import QApplication

    studio = Studio3D(window)
    window.view3d = studio
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(studio.shutdown)
    return studio
