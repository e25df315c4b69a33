"""The 3D panel (issue 25): liver and lesion surfaces in patient millimetres (pyqtgraph.opengl).

Surfaces come from :func:`liverseg_studio.core.mesh.label_surfaces` (marching cubes, Taubin
smoothing, quadric decimation), built by a :class:`~liverseg_studio.qt.worker.Worker` in a pool
thread: a frozen :class:`~liverseg_studio.qt.worker.WorkerResult` with a request id, stale answers
dropped, cooperative cancel between surfaces.  The liver is semi-transparent, each lesion opaque in
its own colour (:func:`lesion_colour`, also painted in the lesion table).

Rotate with the left mouse button, zoom with the wheel; Reset and the standard views (anterior,
posterior, left, right, superior) are buttons.  A click (press and release without dragging) on a
lesion emits :attr:`View3DPanel.lesion_picked`; :meth:`View3DPanel.highlight` outlines one.

Where OpenGL cannot start (no GL driver, a remote desktop without GL, ``LIVERSEG_NO_GL=1``) the
panel shows one line saying so; nothing else in the studio depends on it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from liverseg_studio.qt.worker import TaskRunner, Worker, WorkerFailure, WorkerResult

#: One colour per lesion (RGB 0..1), lesion n -> PALETTE[(n - 1) % len]
PALETTE = (
    (0.90, 0.16, 0.16), (0.98, 0.60, 0.10), (0.58, 0.25, 0.80), (0.10, 0.60, 0.90), (0.95, 0.85, 0.15),
    (0.90, 0.35, 0.70), (0.20, 0.80, 0.75), (0.60, 0.40, 0.20), (0.45, 0.85, 0.25), (0.35, 0.35, 0.95),
)
LIVER_RGBA = (0.80, 0.45, 0.38, 0.35)
REMNANT_RGBA = (0.30, 0.70, 0.35, 0.35)
RESECTED_RGBA = (0.85, 0.35, 0.85, 0.35)
#: camera (elevation, azimuth) in degrees of the standard views, RAS: +x right, +y anterior, +z superior
VIEWS = {
    "anterior": (0.0, 90.0),
    "posterior": (0.0, -90.0),
    "left": (0.0, 180.0),
    "right": (0.0, 0.0),
    "superior": (90.0, 90.0),
}
PICK_TOLERANCE_PX = 10.0


def lesion_colour(lesion_id: int) -> tuple[float, float, float]:
    return PALETTE[(int(lesion_id) - 1) % len(PALETTE)]


def gl_status() -> tuple[bool, str]:
    """(True, renderer) when an OpenGL context can be made here, else (False, one-line reason)."""
    if os.environ.get("LIVERSEG_NO_GL"):
        return False, "OpenGL is switched off (LIVERSEG_NO_GL)"
    try:
        import OpenGL.GL  # noqa: F401  (PyOpenGL: pyqtgraph.opengl needs it)
        from PySide6.QtGui import QOffscreenSurface, QOpenGLContext
    except Exception as exc:  # noqa: BLE001 - a missing/broken GL library is a line, not a crash
        return False, f"OpenGL is not available ({type(exc).__name__}: {exc})"
    ctx = QOpenGLContext()
    if not ctx.create():
        return False, "no OpenGL driver (a remote desktop or a machine without GL)"
    surface = QOffscreenSurface()
    surface.setFormat(ctx.format())
    surface.create()
    if not surface.isValid() or not ctx.makeCurrent(surface):
        return False, "an OpenGL context could not be made current"
    try:
        from OpenGL import GL

        renderer = GL.glGetString(GL.GL_RENDERER)
        renderer = renderer.decode(errors="replace") if isinstance(renderer, bytes) else str(renderer)
    except Exception:  # noqa: BLE001
        renderer = "OpenGL"
    finally:
        ctx.doneCurrent()
    return True, renderer


def build_surfaces(labels: np.ndarray, affine: np.ndarray, *, progress: Any = None, is_cancelled: Any = None) -> dict:
    """Worker function: every surface of ``labels`` (a copy) and the build time."""
    from liverseg_studio.core.mesh import iter_label_surfaces, surface_jobs

    t0 = time.perf_counter()
    total = max(1, len(surface_jobs(labels, tumour=False)))
    out = []
    for i, s in enumerate(iter_label_surfaces(labels, affine, tumour=False, is_cancelled=is_cancelled), start=1):
        out.append(s)
        if progress is not None:
            progress(i, total)
    return {"surfaces": out, "seconds": time.perf_counter() - t0}


def _translucent_front() -> dict:
    """pyqtgraph's "translucent" showing only the near side of a closed surface (no speckle of far faces).

    The faces reach GL wound inward (see ``_show``): the far side then faces GL's front, which is culled.
    """
    from OpenGL import GL

    return {GL.GL_DEPTH_TEST: True, GL.GL_BLEND: True, GL.GL_CULL_FACE: True, "glCullFace": (GL.GL_FRONT,),
            "glBlendFuncSeparate": (GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)}


def _make_gl_view(parent: QWidget) -> Any:
    import pyqtgraph.opengl as gl

    class _GLView(gl.GLViewWidget):
        clicked = Signal(float, float)
        #: dx, dy (pixels) of a drag with Shift ("move": the plane along its normal) or Ctrl ("rotate")
        plane_dragged = Signal(float, float, str)

        def mousePressEvent(self, ev: Any) -> None:  # noqa: N802
            self._press = ev.position()
            self._last = ev.position()
            super().mousePressEvent(ev)

        def mouseMoveEvent(self, ev: Any) -> None:  # noqa: N802
            mods = ev.modifiers()
            mode = ("move" if mods & Qt.KeyboardModifier.ShiftModifier
                    else "rotate" if mods & Qt.KeyboardModifier.ControlModifier else None)
            last = getattr(self, "_last", None)
            if mode is not None and last is not None and ev.buttons() & Qt.MouseButton.LeftButton:
                d = ev.position() - last
                self._last = ev.position()
                self._press = None  # a drag, not a click
                self.plane_dragged.emit(float(d.x()), float(d.y()), mode)
                return  # the camera stays where it is
            self._last = ev.position()
            super().mouseMoveEvent(ev)

        def mouseReleaseEvent(self, ev: Any) -> None:  # noqa: N802
            press = getattr(self, "_press", None)
            pos = ev.position()
            if press is not None and (pos - press).manhattanLength() < 4:
                self.clicked.emit(float(pos.x()), float(pos.y()))
            self._press = None
            super().mouseReleaseEvent(ev)

    return _GLView(parent)


class View3DPanel(QWidget):
    """Surfaces of the current label map; see the module docstring."""

    #: lesion id (as in the lesion table)
    lesion_picked = Signal(int)
    #: request id of a finished build
    built = Signal(int)
    #: dx, dy, "move" or "rotate": Shift/Ctrl + drag in the view (the resection plane follows)
    plane_dragged = Signal(float, float, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.gl_ok, self.gl_info = gl_status()
        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.view: Any = None
        self.buttons: dict[str, QPushButton] = {}
        if self.gl_ok:
            self.view = _make_gl_view(self)
            self.view.setMinimumSize(240, 200)
            self.view.setBackgroundColor((20, 22, 26))
            self.view.clicked.connect(self._clicked)
            self.view.plane_dragged.connect(self.plane_dragged)
            self.view.setToolTip("Drag: rotate · wheel: zoom · click a lesion: select it · "
                                 "Shift+drag: move the plane · Ctrl+drag: turn the plane")
            lay.addWidget(self.view, 1)
            row = QHBoxLayout()
            for name in ("reset", *VIEWS):
                b = QPushButton(name.capitalize())
                b.clicked.connect(lambda _=False, n=name: self.set_view(n))
                self.buttons[name] = b
                row.addWidget(b)
            lay.addLayout(row)
        else:
            self.status.setText(f"3D view unavailable: {self.gl_info}")
        lay.addWidget(self.status)
        self.runner = TaskRunner(1, self)
        self._rid = 0
        self._worker: Worker | None = None
        self.surfaces: dict[str, Any] = {}  # name -> core.mesh.SurfaceMesh
        self.items: dict[str, Any] = {}  # name -> GLMeshItem
        self.plane_item: Any = None
        self.build_seconds: float | None = None
        self.highlighted: int | None = None
        self._centre = np.zeros(3)
        self._extent = 100.0
        self._split: Any = None  # (ResectionPlan) colouring the liver by side

    # ------------------------------------------------------------------ building
    def set_labels(self, labels: np.ndarray | None, affine: np.ndarray | None = None) -> int | None:
        """Rebuild the surfaces of ``labels`` (z, y, x) in a worker; returns the request id (None: cleared)."""
        if self._worker is not None:
            self._worker.cancel()
        if labels is None or not self.gl_ok:
            self.clear()
            return None
        worker = Worker(build_surfaces, np.array(labels, dtype=np.uint8, copy=True),
                        np.asarray(affine, dtype=np.float64), kind="surfaces")
        self._rid = worker.request_id
        self._worker = worker
        worker.signals.returned.connect(self._returned)
        worker.signals.errored.connect(self._errored)
        self.status.setText("building the 3D surfaces…")
        self.runner.start(worker)
        return worker.request_id

    def _returned(self, res: WorkerResult) -> None:
        if res.request_id != self._rid:
            return  # stale: the labels changed meanwhile
        self._worker = None
        self.build_seconds = float(res.value["seconds"])
        self._show({s.name: s for s in res.value["surfaces"]})
        n = sum(1 for s in self.surfaces.values() if s.kind == "lesion")
        self.status.setText(f"{len(self.surfaces) - n} liver surface, {n} lesion(s); built in {self.build_seconds:.2f} s")
        self.built.emit(res.request_id)

    def _errored(self, failure: WorkerFailure) -> None:
        if failure.request_id != self._rid:
            return
        self._worker = None
        if not failure.cancelled:
            self.status.setText(f"3D surfaces failed: {failure.error}")

    def clear(self) -> None:
        if self.view is not None:
            for item in list(self.items.values()) + ([self.plane_item] if self.plane_item is not None else []):
                self.view.removeItem(item)
        self.items, self.surfaces, self.plane_item, self.highlighted = {}, {}, None, None

    def _show(self, surfaces: dict[str, Any]) -> None:
        import pyqtgraph.opengl as gl

        self.clear()
        self.surfaces = surfaces
        for name, s in surfaces.items():
            # pyqtgraph's "shaded" shader lights faces whose normal points away from the viewer (its light is
            # at eye (-1, 1, 1)): hand it the faces wound inward, so the outward side facing us is lit
            md = gl.MeshData(vertexes=s.vertices.astype(np.float32), faces=s.faces[:, ::-1].astype(np.int32))
            if s.kind == "liver":
                item = gl.GLMeshItem(meshdata=md, smooth=True, color=LIVER_RGBA, shader="shaded",
                                     glOptions=_translucent_front())
                item.setDepthValue(10)  # drawn after the opaque lesions, which show through it
            else:
                item = gl.GLMeshItem(meshdata=md, smooth=True, color=(*lesion_colour(s.lesion_id), 1.0),
                                     shader="shaded", glOptions="opaque")
            self.items[name] = item
            self.view.addItem(item)
        liver = surfaces.get("liver")
        if liver is not None:
            lo, hi = liver.vertices.min(axis=0), liver.vertices.max(axis=0)
            self._centre, self._extent = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
        self.set_view("reset")
        if self._split is not None:
            self.show_plan(self._split)
        if self.highlighted is not None:
            self.highlight(self.highlighted)

    # ------------------------------------------------------------------ camera
    def set_view(self, name: str) -> None:
        if self.view is None:
            return
        from PySide6.QtGui import QVector3D

        elevation, azimuth = VIEWS.get(name, (20.0, 60.0))  # reset: an oblique anterior-right view
        self.view.setCameraPosition(pos=QVector3D(*map(float, self._centre)), distance=1.15 * self._extent,
                                    elevation=elevation, azimuth=azimuth)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Widget pixel (x, y) and depth of (n, 3) patient-mm points as the camera sees them now."""
        vp = self.view.getViewport()
        proj = np.array(self.view.projectionMatrix(vp, vp).data(), dtype=np.float64).reshape(4, 4).T
        view = np.array(self.view.viewMatrix().data(), dtype=np.float64).reshape(4, 4).T
        p = np.c_[np.asarray(points, dtype=np.float64), np.ones(len(points))] @ (proj @ view).T
        ndc = p[:, :3] / p[:, 3:4]
        px = np.c_[(ndc[:, 0] + 1) / 2 * self.view.width(), (1 - ndc[:, 1]) / 2 * self.view.height()]
        return px, ndc[:, 2]

    # ------------------------------------------------------------------ picking
    def pick(self, x: float, y: float) -> int | None:
        """The lesion under widget pixel (x, y): the nearest projected surface within a few pixels."""
        best: tuple[float, float, int] | None = None
        for s in self.surfaces.values():
            if s.kind != "lesion":
                continue
            px, depth = self.project(s.vertices[:: max(1, len(s.vertices) // 4000)])
            d = np.hypot(px[:, 0] - x, px[:, 1] - y)
            k = int(np.argmin(d))
            if d[k] <= PICK_TOLERANCE_PX and (best is None or (d[k], depth[k]) < best[:2]):
                best = (float(d[k]), float(depth[k]), s.lesion_id)
        return None if best is None else best[2]

    def _clicked(self, x: float, y: float) -> None:
        lesion = self.pick(x, y)
        if lesion is not None:
            self.highlight(lesion)
            self.lesion_picked.emit(lesion)

    def highlight(self, lesion_id: int | None) -> None:
        """Show lesion ``lesion_id`` brighter (the others dimmed); None: all as usual."""
        self.highlighted = lesion_id
        for name, item in self.items.items():
            s = self.surfaces[name]
            if s.kind != "lesion":
                continue
            rgb = np.array(lesion_colour(s.lesion_id))
            if lesion_id is None or s.lesion_id == lesion_id:
                colour = (*np.clip(rgb * (1.35 if s.lesion_id == lesion_id else 1.0), 0, 1), 1.0)
            else:
                colour = (*(0.45 * rgb), 1.0)
            item.setColor(colour)

    # ------------------------------------------------------------------ resection
    def show_plan(self, plan: Any | None) -> None:
        """Colour the liver by side of ``plan`` (a core.resection.ResectionPlan) and draw the plane."""
        import pyqtgraph.opengl as gl

        self._split = plan
        if self.view is None:
            return
        if self.plane_item is not None:
            self.view.removeItem(self.plane_item)
            self.plane_item = None
        liver, item = self.surfaces.get("liver"), self.items.get("liver")
        if liver is None or item is None:
            return
        md = item.opts["meshdata"]
        if plan is None:
            md.setVertexColors(np.tile(np.array(LIVER_RGBA, dtype=np.float32), (len(liver.vertices), 1)))
        else:
            side = plan.signed_distance(liver.vertices) > 0
            md.setVertexColors(np.where(side[:, None], np.array(RESECTED_RGBA), np.array(REMNANT_RGBA)).astype(np.float32))
            n = np.asarray(plan.normal)
            u = np.cross(n, [0.0, 0.0, 1.0] if abs(n[2]) < 0.9 else [1.0, 0.0, 0.0])
            u /= np.linalg.norm(u)
            v = np.cross(n, u)
            c = np.asarray(plan.point) - n * float(n @ (np.asarray(plan.point) - self._centre))  # nearest the liver
            r = 0.6 * self._extent
            quad = np.array([c + r * (a * u + b * v) for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))], dtype=np.float32)
            self.plane_item = gl.GLMeshItem(vertexes=quad, faces=np.array([[0, 1, 2], [0, 2, 3]]),
                                            color=(0.95, 0.95, 0.95, 0.25), glOptions="translucent")
            self.plane_item.setDepthValue(20)
            self.view.addItem(self.plane_item)
        item.meshDataChanged()

    def shutdown(self, timeout_s: float = 10.0) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self.runner.pool.waitForDone(int(timeout_s * 1000))
