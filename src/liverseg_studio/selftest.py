"""``--self-test``: a quick end-to-end check of an installation, above all of the frozen executable.

``liverseg --self-test`` and ``liverseg-studio --self-test`` (the PyInstaller
entry scripts in ``packaging/``) and ``python -m liverseg_studio.selftest``
run, with no network and no input files:

1. the plugin manager (entry-point discovery, which must survive freezing):
   every plugin must load; the built-in loaders and the ``onnx`` backend must
   be registered; backends that cannot work in this build (``fastai`` without
   PyTorch) are reported, not failed;
2. a synthetic abdomen (body ellipse, liver-like ellipse, a darker tumour
   disc; generated in code) written as NIfTI to a temporary folder and read
   back through the loader registry (shape and affine must survive); the
   volumetry of its truth labels (liver mL, one lesion and its diameter) and
   the libraries imported only on demand (scipy.spatial, highdicom, PIL);
   the sample case (LiTS 117) read when installed or bundled (``resources/sample``);
3. the backend: the default engine (``openvino`` when the build ships OpenVINO,
   else ``onnx``; ``--backend NAME`` picks one) loads the default model (``resources/models/default``,
   in a bundle ``sys._MEIPASS/resources/models/default``; ``--model DIR``
   overrides) -- when there is no default model the self-test fails (exit 1)
   with a message saying so, unless another backend is chosen with
   ``--backend threshold`` (no model needed);
4. ``segment_volume`` (backend, 3D post-processing, volumetry) and the checks:
   label map shape == volume shape, uint8, values in {0, 1, 2}, every slice
   went through the model (``timings["slices"]``); for the ``threshold``
   backend the liver must be found (Dice of liver >= 0.8 against the phantom's
   truth); for a model only its Dice is printed (a real model need not
   recognise a cartoon phantom);
5. the exporters (NIfTI mask, PNG overlay, JSON report) into the temporary folder;
6. with ``gui=True`` (the studio): an offscreen QApplication, the main window
   and the viewer module (pyqtgraph) are created/imported.

Timings are printed for every step.  Exit code 0 when every check passed, else 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from liverseg_studio import __version__

#: HU of the phantom's tissues (as tests/helpers/phantom.py).
AIR_HU, BODY_HU, LIVER_HU, TUMOUR_HU = -1000.0, 0.0, 60.0, 20.0
REQUIRED_LOADERS = ("image", "dicom", "dicom-series", "nifti", "mrc")
REQUIRED_BACKENDS = ("onnx",)
#: The threshold baseline must find at least this much of the phantom's liver.
THRESHOLD_MIN_DICE = 0.8


class SelfTestFailure(Exception):
    """A check failed; the message says which and why."""


class SelfTestSkip(Exception):
    """A step cannot run because an earlier one failed (not counted again)."""


def phantom(n_slices: int = 6, size: int = 128, spacing_mm: float = 2.5, seed: int = 117) -> tuple[Any, np.ndarray]:
    """(HU :class:`Volume`, truth labels uint8 (z, y, x)) of a synthetic abdomen.

    Body ellipse (0 HU) in air, a liver-like ellipse (60 HU) on the patient's
    right (image left), a tumour disc (20 HU) in it; Gaussian noise of 5 HU.
    Pixel size ``350 / size`` mm (a typical field of view), slices ``spacing_mm``.
    """
    from liverseg_studio.core.volume import Intensity, Volume

    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid((np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size, indexing="ij")
    hu = np.full((n_slices, size, size), AIR_HU, dtype=np.float32)
    labels = np.zeros((n_slices, size, size), dtype=np.uint8)
    body = ((yy - 0.5) / 0.40) ** 2 + ((xx - 0.5) / 0.45) ** 2 <= 1.0
    for k in range(n_slices):
        # the liver shrinks towards the ends of the stack, as a real one does
        f = 1.0 - 0.5 * abs(k - (n_slices - 1) / 2) / max(1.0, (n_slices - 1) / 2)
        liver = (((yy - 0.45) / (0.20 * f + 0.04)) ** 2 + ((xx - 0.35) / (0.17 * f + 0.04)) ** 2 <= 1.0) & body
        tumour = (((yy - 0.47) / 0.045) ** 2 + ((xx - 0.36) / 0.045) ** 2 <= 1.0) & liver
        hu[k][body] = BODY_HU
        hu[k][liver] = LIVER_HU
        hu[k][tumour] = TUMOUR_HU
        labels[k][liver] = 1
        labels[k][tumour] = 2
    hu += rng.normal(0.0, 5.0, size=hu.shape).astype(np.float32)
    hu = np.rint(hu).astype(np.float32)
    px = 350.0 / size
    affine = np.diag([-px, -px, spacing_mm, 1.0])
    affine[:3, 3] = (size * px / 2, size * px / 2, -200.0)
    volume = Volume(array=hu, affine=affine, intensity=Intensity.HU, source="self-test phantom", loader="phantom")
    return volume, labels


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def torch_available() -> bool:
    """Whether PyTorch can be found (without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def write_dicom_series(volume: Any, folder: str | os.PathLike[str], *, rle: bool = True) -> list[Path]:
    """Write the HU ``volume`` (e.g. :func:`phantom`) as a CT series, one file per slice, into ``folder``.

    A complete CT Image header (patient, study, series, frame of reference, geometry from the
    affine: RAS -> LPS), int16 stored values with intercept 0.  With ``rle`` the pixel data are
    RLE Lossless (pydicom's own encoder), so reading the series back needs pydicom's pixel-data
    decoders: what a frozen build could miss.  Returns the paths, slice 0 first.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(volume.affine, float)
    # DICOM's first direction is that of increasing column index (the affine's x), then of rows (y)
    x_dir, y_dir = lps[:3, 0] / np.linalg.norm(lps[:3, 0]), lps[:3, 1] / np.linalg.norm(lps[:3, 1])
    dz, dy, dx = (float(v) for v in volume.spacing)
    study, series, frame_of_ref = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k in range(volume.n_slices):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyDate, ds.StudyTime, ds.ContentDate, ds.ContentTime = "20261201", "120000", "20261201", "120000"
        ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
        ds.Modality, ds.Manufacturer = "CT", "LiverSeg self-test"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "SelfTest^Phantom", "SELFTEST", "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_ref
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, k + 1
        ds.PositionReferenceIndicator = ""
        ds.KVP = "120"
        ds.ImagePositionPatient = [round(float(v), 4) for v in lps[:3, :] @ np.array([0.0, 0.0, k, 1.0])]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in (*x_dir, *y_dir)]
        ds.PixelSpacing = [round(dy, 6), round(dx, 6)]
        ds.SliceThickness = round(dz, 6)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = int(volume.shape[1]), int(volume.shape[2])
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = np.asarray(volume.array[k]).astype("<i2").tobytes()
        if rle:
            ds.compress(RLELossless, encoding_plugin="pydicom")
        path = folder / f"slice_{k:03d}.dcm"
        ds.save_as(str(path), enforce_file_format=True)
        paths.append(path)
    return paths


def missing_library_data(exc: BaseException) -> str | None:
    """One line naming the library whose module or data file is missing, when ``exc`` says so; else None.

    A frozen build that lacks a library's data fails deep inside it (e.g. highdicom's
    ``FileNotFoundError: .../_internal/highdicom/_standard/sop_class_iod_map.json``, issue 27), or
    lacks a module (``ModuleNotFoundError``).  The exception, its causes and its message are searched.
    """
    import re

    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in seen:
        seen.append(e)
        e = e.__cause__ or e.__context__
    for e in seen:
        if isinstance(e, ModuleNotFoundError) and e.name:
            return f"module {e.name!r} is missing from this build (library {e.name.split('.')[0]})"
    candidates = [getattr(e, "filename", None) for e in seen if isinstance(e, FileNotFoundError)]
    for e in seen:
        candidates += re.findall(r"No such file or directory: '([^']+)'", str(e))
    roots = [r for r in (getattr(sys, "_MEIPASS", None),) if r] + [p for p in sys.path if p.endswith("-packages")]
    for name in candidates:
        if not name:
            continue
        path = Path(str(name))
        rel = None
        for root in roots:
            try:
                rel = path.relative_to(root)
                break
            except ValueError:
                continue
        if rel is None:
            parts = path.parts
            for marker in ("_internal", "site-packages", "dist-packages"):
                if marker in parts:
                    rel = Path(*parts[parts.index(marker) + 1 :])
                    break
        if rel is not None and len(rel.parts) >= 2:
            return f"{rel.parts[0]}'s data file {Path(*rel.parts[1:]).as_posix()} is missing from this build"
        return f"data file {path} is missing"
    return None


def pixel_decoders() -> str:
    """pydicom's available pixel-data decoder plugins per compressed transfer syntax, on one line.

    ``make package-test`` compares this line between the installed tool and the frozen one: a
    plugin that did not survive freezing (pylibjpeg's entry points, python-gdcm) shows up here.
    """
    from pydicom import uid
    from pydicom.pixels.decoders.base import get_decoder

    syntaxes = {"JPEG Baseline": uid.JPEGBaseline8Bit, "JPEG Lossless SV1": uid.JPEGLosslessSV1,
                "JPEG-LS Lossless": uid.JPEGLSLossless, "JPEG 2000 Lossless": uid.JPEG2000Lossless,
                "RLE Lossless": uid.RLELossless}
    parts = []
    for name, ts in syntaxes.items():
        try:
            decoder = get_decoder(ts)
            plugins = sorted(decoder.available_plugins)
        except Exception:  # noqa: BLE001 - no decoder registered for it in this pydicom
            plugins = []
        parts.append(f"{name}: {'/'.join(plugins) or 'none'}")
    return "; ".join(parts)


def studio_export_seg(source: str | os.PathLike[str], target: str | os.PathLike[str], *, backend: str = "auto",
                      model_dir: str | os.PathLike[str] | None = None, timeout_s: float = 600.0,
                      out: Callable[[str], None] = print) -> Path:
    """In the studio's main window: open ``source`` (a DICOM series), run, export a DICOM SEG to ``target``.

    The window's own code path (``open_path`` -> ``run_segmentation`` -> ``export("seg")``), with
    its error dialogs turned into a :class:`SelfTestFailure`; settings go to a temporary file.
    """
    from PySide6.QtCore import QEventLoop, QTimer

    from liverseg_studio.qt.app import create_app, create_window
    from liverseg_studio.qt.settings import SETTINGS_ENV

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    settings_dir = tempfile.TemporaryDirectory(prefix="liverseg-selftest-settings-")
    old_settings = os.environ.get(SETTINGS_ENV)
    os.environ[SETTINGS_ENV] = str(Path(settings_dir.name) / "studio.ini")
    app = create_app([sys.argv[0] if sys.argv else "liverseg-studio"])
    window = create_window()
    errors: list[str] = []
    window._show_error = lambda title, text: errors.append(f"{title}: {' '.join(str(text).split())}")  # no dialogs

    def wait(signals: list[Any], what: str) -> Any:
        loop, got = QEventLoop(), []

        def done(value: Any = None) -> None:
            got.append(value)
            loop.quit()

        for sig in signals:
            sig.connect(done)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
        for sig in signals:
            sig.disconnect(done)
        if errors:
            raise SelfTestFailure(errors[0])
        if not got:
            raise SelfTestFailure(f"the studio did not finish {what} in {timeout_s:.0f} s")
        return got[0]

    try:
        window.show()
        window.open_path(str(source))
        volume = wait([window.case_loaded, window.task_failed], f"opening {source}")
        if window.volume is None:
            raise SelfTestFailure(f"the studio could not open {source}")
        if backend != "auto":
            window.set_backend(backend)
        if model_dir:
            window.set_model_dir(str(model_dir))
        if window.run_segmentation() is None:
            raise SelfTestFailure(errors[0] if errors else "the studio did not start a run")
        wait([window.segmentation_finished, window.task_failed], "the segmentation")
        if window.result is None:
            raise SelfTestFailure("the studio's run gave no result")
        out(f"    studio: {volume.shape} (z, y, x) via loader {volume.loader!r}, backend {window.result.backend}")
        written = window.export("seg", str(target))
        if errors:
            raise SelfTestFailure(errors[0])
        if written is None or not Path(written).is_file():
            raise SelfTestFailure(f"the studio did not write {target}")
        return Path(written)
    finally:
        window.shutdown()
        window.close()
        app.processEvents()
        if old_settings is None:
            os.environ.pop(SETTINGS_ENV, None)
        else:
            os.environ[SETTINGS_ENV] = old_settings
        settings_dir.cleanup()


class _Runner:
    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.failures: list[str] = []
        self.timings: dict[str, float] = {}

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            value = fn()
        except SelfTestSkip as exc:
            self.out(f"skip  {name}: {exc}")
            return None
        except SelfTestFailure as exc:
            dt = time.perf_counter() - t0
            self.timings[name] = dt
            self.failures.append(f"{name}: {exc}")
            self.out(f"FAIL  {name} ({dt:.2f} s): {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - a self-test reports, never crashes
            dt = time.perf_counter() - t0
            self.timings[name] = dt
            missing = missing_library_data(exc)
            why = missing or " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
            self.failures.append(f"{name}: {why}")
            self.out(f"FAIL  {name} ({dt:.2f} s): {why}")
            if os.environ.get("LIVERSEG_DEBUG"):
                traceback.print_exc()
            return None
        dt = time.perf_counter() - t0
        self.timings[name] = dt
        self.out(f"ok    {name} ({dt:.2f} s)")
        return value


def run_self_test(
    *,
    backend: str = "auto",
    model_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    gui: bool = False,
    studio_input: str | os.PathLike[str] | None = None,
    studio_seg_out: str | os.PathLike[str] | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Run the self-test (see the module docstring); 0 when every check passed, else 1."""
    t_start = time.perf_counter()
    frozen = bool(getattr(sys, "frozen", False))
    bundle = getattr(sys, "_MEIPASS", None)
    out(f"LiverSeg Studio {__version__} self-test")
    out(
        f"    python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{'frozen bundle ' + str(bundle) if frozen else 'not frozen (' + sys.executable + ')'}"
    )
    run = _Runner(out)
    state: dict[str, Any] = {}

    # 1. plugins ---------------------------------------------------------------------
    def plugins() -> Any:
        from liverseg_studio.plugins.manager import PluginManager

        pm = PluginManager().load_entrypoints()
        for r in pm.records.values():
            parts = [f"loaders: {', '.join(r.loaders)}" if r.loaders else "", f"backends: {', '.join(r.backends)}" if r.backends else ""]
            detail = "; ".join(p for p in parts if p) or r.error
            out(f"    plugin {r.name} [{r.status}] {r.distribution} {r.version}: {detail}")
        broken = [f"{r.name} ({r.error})" for r in pm.problems()]
        if broken:
            raise SelfTestFailure(f"plugin(s) failed to load: {'; '.join(broken)}")
        missing = [n for n in REQUIRED_LOADERS if n not in pm.loaders] + [
            n for n in REQUIRED_BACKENDS if n not in pm.backends
        ]
        if missing:
            raise SelfTestFailure(f"built-in loaders/backends missing: {', '.join(missing)}")
        nonlocal backend
        if backend == "auto" and "auto" not in pm.backends:  # the engine this build ships and uses by default
            backend = pm.backends.default_name() or "onnx"
            out(f"    default engine: {backend}")
        if backend not in pm.backends:
            raise SelfTestFailure(f"backend {backend!r} is not installed (available: {', '.join(pm.backends.names())})")
        if "fastai" in pm.backends and not torch_available():
            out("    note: backend fastai is unavailable here: PyTorch is not in this build (the onnx backend is)")
        state["pm"] = pm
        return pm

    run.step("plugin discovery", plugins)
    tmp = tempfile.TemporaryDirectory(prefix="liverseg-selftest-")
    tmpdir = Path(tmp.name)
    try:
        # 2. phantom through the NIfTI loader ------------------------------------------
        def load_phantom() -> Any:
            import nibabel as nib

            volume, truth = phantom()
            path = tmpdir / "phantom.nii.gz"
            nib.save(nib.Nifti1Image(volume.array.T.astype(np.int16), volume.affine), str(path))
            pm = state.get("pm")
            if pm is None:
                raise SelfTestSkip("no plugin manager (an earlier step failed)")
            from liverseg_studio.plugins.registry import LoadOptions

            loaded = pm.loaders.load(path, LoadOptions())
            if loaded.shape != volume.shape:
                raise SelfTestFailure(f"NIfTI round trip changed the shape {volume.shape} -> {loaded.shape}")
            if not np.allclose(loaded.affine, volume.affine, atol=1e-4):
                raise SelfTestFailure("NIfTI round trip changed the affine")
            if not np.allclose(np.asarray(loaded.array, np.float32), volume.array, atol=0.5):
                raise SelfTestFailure("NIfTI round trip changed the voxels")
            out(f"    phantom {volume.shape} (z, y, x), spacing {tuple(round(s, 2) for s in loaded.spacing)} mm, "
                f"read back by loader {loaded.loader!r}")
            state["volume"], state["truth"], state["input_path"] = loaded, truth, path
            return loaded

        run.step("synthetic CT -> NIfTI -> loader", load_phantom)

        # 2b. volumetry of the phantom's truth and the lazily imported libraries ------------
        def volumetry() -> Any:
            if "volume" not in state:
                raise SelfTestSkip("no phantom (an earlier step failed)")
            # imported only when needed at run time, so a frozen build could miss them silently
            import highdicom  # noqa: F401 - DICOM SEG export
            import PIL.Image  # noqa: F401 - PNG export
            from scipy import ndimage  # noqa: F401 - post-processing, lesions

            from liverseg_studio.core.volumetry import compute_stats

            volume, truth = state["volume"], state["truth"]
            st = compute_stats(truth, volume)
            vox_ml = volume.voxel_volume_mm3 / 1000.0
            want_liver = float(np.count_nonzero(truth >= 1)) * vox_ml
            if st.liver_ml is None or abs(st.liver_ml - want_liver) > 1e-6 * max(1.0, want_liver):
                raise SelfTestFailure(f"liver volume {st.liver_ml} mL, expected {want_liver:.3f} mL")
            if st.n_lesions != 1 or not st.lesions[0].longest_axial_diameter_mm:
                raise SelfTestFailure(f"expected 1 measurable lesion in the phantom, got {st.n_lesions}")
            d = st.lesions[0].longest_axial_diameter_mm
            px = volume.spacing[2]
            if not 2 * 0.045 * volume.shape[2] * px * 0.8 <= d <= 2 * 0.045 * volume.shape[2] * px * 1.25:
                raise SelfTestFailure(f"phantom lesion diameter {d:.1f} mm is not about its drawn size")
            out(f"    truth: liver {st.liver_ml:.1f} mL, 1 lesion of {st.lesions[0].volume_ml:.2f} mL, "
                f"longest axial diameter {d:.1f} mm")
            return st

        run.step("volumetry (scipy, highdicom, PIL)", volumetry)

        # 2c. the sample case (bundled under resources/sample, else the installed package) --------
        def sample() -> Any:
            from liverseg_studio.sample import sample_case

            case = sample_case()
            bundled = Path(bundle) / "resources" / "sample" if bundle else None
            if case is None:
                if bundled is not None and bundled.is_dir():
                    raise SelfTestFailure(f"{bundled} exists but the sample case is not found there")
                out("    no sample case in this installation (optional)")
                return None
            pm = state.get("pm")
            if pm is None:
                raise SelfTestSkip("no plugin manager (an earlier step failed)")
            from liverseg_studio.plugins.registry import LoadOptions

            vol = pm.loaders.load(case.image, LoadOptions())
            if len(vol.shape) != 3 or min(vol.shape) < 2:
                raise SelfTestFailure(f"{case.image}: unexpected shape {vol.shape}")
            out(f"    {case.name}: {case.image} -> {vol.shape} (z, y, x) via loader {vol.loader!r}")
            return case

        run.step("sample case", sample)

        # 3. backend ------------------------------------------------------------------
        def load_backend() -> Any:
            pm = state.get("pm")
            if pm is None:
                raise SelfTestSkip("no plugin manager (an earlier step failed)")
            from liverseg_studio.backends.common import default_model_dir

            spec = pm.backends.get(backend)
            mdir = Path(model_dir) if model_dir else None
            if mdir is None and spec.needs_model:
                mdir = default_model_dir()
                if mdir is None:
                    where = Path(bundle) / "resources/models/default" if bundle else "resources/models/default"
                    raise SelfTestFailure(
                        f"no default model is bundled ({where} has no model.json); this build cannot segment with "
                        f"backend {backend!r}. Rebuild with the model, pass --model DIR, "
                        "or check the rest with --backend threshold"
                    )
            b = spec.factory()
            b.load(mdir, threads=threads)
            card = getattr(b, "card", None)
            if card is not None:
                summary = getattr(card, "name", "?"), getattr(card, "version", "?"), getattr(card, "input_size", "?")
                kind = getattr(b, "model_path", None)
                out(f"    model {summary[0]} {summary[1]} (input {summary[2]} px) from {mdir}"
                    f"{', file ' + kind.name if kind is not None else ''}, sha256 verified")
            elif spec.needs_model:
                raise SelfTestFailure(f"backend {backend!r} loaded but reports no model card")
            else:
                out(f"    backend {backend!r} needs no model")
            state["backend"] = b
            return b

        run.step(f"load backend {backend!r}", load_backend)

        # 4. segmentation ------------------------------------------------------------------
        def segment() -> Any:
            if "backend" not in state or "volume" not in state:
                raise SelfTestSkip("nothing to segment (an earlier step failed)")
            from liverseg_studio.segment.pipeline import segment_volume

            volume, truth = state["volume"], state["truth"]
            result = segment_volume(volume, state["backend"])
            labels = np.asarray(result.labels)
            if labels.shape != volume.shape:
                raise SelfTestFailure(f"label map shape {labels.shape} != volume shape {volume.shape}")
            if labels.dtype != np.uint8:
                raise SelfTestFailure(f"label map dtype {labels.dtype}, expected uint8")
            values = sorted(int(v) for v in np.unique(labels))
            if not set(values) <= {0, 1, 2}:
                raise SelfTestFailure(f"label values {values}, expected a subset of 0, 1, 2")
            timings = dict(result.timings)
            d_liver = dice(labels >= 1, truth >= 1)
            d_tumour = dice(labels == 2, truth == 2)
            st = result.stats
            ml = f" ({st.liver_ml:.1f} mL)" if st.liver_ml is not None else ""
            out(f"    labels {values}, liver {st.liver_voxels} voxels{ml}, "
                f"tumour {st.tumour_voxels} voxels; Dice vs phantom truth: liver {d_liver:.3f}, tumour {d_tumour:.3f}")
            out("    timings: " + ", ".join(f"{k} {v:.3f} s" for k, v in timings.items() if not k.endswith("slices")))
            if backend == "threshold":
                if d_liver < THRESHOLD_MIN_DICE:
                    raise SelfTestFailure(f"threshold backend found the phantom's liver with Dice {d_liver:.3f} "
                                          f"< {THRESHOLD_MIN_DICE}")
            else:
                slices = timings.get("slices", timings.get("backend_slices"))
                if slices is not None and int(slices) != volume.n_slices:
                    raise SelfTestFailure(f"the model ran on {slices:g} of {volume.n_slices} slices")
                if not timings.get("inference", 0.0) > 0.0:
                    raise SelfTestFailure("the backend reports no inference time: the model did not run")
            state["result"] = result
            return result

        run.step("segment the phantom", segment)

        # 5. exporters ------------------------------------------------------------------------
        def export() -> Any:
            if "result" not in state:
                raise SelfTestSkip("nothing to export (an earlier step failed)")
            from liverseg_studio.segment.exporters import export_result

            (tmpdir / "out").mkdir()
            written = export_result(state["result"], tmpdir / "out", "phantom", ("nifti", "png", "json"),
                                    input_path=state["input_path"])
            missing = [str(p) for p in written.values() if not Path(p).is_file()]
            if not written or missing:
                raise SelfTestFailure(f"exports missing: {missing or 'none written'}")
            out(f"    wrote {', '.join(sorted(Path(p).name for p in written.values()))}")
            return written

        run.step("export NIfTI, PNG, JSON", export)

        # 5b. DICOM: a synthetic CT series (RLE Lossless) -> loader -> segment -> DICOM SEG -> highdicom reader ----
        def dicom_seg() -> Any:
            pm = state.get("pm")
            if pm is None or "backend" not in state:
                raise SelfTestSkip("no plugin manager or backend (an earlier step failed)")
            import highdicom as hd
            import pydicom

            from liverseg_studio.plugins.registry import LoadOptions
            from liverseg_studio.segment.exporters import write_dicom_seg
            from liverseg_studio.segment.pipeline import segment_volume

            out(f"    pixel-data decoders: {pixel_decoders()}")
            volume, _truth = phantom(n_slices=4, size=96, seed=27)
            series_dir = tmpdir / "dicom-series"
            files = write_dicom_series(volume, series_dir, rle=True)
            state["series_dir"] = series_dir
            loaded = pm.loaders.load(series_dir, LoadOptions())
            if loaded.shape != volume.shape or not np.allclose(loaded.affine, volume.affine, atol=1e-3):
                raise SelfTestFailure(f"DICOM series read back as {loaded.shape} (affine {loaded.affine.round(2).tolist()}),"
                                      f" written {volume.shape}")
            if not np.array_equal(np.asarray(loaded.array, np.float32), volume.array):
                raise SelfTestFailure("the RLE-compressed DICOM series read back with other voxels")
            result = segment_volume(loaded, state["backend"])
            seg_path = write_dicom_seg(result, tmpdir / "phantom_seg.dcm")
            seg = hd.seg.segread(str(seg_path))
            if seg.SOPClassUID != pydicom.uid.SegmentationStorage:
                raise SelfTestFailure(f"the SEG has SOP class {seg.SOPClassUID}")
            series_uid = pydicom.dcmread(str(files[0]), stop_before_pixels=True).SeriesInstanceUID
            if seg.ReferencedSeriesSequence[0].SeriesInstanceUID != series_uid:
                raise SelfTestFailure("the SEG does not reference the source series")
            labels = np.asarray(result.labels)
            numbers = [int(d.SegmentNumber) for d in seg.SegmentSequence]
            source_uids = [pydicom.dcmread(str(f), stop_before_pixels=True).SOPInstanceUID for f in files]
            pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=source_uids, segment_numbers=numbers,
                                                       assert_missing_frames_are_empty=True)
            read_back = np.zeros(labels.shape, np.uint8)
            for i, number in enumerate(numbers):
                read_back[pixels[..., i] > 0] = number
            if not np.array_equal(read_back, labels):
                raise SelfTestFailure(f"the SEG read back differs from the label map in "
                                      f"{int(np.count_nonzero(read_back != labels))} voxels")
            out(f"    {len(files)}-slice RLE CT series -> {seg_path.name}: {len(numbers)} segments "
                f"({', '.join(str(d.SegmentLabel) for d in seg.SegmentSequence)}), read back by highdicom "
                f"{hd.__version__}, {int(np.count_nonzero(labels))} labelled voxels equal")
            return seg_path

        run.step("DICOM series -> DICOM SEG -> highdicom", dicom_seg)

        # 6. the studio's Qt parts ------------------------------------------------------------
        if gui:
            def studio() -> Any:
                os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
                from liverseg_studio.qt.app import create_app, create_window

                app = create_app([sys.argv[0] if sys.argv else "liverseg-studio"])
                window = create_window()
                window.show()
                app.processEvents()
                import liverseg_studio.qt.viewer  # noqa: F401 - pyqtgraph and the viewer must be bundled

                import pyqtgraph

                out(f"    Qt platform {app.platformName()!r}, main window {type(window).__name__}, "
                    f"pyqtgraph {pyqtgraph.__version__}")
                window.close()
                app.processEvents()
                return window

            run.step("studio window (Qt, pyqtgraph)", studio)

            def studio_seg() -> Any:
                source = Path(studio_input) if studio_input else state.get("series_dir")
                if source is None or "pm" not in state:
                    raise SelfTestSkip("no DICOM series (an earlier step failed)")
                target = Path(studio_seg_out) if studio_seg_out else tmpdir / "studio_seg.dcm"
                seg_path = studio_export_seg(source, target, backend=backend, model_dir=model_dir, out=out)
                import highdicom as hd

                seg = hd.seg.segread(str(seg_path))
                out(f"    {source} -> {seg_path.name}: {len(seg.SegmentSequence)} segments, "
                    f"{int(seg.NumberOfFrames)} frames, read back by highdicom")
                return seg_path

            run.step("studio: open DICOM series, run, export DICOM SEG", studio_seg)
    finally:
        tmp.cleanup()

    total = time.perf_counter() - t_start
    if run.failures:
        out(f"SELF-TEST FAILED ({len(run.failures)} failure(s), {total:.2f} s):")
        for f in run.failures:
            out(f"    {f}")
        return 1
    out(f"SELF-TEST PASSED in {total:.2f} s")
    return 0


