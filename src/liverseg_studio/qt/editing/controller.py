"""The editing controller: turns clicks and drags on the viewer's panels into label edits.

It owns the *working copy* of the label map shown by the viewer (the model's
labels stay untouched for the "changed voxels" count), the tool state (tool,
label, brush radius in mm, 3D brush, flood-fill HU tolerance), the undo stack
(:class:`~liverseg_studio.core.editing.UndoStack`: changed boxes only) and
the live volumetry, computed by :func:`~liverseg_studio.core.volumetry.compute_stats`
in a worker thread after each edit (an answer is dropped when the labels
changed while it was computed, and the next one is asked for).

All the decisions about which voxels change are in
:mod:`liverseg_studio.core.editing`; the mouse is mapped to voxels through the
panel's image item, so the radiological display flips and the mm aspect of
the panels do not matter.  :meth:`press` / :meth:`move_to` / :meth:`release`
take voxel positions directly (tests, benchmark).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem

from liverseg_studio.core.editing import (
    StrokeRecorder,
    UndoStack,
    apply_label,
    capsule_region,
    changed_voxels,
    flood_region,
    polygon_region,
)
from liverseg_studio.core.volume import Intensity, Label
from liverseg_studio.core.volumetry import compute_stats
from liverseg_studio.qt.worker import TaskRunner, Worker, WorkerResult

if TYPE_CHECKING:
    from liverseg_studio.core.volume import Volume
    from liverseg_studio.core.volumetry import VolumeStats
    from liverseg_studio.qt.viewer import SliceViewer

#: Tools: key -> (name, shortcut)
TOOLS: dict[str, tuple[str, str]] = {
    "brush": ("Brush", "B"),
    "eraser": ("Eraser", "E"),
    "fill": ("Fill", "F"),
    "lasso": ("Lasso", "L"),
}
RADIUS_MM_RANGE = (0.5, 50.0)
DEFAULT_RADIUS_MM = 5.0
DEFAULT_HU_TOLERANCE = 40.0


class EditController(QObject):
    """Editing state and mouse handling of one :class:`~liverseg_studio.qt.viewer.SliceViewer`."""

    #: the label map changed (a stroke move, a fill, undo, redo)
    labels_changed = Signal()
    #: tool, label, radius, options or undo/redo availability changed
    state_changed = Signal()
    #: unsaved edits (True) or none (False)
    dirty_changed = Signal(bool)
    #: :class:`~liverseg_studio.core.volumetry.VolumeStats` of the edited labels
    stats_changed = Signal(object)

    def __init__(self, viewer: "SliceViewer", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self._volume: Volume | None = None
        self._labels: np.ndarray | None = None
        self._original: np.ndarray | None = None
        self.tool: str | None = None
        self.label = int(Label.LIVER)
        self.radius_mm = DEFAULT_RADIUS_MM
        self.brush_3d = False
        self.hu_tolerance = DEFAULT_HU_TOLERANCE
        self.undo_stack = UndoStack()
        self._touched: set[int] = set()
        self._saved_top: Any = None
        self._was_dirty = False
        self._recorder: StrokeRecorder | None = None
        self._last: tuple[int, int] | None = None
        self._erase = False
        self._lasso: list[tuple[float, float]] = []
        self._generation = 0
        self._stats_worker: Worker | None = None
        self._stats_wanted = False
        self.stats: VolumeStats | None = None
        self.runner = TaskRunner(1, self)
        # image item of each panel (mouse -> voxel) and the cursor outline / lasso path drawn in it
        self._items = {
            viewer.input_panel.view: viewer.rgb_item,
            viewer.anatomy_panel.view: viewer.grey_item,
            viewer.overlay_panel.view: viewer.seg_grey_item,
        }
        pen = QPen(Qt.GlobalColor.white)
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        lasso_pen = QPen(Qt.GlobalColor.yellow)
        lasso_pen.setCosmetic(True)
        lasso_pen.setWidthF(1.5)
        self._outlines: dict[Any, QGraphicsEllipseItem] = {}
        self._paths: dict[Any, QGraphicsPathItem] = {}
        for item in self._items.values():
            ring = QGraphicsEllipseItem(item)
            ring.setPen(pen)
            ring.setZValue(30)
            ring.hide()
            self._outlines[item] = ring
            path = QGraphicsPathItem(item)
            path.setPen(lasso_pen)
            path.setZValue(30)
            path.hide()
            self._paths[item] = path
        for panel, item in (
            (viewer.input_panel, viewer.rgb_item),
            (viewer.anatomy_panel, viewer.grey_item),
            (viewer.overlay_panel, viewer.seg_grey_item),
        ):
            panel.graphics.scene().sigMouseMoved.connect(lambda pos, it=item: self._hover(it, pos))
        viewer.slice_changed.connect(lambda _z: self._cancel_gesture())

    # ------------------------------------------------------------------ session
    def begin(self, volume: "Volume", labels: np.ndarray) -> None:
        """Edit a copy of ``labels`` (shown in the viewer); ``labels`` itself is kept as the original."""
        if labels.shape != volume.shape:
            raise ValueError(f"labels {labels.shape} do not match the volume {volume.shape}")
        self._volume = volume
        self._original = labels
        self._labels = np.array(labels, dtype=np.uint8, copy=True)
        self.undo_stack.clear()
        self._touched.clear()
        self._saved_top = None
        self._cancel_gesture()
        self._generation += 1
        self.stats = None
        self.viewer.set_labels(self._labels)
        self._emit_state()

    def end(self) -> None:
        """Forget the labels (the case was closed)."""
        self.set_tool(None)
        self._volume = None
        self._labels = None
        self._original = None
        self.undo_stack.clear()
        self._touched.clear()
        self._saved_top = None
        self._generation += 1
        self.stats = None
        self._emit_state()

    @property
    def active(self) -> bool:
        """Whether there are labels to edit."""
        return self._labels is not None and self._volume is not None

    @property
    def labels(self) -> np.ndarray | None:
        return self._labels

    @property
    def original(self) -> np.ndarray | None:
        return self._original

    @property
    def touched_slices(self) -> list[int]:
        return sorted(self._touched)

    def is_dirty(self) -> bool:
        """Unsaved edits: the undo history's top is not what was last saved."""
        top = self.undo_stack._done[-1] if self.undo_stack._done else None
        return self.active and top is not self._saved_top

    def mark_saved(self) -> None:
        self._saved_top = self.undo_stack._done[-1] if self.undo_stack._done else None
        self._emit_state()

    def changed_voxels(self) -> dict[str, dict[str, int]]:
        """Voxels changed from the original labels, per label (over the touched slices)."""
        if self._labels is None or self._original is None:
            return {"liver": {"added": 0, "removed": 0}, "tumour": {"added": 0, "removed": 0}}
        return changed_voxels(self._original, self._labels, self._touched)

    def has_changes(self) -> bool:
        return any(v for d in self.changed_voxels().values() for v in d.values())

    # ------------------------------------------------------------------ tool state
    def set_tool(self, tool: str | None) -> None:
        """``brush``, ``eraser``, ``fill``, ``lasso``, or None (back to pan/zoom)."""
        if tool is not None and tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self._cancel_gesture()
        self.tool = tool if self.active or tool is None else None
        for view in self._items:
            view.editor = self if self.tool is not None else None
        for ring in self._outlines.values():
            ring.hide()
        self._emit_state()

    def set_label(self, label: int) -> None:
        if int(label) not in (Label.LIVER, Label.TUMOUR):
            raise ValueError(f"can only edit liver (1) or tumour (2), not {label}")
        self.label = int(label)
        self._emit_state()

    def set_radius(self, radius_mm: float) -> None:
        lo, hi = RADIUS_MM_RANGE
        self.radius_mm = float(min(max(float(radius_mm), lo), hi))
        self._emit_state()

    def grow_radius(self, factor: float) -> None:
        """``]`` / ``[``: radius times ``factor`` (rounded to 0.5 mm)."""
        r = self.radius_mm * factor
        self.set_radius(max(RADIUS_MM_RANGE[0], round(r * 2) / 2 if r >= 1 else r))

    def set_brush_3d(self, on: bool) -> None:
        self.brush_3d = bool(on)
        self._emit_state()

    def set_hu_tolerance(self, tolerance: float) -> None:
        self.hu_tolerance = max(0.0, float(tolerance))
        self._emit_state()

    # ------------------------------------------------------------------ geometry
    def spacing(self) -> tuple[float, float, float]:
        """(z, y, x) mm; 1 per voxel when the spacing is unknown (radius in pixels)."""
        assert self._volume is not None
        return self._volume.spacing if self._volume.spacing_known else (1.0, 1.0, 1.0)

    def _item_pos(self, item: Any, scene_pos: QPointF) -> tuple[float, float]:
        """(y, x) in the item's pixel coordinates (pixel (y, x) spans [y, y+1) x [x, x+1))."""
        p = item.mapFromScene(scene_pos)
        return float(p.y()), float(p.x())

    # ------------------------------------------------------------------ mouse (pyqtgraph events)
    def view_click(self, view: Any, ev: Any) -> None:
        item = self._items.get(view)
        if item is None or not self.active:
            return
        y, x = self._item_pos(item, ev.scenePos())
        if self.tool in ("brush", "eraser"):
            self.press(y, x)
            self.release()
        elif self.tool == "fill":
            self.fill(int(math.floor(y)), int(math.floor(x)))

    def view_drag(self, view: Any, ev: Any) -> None:
        item = self._items.get(view)
        if item is None or not self.active:
            return
        if self.tool in ("brush", "eraser"):
            if ev.isStart():
                self.press(*self._item_pos(item, ev.buttonDownScenePos()))
            if self._recorder is not None:
                self.move_to(*self._item_pos(item, ev.scenePos()))
                self._show_outline(item, *self._item_pos(item, ev.scenePos()))
            if ev.isFinish():
                self.release()
        elif self.tool == "lasso":
            if ev.isStart():
                self._lasso = [self._item_pos(item, ev.buttonDownScenePos())]
            self._lasso.append(self._item_pos(item, ev.scenePos()))
            self._draw_lasso(item)
            if ev.isFinish():
                pts = self._lasso
                self._lasso = []
                self._paths[item].hide()
                self.lasso(pts)
        elif self.tool == "fill" and ev.isFinish():
            y, x = self._item_pos(item, ev.scenePos())
            self.fill(int(math.floor(y)), int(math.floor(x)))

    # ------------------------------------------------------------------ strokes (voxel positions)
    def press(self, y: float, x: float) -> None:
        """Start a brush (or eraser) stroke at pixel position (y, x) of the current slice."""
        if not self.active or self.tool not in ("brush", "eraser"):
            return
        assert self._labels is not None
        self._recorder = StrokeRecorder(self._labels, TOOLS[self.tool][0])
        self._erase = self.tool == "eraser"
        self._last = None
        self.move_to(y, x)

    def move_to(self, y: float, x: float) -> None:
        """Continue the stroke to (y, x): paints the capsule from the last position (one mouse move)."""
        if self._recorder is None or self._labels is None:
            return
        cur = (int(math.floor(y)), int(math.floor(x)))
        last = self._last if self._last is not None else cur
        self._last = cur
        z = self.viewer.slice_index
        sz, sy, sx = self.spacing()
        if self.brush_3d:
            box, mask = capsule_region((z, *last), (z, *cur), self.radius_mm, (sz, sy, sx), self._labels.shape)
            if not mask.any():
                return
            self._recorder.touch(range(box[0].start, box[0].stop))
            target = self._labels[box]
            rows, cols = box[1], box[2]
        else:
            box2, mask = capsule_region(last, cur, self.radius_mm, (sy, sx), self._labels.shape[1:])
            if not mask.any():
                return
            self._recorder.touch(z)
            target = self._labels[z][box2]
            rows, cols = box2
        if apply_label(target, mask, self.label, erase=self._erase):
            self._generation += 1
            self._refresh_region(rows, cols)
            self.labels_changed.emit()

    def _refresh_region(self, rows: slice, cols: slice) -> None:
        """Repaint only the changed rows/cols of the overlay.

        The overlay item shows a view of the working labels, so it only has to
        re-render its QImage (~1 ms) and Qt repaints just that rectangle of the
        panel, instead of the whole slice (two scaled 512^2 images) per mouse move.
        """
        item = self.viewer.label_item
        img = item.image
        z = self.viewer.slice_index
        if (
            self._labels is None
            or img is None
            or not hasattr(item, "_renderRequired")
            or not np.may_share_memory(img, self._labels[z])
        ):
            self.viewer.refresh_labels()
            return
        item._renderRequired = True  # pyqtgraph re-renders the QImage at the next paint
        item.update(QRectF(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start))

    def release(self) -> None:
        """End the stroke: one undo step (if anything changed), then the volumetry."""
        rec, self._recorder, self._last = self._recorder, None, None
        if rec is not None:
            self._commit(rec)

    def fill(self, y: int, x: int) -> bool:
        """Flood-fill from (y, x) on the current slice: the connected region within clicked HU ± tolerance."""
        if not self.active or self._volume is None or self._labels is None:
            return False
        z = self.viewer.slice_index
        ny, nx = self._labels.shape[1:]
        if not (0 <= y < ny and 0 <= x < nx):
            return False
        values = self._values(z)
        v = float(values[y, x])
        region = flood_region(values, (y, x), v - self.hu_tolerance, v + self.hu_tolerance)
        rec = StrokeRecorder(self._labels, "Fill")
        rec.touch(z)
        apply_label(self._labels[z], region, self.label, erase=False)
        return self._commit(rec)

    def lasso(self, points_yx: list[tuple[float, float]]) -> bool:
        """Fill the polygon through ``points_yx`` (pixel coordinates, as the mouse gives them) on this slice."""
        if not self.active or self._labels is None or len(points_yx) < 3:
            return False
        z = self.viewer.slice_index
        # pixel coordinates -> index coordinates (a pixel's centre is at its index)
        verts = np.asarray(points_yx, dtype=np.float64) - 0.5
        box, mask = polygon_region(verts, self._labels.shape[1:])
        rec = StrokeRecorder(self._labels, "Lasso")
        rec.touch(z)
        if mask.size:
            apply_label(self._labels[z][box], mask, self.label, erase=False)
        return self._commit(rec)

    def _values(self, z: int) -> np.ndarray:
        """HU of slice ``z`` (grey for windowed RGB images) for the flood fill."""
        assert self._volume is not None
        if self._volume.intensity is Intensity.WINDOWED_RGB:
            return np.asarray(self._volume.array[z], dtype=np.float32).mean(axis=-1)
        return self._volume.hu_slice(z)

    def _commit(self, rec: StrokeRecorder) -> bool:
        step = rec.finish()
        if step is None:
            return False
        self.undo_stack.push(step)
        self._touched.update(step.slices)
        self._changed()
        return True

    def _cancel_gesture(self) -> None:
        """A stroke in progress ends (slice change, tool change): what it painted is kept as one step."""
        if self._recorder is not None:
            self.release()
        self._lasso = []
        for path in self._paths.values():
            path.hide()

    # ------------------------------------------------------------------ undo / redo
    def undo(self) -> bool:
        return self._undo_redo(undo=True)

    def redo(self) -> bool:
        return self._undo_redo(undo=False)

    def _undo_redo(self, undo: bool) -> bool:
        if self._labels is None:
            return False
        self._cancel_gesture()
        step = self.undo_stack.undo(self._labels) if undo else self.undo_stack.redo(self._labels)
        if step is None:
            return False
        self._touched.update(step.slices)
        if self.viewer.slice_index not in step.slices and step.slices:
            self.viewer.set_slice(step.slices[len(step.slices) // 2])
        self._changed()
        return True

    # ------------------------------------------------------------------ results
    def _changed(self) -> None:
        self._generation += 1
        self.viewer.refresh_labels()
        self.labels_changed.emit()
        self._emit_state()
        self.request_stats()

    def request_stats(self) -> None:
        """Volumetry of the edited labels in the worker (``stats_changed`` when it is current)."""
        if self._labels is None or self._volume is None:
            return
        if self._stats_worker is not None and not self._stats_worker.is_done():
            self._stats_wanted = True  # asked again when the running one returns
            return
        self._stats_wanted = False
        gen = self._generation
        worker = Worker(compute_stats, self._labels, self._volume, kind="volumetry", pass_callbacks=False)
        worker.signals.returned.connect(lambda res, g=gen: self._stats_returned(res, g))
        worker.signals.finished.connect(self._stats_finished)
        self._stats_worker = worker
        self.runner.start(worker)

    def _stats_returned(self, res: WorkerResult, generation: int) -> None:
        if generation == self._generation and self._labels is not None:
            self.stats = res.value
            self.stats_changed.emit(res.value)
        else:
            self._stats_wanted = True  # the labels changed meanwhile: this answer is stale

    def _stats_finished(self, _rid: int) -> None:
        self._stats_worker = None
        if self._stats_wanted:
            self.request_stats()

    def stats_now(self) -> "VolumeStats":
        """The volumetry of the edited labels, computed here and now."""
        assert self._labels is not None and self._volume is not None
        self.stats = compute_stats(self._labels, self._volume)
        return self.stats

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        return self.runner.shutdown(timeout_s)

    # ------------------------------------------------------------------ drawing aids
    def _hover(self, item: Any, scene_pos: QPointF) -> None:
        if self.tool in ("brush", "eraser") and self.active and item.image is not None:
            self._show_outline(item, *self._item_pos(item, scene_pos))

    def _show_outline(self, item: Any, y: float, x: float) -> None:
        """The brush outline (radius in mm) around the voxel under the mouse, in every panel."""
        if self._volume is None:
            return
        _, sy, sx = self.spacing()
        cy, cx = math.floor(y) + 0.5, math.floor(x) + 0.5
        ry, rx = self.radius_mm / sy, self.radius_mm / sx
        rect = QRectF(cx - rx, cy - ry, 2 * rx, 2 * ry)
        for ring in self._outlines.values():
            ring.setRect(rect)
            ring.show()

    def _draw_lasso(self, item: Any) -> None:
        path = QPainterPath()
        if self._lasso:
            y0, x0 = self._lasso[0]
            path.moveTo(x0, y0)
            for y, x in self._lasso[1:]:
                path.lineTo(x, y)
        for it, p in self._paths.items():
            p.setPath(path)
            p.setVisible(bool(self._lasso))

    def _emit_state(self) -> None:
        self.state_changed.emit()
        dirty = self.is_dirty()
        if dirty != self._was_dirty:
            self._was_dirty = dirty
            self.dirty_changed.emit(dirty)
