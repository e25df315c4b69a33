"""The slice viewer: three linked pyqtgraph panels, as in the paper, and more.

1. **Model input** — the windowed 3-channel image exactly as the model sees it
   (:func:`liverseg_studio.core.preprocess.model_input`).
2. **Anatomy** — the slice in grey, window/level from a ``HistogramLUTItem``
   (drag its handles) or from the presets.
3. **Segmentation** — the same grey image with the label map above it as an
   ``ImageItem`` through an RGBA lookup table (opacity and per-label
   visibility), with a legend.

Pan and zoom are linked across the panels (left drag pans, Ctrl+wheel or right
drag zooms); the mouse wheel pages through the slices.  When the affine tells
the in-plane orientation, the slices are shown radiologically (patient right
on the screen's left, anterior up) with square millimetres: a pure display
transform of the image items, the data are never touched.

Importing this module imports pyqtgraph (slow); the main window imports it
only when the first case is opened, so the start screen appears fast.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from liverseg_studio.core.colours import DEFAULT_ALPHA, LABEL_COLOURS
from liverseg_studio.core.preprocess import DEFAULT_SPEC, PreprocessSpec, model_input
from liverseg_studio.core.volume import Intensity, Label, Volume
from liverseg_studio.qt.display import (  # noqa: F401 - re-exported: the viewer's public names
    DEFAULT_PRESET,
    LAYOUTS,
    WINDOW_PRESETS,
    DisplayOrientation,
    display_orientation,
    label_lut,
    levels_to_window,
    window_to_levels,
)
from liverseg_studio.qt.panels import Panel as _Panel
from liverseg_studio.qt.panels import SliceViewBox

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="#0b0d10", foreground="#9aa3b2")


class SliceViewer(QWidget):
    """Three linked panels with slice slider, window/level, overlay controls and cursor readout."""

    slice_changed = Signal(int)
    #: the layout mode after the user (or code) changed it
    layout_changed = Signal(str)
    #: readout text (empty when the cursor leaves the image)
    cursor_moved = Signal(str)
    #: (width, level) after any window change
    window_changed = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._volume: Volume | None = None
        self._labels: np.ndarray | None = None
        self._spec: PreprocessSpec = DEFAULT_SPEC
        self._orientation = DisplayOrientation()
        self._rgb_cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._slice = 0
        self._opacity = DEFAULT_ALPHA
        self._visible: dict[int, bool] = {int(lab): True for lab in LABEL_COLOURS}
        self._window = WINDOW_PRESETS[DEFAULT_PRESET]
        self._updating_levels = False
        self._layout_mode = "three"
        self._last_readout: dict[str, Any] | None = None
        self._drag_start_window: tuple[float, float] | None = None
        self._rgb_timer = QTimer(self)
        self._rgb_timer.setSingleShot(True)
        self._rgb_timer.setInterval(40)
        self._rgb_timer.timeout.connect(self._draw_pending_rgb)

        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(6)

        # -- toolbar row --------------------------------------------------------
        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(QLabel("Window"))
        self.preset_combo = QComboBox()
        for name, (w, lv) in WINDOW_PRESETS.items():
            self.preset_combo.addItem(f"{name}  W{w:g} / L{lv:g}", name)
        self.preset_combo.addItem("Custom", "")
        self.preset_combo.setCurrentIndex(list(WINDOW_PRESETS).index(DEFAULT_PRESET))
        self.preset_combo.activated.connect(self._preset_chosen)
        bar.addWidget(self.preset_combo)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Overlay"))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(round(self._opacity * 100)))
        self.opacity_slider.setFixedWidth(120)
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_slider.valueChanged.connect(lambda v: self.set_opacity(v / 100.0))
        bar.addWidget(self.opacity_slider)
        self.opacity_label = QLabel("")
        self.opacity_label.setMinimumWidth(36)
        bar.addWidget(self.opacity_label)
        bar.addStretch(1)
        bar.addWidget(QLabel("Layout"))
        self.layout_combo = QComboBox()
        for key, text in LAYOUTS.items():
            self.layout_combo.addItem(text, key)
        self.layout_combo.currentIndexChanged.connect(
            lambda i: self.set_layout_mode(self.layout_combo.itemData(i))
        )
        bar.addWidget(self.layout_combo)
        self.reset_view_button = QToolButton()
        self.reset_view_button.setText("Fit")
        self.reset_view_button.setToolTip("Fit the slice into the panels (reset zoom and pan)")
        self.reset_view_button.clicked.connect(self.fit_view)
        bar.addWidget(self.reset_view_button)
        root.addLayout(bar)

        # -- panels -------------------------------------------------------------------
        panels = QHBoxLayout()
        panels.setSpacing(6)
        self._grid = QGridLayout()
        self._grid.setSpacing(6)
        self.input_panel = _Panel("MODEL INPUT · windowed RGB")
        self.anatomy_panel = _Panel("ANATOMY · grey")
        self.overlay_panel = _Panel("SEGMENTATION")
        self.rgb_item = pg.ImageItem()
        self.grey_item = pg.ImageItem()
        self.seg_grey_item = pg.ImageItem()
        self.label_item = pg.ImageItem()
        self.label_item.setZValue(10)
        # linked cursor: a small cross in the panels the mouse is not over
        self._markers: dict[pg.ImageItem, pg.ScatterPlotItem] = {}
        for item in (self.rgb_item, self.grey_item, self.seg_grey_item):
            marker = pg.ScatterPlotItem(symbol="+", size=18, pen=pg.mkPen("#ff4fd8", width=2), brush=None)
            marker.setZValue(20)
            marker.hide()
            self._markers[item] = marker
        self.input_panel.view.addItem(self.rgb_item)
        self.anatomy_panel.view.addItem(self.grey_item)
        self.overlay_panel.view.addItem(self.seg_grey_item)
        self.overlay_panel.view.addItem(self.label_item)
        self.input_panel.view.addItem(self._markers[self.rgb_item])
        self.anatomy_panel.view.addItem(self._markers[self.grey_item])
        self.overlay_panel.view.addItem(self._markers[self.seg_grey_item])
        # pan/zoom linked: every panel shows the same region, whatever its size
        self._syncing = False
        for panel in (self.input_panel, self.anatomy_panel, self.overlay_panel):
            panel.view.sigRangeChanged.connect(lambda *_, v=panel.view: self._sync_views(v))

        # legend + per-label visibility in the segmentation panel's header
        self.label_checks: dict[int, QCheckBox] = {}
        legend = QHBoxLayout()  # a row of its own under the title: never squeezed in a narrow panel
        legend.setContentsMargins(4, 0, 4, 0)
        legend.addStretch(1)
        self.overlay_panel.layout().insertLayout(1, legend)
        for label in LABEL_COLOURS:
            box = QCheckBox(Label(label).display_name)
            box.setObjectName("liver" if label == Label.LIVER else "tumour")
            box.setChecked(True)
            box.setToolTip(f"Show {Label(label).display_name.lower()} in the overlay")
            box.toggled.connect(lambda on, lab=int(label): self.set_label_visible(lab, on))
            legend.addWidget(box)
            self.label_checks[int(label)] = box

        # window/level histogram, always visible at the right
        self.histogram_widget = pg.GraphicsLayoutWidget()
        self.histogram_widget.setFixedWidth(110)
        self.histogram = pg.HistogramLUTItem(image=self.grey_item, fillHistogram=False)
        self.histogram.gradient.loadPreset("grey")
        self.histogram.fillHistogram(True, color=(154, 163, 178, 120))
        self.histogram.region.setBrush(pg.mkBrush(61, 139, 253, 40))
        for line in self.histogram.region.lines:
            line.setPen(pg.mkPen("#3d8bfd", width=2))
            line.setHoverPen(pg.mkPen("#ffffff", width=2))
        self.histogram_widget.addItem(self.histogram)
        self.histogram.sigLevelsChanged.connect(self._levels_changed)
        # the histogram is of the whole volume (computed once in set_volume), not of each slice
        self.grey_item.sigImageChanged.disconnect(self.histogram.imageChanged)
        hist_box = QVBoxLayout()
        hist_box.setSpacing(4)
        wl_title = QLabel("W / L")
        wl_title.setObjectName("panelTitle")
        hist_box.addWidget(wl_title)
        hist_box.addWidget(self.histogram_widget, 1)

        panels.addLayout(self._grid, 1)
        panels.addLayout(hist_box)
        root.addLayout(panels, 1)

        # -- slice navigation -----------------------------------------------------
        nav = QHBoxLayout()
        self.prev_button = QToolButton()
        self.prev_button.setArrowType(Qt.ArrowType.LeftArrow)
        self.prev_button.setToolTip("Previous slice (Page Up)")
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self.set_slice)
        self.next_button = QToolButton()
        self.next_button.setArrowType(Qt.ArrowType.RightArrow)
        self.next_button.setToolTip("Next slice (Page Down)")
        self.next_button.clicked.connect(lambda: self.step(1))
        self.slice_label = QLabel("Slice – / –")
        self.slice_label.setMinimumWidth(120)
        self.slice_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        nav.addWidget(self.prev_button)
        nav.addWidget(self.slider, 1)
        nav.addWidget(self.next_button)
        nav.addWidget(self.slice_label)
        root.addLayout(nav)

        for panel, item in (
            (self.input_panel, self.rgb_item),
            (self.anatomy_panel, self.grey_item),
            (self.overlay_panel, self.seg_grey_item),
        ):
            panel.view.sigSliceScroll.connect(self.step)
            panel.view.sigWindowDrag.connect(self._window_drag)
            panel.graphics.scene().sigMouseMoved.connect(lambda pos, it=item: self._mouse_moved(it, pos))

        self.set_layout_mode(self._layout_mode)
        self._apply_lut()
        self._update_opacity_label()
        self.set_window(*self._window)

    # -- data -----------------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def labels(self) -> np.ndarray | None:
        return self._labels

    @property
    def orientation(self) -> DisplayOrientation:
        return self._orientation

    @property
    def n_slices(self) -> int:
        return self._volume.n_slices if self._volume is not None else 0

    @property
    def slice_index(self) -> int:
        return self._slice

    def set_volume(self, volume: Volume, spec: PreprocessSpec | None = None) -> None:
        """Show ``volume`` (drops any labels), starting at its middle slice."""
        self._volume = volume
        self._labels = None
        self._spec = spec or DEFAULT_SPEC
        self._rgb_cache.clear()
        self._orientation = display_orientation(volume)
        is_rgb = volume.intensity is Intensity.WINDOWED_RGB
        self.preset_combo.setEnabled(not is_rgb)
        self.anatomy_panel.title.setText(
            "ANATOMY · grey (from the windowed image)" if is_rgb else "ANATOMY · grey, HU"
        )
        if is_rgb:
            self.histogram.setHistogramRange(0, 255)
        else:
            self.histogram.setHistogramRange(-1000, 1500)
        self._set_volume_histogram(volume)
        z, y, x = volume.shape
        transform = self._orientation.qtransform(y, x)
        for item in (self.rgb_item, self.grey_item, self.seg_grey_item, self.label_item):
            item.setTransform(transform)
        self.slider.blockSignals(True)
        self.slider.setRange(0, z - 1)
        self.slider.setValue(z // 2)
        self.slider.blockSignals(False)
        self._slice = z // 2
        self._show_slice(sync_rgb=True)
        self.slice_changed.emit(self._slice)
        if is_rgb:
            self.set_levels(0.0, 255.0)
        else:
            self.set_window(*self._window)
        self.fit_view()
        self.set_layout_mode(self._layout_mode)

    def _set_volume_histogram(self, volume: Volume) -> None:
        """Histogram of the whole volume (every few slices, every other pixel)."""
        step = max(1, volume.n_slices // 24)
        idx = range(0, volume.n_slices, step)
        if volume.intensity is Intensity.WINDOWED_RGB:
            sample = np.concatenate([self_grey.ravel() for self_grey in (
                np.asarray(volume.array[i, ::2, ::2], dtype=np.float32).mean(axis=-1) for i in idx)])
            lo, hi = 0.0, 255.0
        else:
            sample = np.concatenate([volume.hu_slice(i)[::2, ::2].ravel() for i in idx])
            lo, hi = -1100.0, 2000.0
        counts, edges = np.histogram(np.clip(sample, lo, hi), bins=256, range=(lo, hi))
        counts = np.log1p(counts.astype(np.float64))  # air and soft tissue both visible
        self.histogram.plot.setData(edges[:-1], counts)

    def set_preprocess_spec(self, spec: PreprocessSpec) -> None:
        """The windowing of the selected model (the model-input panel follows it)."""
        if spec != self._spec:
            self._spec = spec
            self._rgb_cache.clear()
            if self._volume is not None:
                self._show_slice()

    def set_labels(self, labels: np.ndarray | None) -> None:
        """Show a label map (z, y, x) over the grey image, or remove it (None)."""
        if labels is not None and self._volume is not None and labels.shape != self._volume.shape:
            raise ValueError(f"labels shape {labels.shape} does not match the volume {self._volume.shape}")
        self._labels = None if labels is None else np.asarray(labels, dtype=np.uint8)
        self.refresh_labels()

    def clear(self) -> None:
        """Forget the volume and labels and release their memory."""
        self._volume = None
        self._labels = None
        self._rgb_cache.clear()
        self._last_readout = None
        for item in (self.rgb_item, self.grey_item, self.seg_grey_item, self.label_item):
            item.clear()
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self._slice = 0
        self._rgb_timer.stop()
        self._show_cursor_markers(None, 0.0, 0.0)
        self.slice_label.setText("Slice – / –")
        self._update_annotations()

    # -- navigation -------------------------------------------------------------------------
    def set_slice(self, index: int, force: bool = False) -> None:
        if self._volume is None:
            return
        index = int(min(max(int(index), 0), self._volume.n_slices - 1))
        if index == self._slice and not force:
            return
        self._slice = index
        if self.slider.value() != index:
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        self._show_slice()
        self.slice_changed.emit(index)

    def step(self, delta: int) -> None:
        self.set_slice(self._slice + int(delta))

    def _panels(self) -> tuple["_Panel", "_Panel", "_Panel"]:
        return (self.input_panel, self.anatomy_panel, self.overlay_panel)

    def _sync_views(self, source: SliceViewBox) -> None:
        """Show the region of ``source`` in the other panels (each keeps its aspect)."""
        if self._syncing:
            return
        self._syncing = True
        try:
            xr, yr = source.viewRange()
            for p in self._panels():
                if p.view is not source:
                    p.view.setRange(xRange=xr, yRange=yr, padding=0.0)
        finally:
            self._syncing = False

    def fit_view(self) -> None:
        """Fit the slice into the visible panels (they share one linked region)."""
        if self._volume is None:
            return
        visible = [p for p in self._panels() if p.isVisibleTo(self)] or [self.overlay_panel]
        largest = max(visible, key=lambda p: p.width() * p.height())
        largest.view.autoRange(padding=0.02)
        self._sync_views(largest.view)

    def set_layout_mode(self, mode: str) -> None:
        """``three`` panels, or one large ``overlay`` / ``anatomy`` / ``input`` panel."""
        if mode not in LAYOUTS:
            raise ValueError(f"unknown layout {mode!r}")
        self._layout_mode = mode
        grid = self._grid
        for p in self._panels():
            grid.removeWidget(p)
        for i in range(3):
            grid.setColumnStretch(i, 0)
            grid.setRowStretch(i, 0)
        if mode == "three":
            for col, p in enumerate(self._panels()):
                grid.addWidget(p, 0, col)
                grid.setColumnStretch(col, 1)
            grid.setRowStretch(0, 1)
        elif mode == "focus":
            grid.addWidget(self.overlay_panel, 0, 0, 2, 1)
            grid.addWidget(self.input_panel, 0, 1)
            grid.addWidget(self.anatomy_panel, 1, 1)
            grid.setColumnStretch(0, 2)
            grid.setColumnStretch(1, 1)
            grid.setRowStretch(0, 1)
            grid.setRowStretch(1, 1)
        else:
            only = {"overlay": self.overlay_panel, "anatomy": self.anatomy_panel, "input": self.input_panel}[mode]
            grid.addWidget(only, 0, 0)
            grid.setColumnStretch(0, 1)
            grid.setRowStretch(0, 1)
        shown = {"three": self._panels(), "focus": self._panels()}.get(mode)
        for p in self._panels():
            p.setVisible(p in shown if shown is not None else p is only)
        if mode in ("three", "focus", "input"):
            self.flush()
        QTimer.singleShot(0, self, self.fit_view)  # once the panels have their new size
        idx = list(LAYOUTS).index(mode)
        if self.layout_combo.currentIndex() != idx:
            self.layout_combo.blockSignals(True)
            self.layout_combo.setCurrentIndex(idx)
            self.layout_combo.blockSignals(False)
        self.layout_changed.emit(mode)

    @property
    def layout_mode(self) -> str:
        return self._layout_mode

    # -- window / level ---------------------------------------------------------------------
    def set_window(self, width: float, level: float) -> None:
        self.set_levels(*window_to_levels(width, level))

    def set_levels(self, lo: float, hi: float) -> None:
        self.histogram.setLevels(float(lo), float(hi))
        self._levels_changed()

    def window(self) -> tuple[float, float]:
        """Current (width, level)."""
        return self._window

    def apply_preset(self, name: str) -> None:
        self.set_window(*WINDOW_PRESETS[name])

    #: HU of window width / level per screen pixel of a window/level drag
    WL_DRAG_HU_PER_PIXEL = 2.0

    def _window_drag(self, phase: int, dx: float, dy: float) -> None:
        """Drag right widens the window, drag up raises the level (PACS convention)."""
        if self._volume is None or self._volume.intensity is Intensity.WINDOWED_RGB:
            return
        if phase == 0 or self._drag_start_window is None:
            self._drag_start_window = self._window
        w0, l0 = self._drag_start_window
        k = self.WL_DRAG_HU_PER_PIXEL
        self.set_window(max(1.0, w0 + k * dx), l0 - k * dy)
        if phase == 2:
            self._drag_start_window = None

    def _preset_chosen(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name:
            self.apply_preset(name)

    def _levels_changed(self, *_: Any) -> None:
        if self._updating_levels:
            return
        self._updating_levels = True
        try:
            lo, hi = self.histogram.getLevels()
            self.grey_item.setLevels((lo, hi))
            self.seg_grey_item.setLevels((lo, hi))
            self._window = levels_to_window(lo, hi)
            w, lv = self._window
            match = ""
            for name, (pw, pl) in WINDOW_PRESETS.items():
                if abs(pw - w) < 0.5 and abs(pl - lv) < 0.5:
                    match = name
            idx = self.preset_combo.findData(match)
            self.preset_combo.blockSignals(True)
            self.preset_combo.setCurrentIndex(idx if idx >= 0 else self.preset_combo.count() - 1)
            self.preset_combo.blockSignals(False)
            self._update_annotations()
            self.window_changed.emit(w, lv)
        finally:
            self._updating_levels = False

    # -- overlay ------------------------------------------------------------------------------
    def set_opacity(self, opacity: float) -> None:
        self._opacity = min(1.0, max(0.0, float(opacity)))
        v = int(round(self._opacity * 100))
        if self.opacity_slider.value() != v:
            self.opacity_slider.blockSignals(True)
            self.opacity_slider.setValue(v)
            self.opacity_slider.blockSignals(False)
        self._update_opacity_label()
        self._apply_lut()

    @property
    def opacity(self) -> float:
        return self._opacity

    def set_label_visible(self, label: int, visible: bool) -> None:
        self._visible[int(label)] = bool(visible)
        box = self.label_checks.get(int(label))
        if box is not None and box.isChecked() != bool(visible):
            box.blockSignals(True)
            box.setChecked(bool(visible))
            box.blockSignals(False)
        self._apply_lut()

    def label_visible(self, label: int) -> bool:
        return self._visible.get(int(label), True)

    def visible_labels(self) -> list[int]:
        """The label values currently shown in the overlay."""
        return [lab for lab, on in self._visible.items() if on]

    def hover(self, y: int, x: int) -> None:
        """Act as if the mouse were over voxel (y, x) of the anatomy panel (readout + linked cursor)."""
        self._mouse_moved(self.grey_item, self.grey_item.mapToScene(x + 0.5, y + 0.5))

    def overlay_lut(self) -> np.ndarray:
        return label_lut(self._opacity, self._visible)

    def _apply_lut(self) -> None:
        self.label_item.setLookupTable(self.overlay_lut())
        self.label_item.setLevels((0, 255))

    def _update_opacity_label(self) -> None:
        self.opacity_label.setText(f"{int(round(self._opacity * 100))} %")

    # -- drawing --------------------------------------------------------------------------------
    def grey_slice(self, index: int) -> np.ndarray:
        """The grey image of slice ``index`` (HU, or grey of a windowed image)."""
        assert self._volume is not None
        vol = self._volume
        if vol.intensity is Intensity.WINDOWED_RGB:
            return np.asarray(vol.array[index], dtype=np.float32).mean(axis=-1)
        return vol.hu_slice(index)

    def rgb_slice(self, index: int) -> np.ndarray:
        """Slice ``index`` as the model sees it (uint8 y, x, 3), cached."""
        assert self._volume is not None
        rgb = self._rgb_cache.get(index)
        if rgb is None:
            rgb = model_input(self._volume, [index], self._spec)[0]
            self._rgb_cache[index] = rgb
            while len(self._rgb_cache) > 24:
                self._rgb_cache.popitem(last=False)
        else:
            self._rgb_cache.move_to_end(index)
        return rgb

    def _show_slice(self, sync_rgb: bool = False) -> None:
        """Draw the current slice.  The model-input image (~50 ms per 512^2 slice to
        window) is drawn at once when cached or ``sync_rgb``, else when scrolling pauses."""
        if self._volume is None:
            return
        z = self._slice
        grey = self.grey_slice(z)
        lo, hi = self.histogram.getLevels()
        if sync_rgb or z in self._rgb_cache:
            self._rgb_timer.stop()
            self.rgb_item.setImage(self.rgb_slice(z), autoLevels=False, levels=(0, 255))
        else:
            self._rgb_timer.start()
        self.grey_item.setImage(grey, autoLevels=False, levels=(lo, hi))
        self.seg_grey_item.setImage(grey, autoLevels=False, levels=(lo, hi))
        self.refresh_labels()
        self.slice_label.setText(f"Slice {z + 1} / {self._volume.n_slices}")
        self._update_annotations()
        if self._last_readout is not None:
            r = self._last_readout
            self._emit_readout(z, r["y"], r["x"])

    def _draw_pending_rgb(self) -> None:
        if self._volume is not None and self.input_panel.isVisibleTo(self):
            self.rgb_item.setImage(self.rgb_slice(self._slice), autoLevels=False, levels=(0, 255))

    def flush(self) -> None:
        """Draw anything deferred (the model-input image) now."""
        if self._rgb_timer.isActive():
            self._rgb_timer.stop()
            if self._volume is not None:
                self.rgb_item.setImage(self.rgb_slice(self._slice), autoLevels=False, levels=(0, 255))

    def _update_annotations(self) -> None:
        if self._volume is None:
            for p in (self.input_panel, self.anatomy_panel, self.overlay_panel):
                p.set_annotations("", "", False)
            return
        n = self._volume.n_slices
        where = f"Slice {self._slice + 1}/{n}"
        letters = self._orientation.radiological
        w, lv = self._window
        wl = "" if self._volume.intensity is Intensity.WINDOWED_RGB else f"W {w:.0f}  L {lv:.0f}"
        self.input_panel.set_annotations(where, "as the model sees it", letters)
        self.anatomy_panel.set_annotations(where, wl, letters)
        self.overlay_panel.set_annotations(where, wl, letters)

    def refresh_labels(self) -> None:  # after the label map changed in place (editing)
        if self._labels is None or self._volume is None:
            self.label_item.clear()
            return
        self.label_item.setImage(self._labels[self._slice], autoLevels=False, levels=(0, 255))
        self.label_item.setLookupTable(self.overlay_lut())

    # -- cursor readout --------------------------------------------------------------------------
    def readout(self, z: int, y: int, x: int) -> dict[str, Any]:
        """Values under voxel (z, y, x): HU (or grey), and label name."""
        assert self._volume is not None
        vol = self._volume
        out: dict[str, Any] = {"x": int(x), "y": int(y), "z": int(z)}
        if vol.intensity is Intensity.WINDOWED_RGB:
            out["value"] = float(np.asarray(vol.array[z, y, x], dtype=np.float32).mean())
            out["unit"] = "grey"
        else:
            from liverseg_studio.core.volume import hu_from

            out["value"] = float(hu_from(np.asarray(vol.array[z, y, x]), vol.intensity, vol.hu_range))
            out["unit"] = "HU"
        if self._labels is not None:
            out["label"] = Label(int(self._labels[z, y, x])).display_name
        return out

    @staticmethod
    def format_readout(r: dict[str, Any], n_slices: int) -> str:
        text = f"x {r['x']}   y {r['y']}   slice {r['z'] + 1}/{n_slices}   {r['unit']} {r['value']:.0f}"
        if "label" in r:
            text += f"   {r['label']}"
        return text

    def _emit_readout(self, z: int, y: int, x: int) -> None:
        assert self._volume is not None
        r = self.readout(z, y, x)
        self._last_readout = r
        self.cursor_moved.emit(self.format_readout(r, self._volume.n_slices))

    def _mouse_moved(self, item: pg.ImageItem, scene_pos: QPointF) -> None:
        if self._volume is None or item.image is None:
            return
        p = item.mapFromScene(scene_pos)
        x, y = int(np.floor(p.x())), int(np.floor(p.y()))
        _, ny, nx = self._volume.shape
        if 0 <= x < nx and 0 <= y < ny:
            self._emit_readout(self._slice, y, x)
            self._show_cursor_markers(item, p.x(), p.y())
        else:
            self._last_readout = None
            self._show_cursor_markers(None, 0.0, 0.0)
            self.cursor_moved.emit("")

    def _show_cursor_markers(self, source: pg.ImageItem | None, x: float, y: float) -> None:
        """Mark the point under the mouse in the *other* panels (linked cursor)."""
        for item, marker in self._markers.items():
            if source is None or item is source:
                marker.hide()
                continue
            pos = item.mapToView(QPointF(x, y))
            marker.setData([pos.x()], [pos.y()])
            marker.show()

    def cursor_marker_positions(self) -> dict[str, tuple[float, float] | None]:
        """Where the linked-cursor markers are (view coordinates), by panel; None when hidden."""
        out: dict[str, tuple[float, float] | None] = {}
        for name, item in (("input", self.rgb_item), ("anatomy", self.grey_item), ("overlay", self.seg_grey_item)):
            m = self._markers[item]
            xs, ys = m.getData()
            out[name] = (float(xs[0]), float(ys[0])) if m.isVisible() and xs is not None and len(xs) else None
        return out