#: Environment variable read by the frozen entry scripts (packaging/entry_*.py): when set,
#: :func:`install_network_guard` blocks internet sockets and logs every attempt to that file.
NETGUARD_ENV = "LIVERSEG_NETGUARD_LOG"


class NetworkBlocked(OSError):
    """Raised by the network guard instead of opening an internet connection."""


def install_network_guard(log_path: str | os.PathLike[str]) -> None:
    """Make every internet socket operation (connect, bind, sendto, DNS lookup) fail and log it.

    Used by ``make package-test`` (with ``unshare -n`` where available, alone
    where not): the frozen app ignores PYTHONPATH/sitecustomize, so its entry
    scripts call this when ``$LIVERSEG_NETGUARD_LOG`` is set.  Unix sockets stay
    allowed (Qt's local IPC).  Each attempt appends one line to ``log_path``
    and raises :class:`NetworkBlocked`.
    """
    import socket

    log = Path(log_path)

    def _record(what: str) -> None:
        line = f"{what} (pid {os.getpid()})"
        with log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        print(f"liverseg network guard: blocked {line}", file=sys.stderr)
        raise NetworkBlocked(f"network access blocked by the self-test guard: {what}")

    inet = {socket.AF_INET, getattr(socket, "AF_INET6", socket.AF_INET)}

    class GuardedSocket(socket.socket):
        def connect(self, address: Any) -> None:  # type: ignore[override]
            if self.family in inet:
                _record(f"connect {address!r}")
            super().connect(address)

        def connect_ex(self, address: Any) -> int:  # type: ignore[override]
            if self.family in inet:
                _record(f"connect_ex {address!r}")
            return super().connect_ex(address)

        def sendto(self, *args: Any) -> int:  # type: ignore[override]
            if self.family in inet:
                _record(f"sendto {args[-1]!r}")
            return super().sendto(*args)

    def _lookup(name: str) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            _record(f"{name}{args[:2]!r}")

        return guarded

    socket.socket = GuardedSocket  # type: ignore[misc]
    socket.getaddrinfo = _lookup("getaddrinfo")  # type: ignore[assignment]
    socket.gethostbyname = _lookup("gethostbyname")  # type: ignore[assignment]
    socket.gethostbyname_ex = _lookup("gethostbyname_ex")  # type: ignore[assignment]
    socket.create_connection = _lookup("create_connection")  # type: ignore[assignment]


def install_network_guard_from_env() -> bool:
    """:func:`install_network_guard` when ``$LIVERSEG_NETGUARD_LOG`` is set; True if installed."""
    path = os.environ.get(NETGUARD_ENV)
    if not path:
        return False
    install_network_guard(path)
    return True


def build_parser(prog: str = "liverseg --self-test") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Check this installation end to end (no network, no inputs).")
    p.add_argument("--backend", default="auto", metavar="NAME",
                   help="backend to test (default auto: the default engine, openvino when bundled, else onnx, "
                        "with the default model; 'threshold' needs no model)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: the bundled default model)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for inference")
    p.add_argument("--studio-input", metavar="DICOM_DIR",
                   help="with the studio: the DICOM series it opens, runs and exports as a SEG (default: the "
                        "self-test's synthetic series)")
    p.add_argument("--studio-seg", metavar="FILE", help="with the studio: keep its DICOM SEG here (for validation)")
    p.add_argument("--gui", action=argparse.BooleanOptionalAction, default=False,
                   help="also create the studio window offscreen (default for liverseg-studio --self-test)")
    return p


def main(argv: Sequence[str] | None = None, *, prog: str = "liverseg --self-test", gui: bool = False) -> int:
    """Parse the self-test options (``--self-test`` itself already removed) and run it."""
    parser = build_parser(prog)
    parser.set_defaults(gui=gui)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    return run_self_test(backend=args.backend, model_dir=args.model, threads=args.threads, gui=args.gui,
                         studio_input=args.studio_input, studio_seg_out=args.studio_seg)


if __name__ == "__main__":  # pragma: no cover
    install_network_guard_from_env()
    sys.exit(main(prog="python -m liverseg_studio.selftest"))
