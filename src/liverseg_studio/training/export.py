"""``liverseg export``: model.safetensors + model.json -> model.onnx (fp32) and model.int8.onnx.

* fp32: ``torch.onnx.export`` of :class:`~liverseg_studio.model.arch.NormalizedModel`
  (ImageNet normalisation inside the graph), input ``image`` float32
  (N, 3, S, S) in [0, 1], output ``logits`` (N, 3, S, S), dynamic batch.  With
  torch 2.14 the TorchScript-based exporter (``dynamo=False``) is used: the
  dynamo exporter fails on fastai's ``TensorBase`` subclass inside DynamicUnet.
  The max abs logit difference between torch and ONNX Runtime is printed
  (and must stay below ``max_logit_diff``).
* int8 (``int8=True``): ONNX Runtime static quantization, QDQ format,
  per-channel 7-bit weights (``reduce_range``: CPUs without VNNI, like this
  AMD EPYC, saturate u8 x s8 products with 8-bit weights; measured: better
  agreement), the classifier conv kept fp32, calibrated on *training* slices of a prepared data
  folder (``manifest.json``) or a plain folder of JPG/PNG images.  Before the
  file is written the int8 model's label maps are compared with the fp32
  model's on *validation* slices: mean Dice (liver = label >= 1, tumour =
  label 2, pooled over the slices; classes absent from both maps are skipped)
  must reach ``min_agreement`` (0.98), or nothing is written.
* The sha256 and size of every written file go into ``model.json``.  Every
  file is written atomically; existing ONNX files are replaced only with
  ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from liverseg_studio.core.errors import BackendError, LiversegError
from liverseg_studio.core.modelcard import ModelCard, read_card, verify_file, write_card

LogFn = Callable[[str], None]

DEFAULT_OPSET = 17
#: Bound on |torch - ONNX fp32| logits; fp32 reorderings give ~1e-4.
DEFAULT_MAX_LOGIT_DIFF = 1e-2
DEFAULT_MIN_AGREEMENT = 0.98
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VALID_SPLITS = ("valid", "val", "validation")


class ExportError(LiversegError):
    """Export failed or the result would be worse than allowed (nothing written)."""


@dataclass
class ExportReport:
    """What :func:`export_model` did, with the measured numbers."""

    model_dir: Path
    onnx_path: Path | None = None
    int8_path: Path | None = None
    max_abs_logit_diff: float | None = None
    agreement: dict[str, float] = field(default_factory=dict)
    calibration_slices: int = 0
    validation_slices: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "onnx": self.onnx_path.name if self.onnx_path else None,
            "onnx_int8": self.int8_path.name if self.int8_path else None,
            "torch_vs_onnx_max_abs_logit_diff": self.max_abs_logit_diff,
            "int8_vs_fp32": dict(self.agreement),
            "calibration_slices": self.calibration_slices,
            "validation_slices": self.validation_slices,
            "seconds": dict(self.seconds),
        }


# -- torch model ---------------------------------------------------------------------
def load_torch_model(model_dir: os.PathLike[str] | str, card: ModelCard | None = None, *, verify: bool = True):
    """The eval-mode NormalizedModel of a model folder (from ``model.safetensors``)."""
    mdir = Path(model_dir)
    card = card if card is not None else read_card(mdir)
    weights = card.file_path("safetensors", mdir)
    if not weights.is_file():
        raise ExportError(f"{weights}: no safetensors weights to export (train first, or copy them here)")
    if verify and "safetensors" in card.files and card.files["safetensors"].get("sha256"):
        verify_file(mdir, "safetensors", card)
    from liverseg_studio.model.arch import build_normalized_model

    return build_normalized_model(card.input_size, card.architecture, weights)


def export_fp32(model: Any, path: os.PathLike[str] | str, input_size: int, *, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model`` as an ONNX file with input ``image`` and output ``logits`` (dynamic batch).

    Writes to ``path`` directly (callers pass a temporary path and rename).
    """
    import warnings

    import torch

    dummy = torch.rand(1, 3, int(input_size), int(input_size))
    out = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings of fastai's shape checks; deprecation notes
        torch.onnx.export(
            model,
            (dummy,),
            str(out),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=int(opset),
            do_constant_folding=True,
            dynamo=False,
        )
    import onnx

    onnx.checker.check_model(str(out))
    return out


def make_session(path: os.PathLike[str] | str, threads: int | None = None):
    """A CPU ONNX Runtime session with the same options as the onnx backend."""
    import onnxruntime as ort

    from liverseg_studio.backends.common import physical_cores

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads) if threads else physical_cores()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_session(session: Any, x: np.ndarray, batch_size: int = 4) -> np.ndarray:
    """Logits of ``x`` (n, 3, S, S) through an ONNX session, in batches."""
    outs = [session.run(["logits"], {"image": np.ascontiguousarray(x[i : i + batch_size])})[0] for i in range(0, len(x), batch_size)]
    return np.concatenate(outs, axis=0)


def run_torch(model: Any, x: np.ndarray, batch_size: int = 4) -> np.ndarray:
    import torch

    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            outs.append(model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).float().numpy())
    return np.concatenate(outs, axis=0)


# -- data for calibration / verification --------------------------------------------
def _read_image(path: Path, input_size: int) -> np.ndarray:
    """(3, S, S) float32 in [0, 1]: RGB as is (the paper's windowed JPG), grey through THE windowing."""
    from PIL import Image

    from liverseg_studio.backends.common import resize_chw
    from liverseg_studio.core.preprocess import model_input
    from liverseg_studio.core.volume import Intensity, Volume

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGB", "RGBA", "P"):
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
                vol = Volume(array=arr[None], intensity=Intensity.WINDOWED_RGB, spacing_known=False)
            else:
                arr = np.asarray(im.convert("L"), dtype=np.uint8)
                vol = Volume(array=arr[None], intensity=Intensity.DISPLAY8, spacing_known=False)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: cannot read calibration image: {exc}") from exc
    rgb = model_input(vol, None, as_float=True)[0]  # (y, x, 3)
    return resize_chw(np.moveaxis(rgb, -1, 0), (input_size, input_size))


def _manifest_entries(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        for key in ("slices", "items", "entries", "images"):
            if isinstance(data.get(key), list):
                return [e for e in data[key] if isinstance(e, dict)]
        raise ExportError("manifest.json has no list of slices (expected key 'slices')")
    if isinstance(data, list):
        return [e for e in data if isinstance(e, dict)]
    raise ExportError("manifest.json must be a list of slices or an object with 'slices'")


def calibration_paths(
    data_dir: os.PathLike[str] | str, *, n_calib: int = 64, n_valid: int = 32, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """(calibration images, validation images) of a prepared data folder or a plain image folder.

    Prepared folder: calibration from ``split == "train"``, validation from
    ``split == "valid"`` (if none: training slices not used for calibration).
    Plain folder: images sorted by name, alternately calibration / validation.
    Both lists are seeded random samples of at most ``n_calib`` / ``n_valid``.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise ExportError(f"{root}: calibration data folder does not exist")
    rng = random.Random(seed)
    manifest = root / "manifest.json"
    if manifest.is_file():
        try:
            entries = _manifest_entries(json.loads(manifest.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ExportError(f"{manifest}: not valid JSON: {exc}") from exc
        train = [root / str(e["image"]) for e in entries if e.get("split") == "train" and e.get("image")]
        valid = [root / str(e["image"]) for e in entries if e.get("split") in VALID_SPLITS and e.get("image")]
        if not train:
            raise ExportError(f"{manifest}: no training slices (split 'train') to calibrate on")
        rng.shuffle(train)
        calib = train[:n_calib]
        if not valid:
            valid = train[n_calib:]
        rng.shuffle(valid)
        valid = valid[:n_valid] or calib[:n_valid]
    else:
        images = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ExportError(f"{root}: no manifest.json and no JPG/PNG images to calibrate on")
        calib_all, valid_all = (images[0::2], images[1::2]) if len(images) >= 2 else (images, images)
        rng.shuffle(calib_all)
        rng.shuffle(valid_all)
        calib, valid = calib_all[:n_calib], valid_all[:n_valid]
    missing = [p for p in calib + valid if not p.is_file()]
    if missing:
        raise ExportError(f"{missing[0]}: image listed in the manifest is missing ({len(missing)} missing)")
    return calib, valid


def load_images(paths: Sequence[Path], input_size: int) -> np.ndarray:
    """(n, 3, S, S) float32 model inputs of image files."""
    return np.stack([_read_image(p, input_size) for p in paths]).astype(np.float32)


# -- agreement ---------------------------------------------------------------------------
def label_agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Dice between two label maps (pooled over all slices): liver (>= 1), tumour (== 2), mean.

    A class absent from both maps is skipped; with nothing present at all the
    maps agree perfectly (mean 1.0).
    """
    out: dict[str, float] = {}
    for name, fa, fb in (("liver", a >= 1, b >= 1), ("tumour", a == 2, b == 2)):
        total = int(fa.sum()) + int(fb.sum())
        if total:
            out[name] = 2.0 * int(np.logical_and(fa, fb).sum()) / total
    vals = list(out.values())
    out["mean"] = float(np.mean(vals)) if vals else 1.0
    out["pixel_agreement"] = float(np.mean(a == b))
    return out


# -- int8 ---------------------------------------------------------------------------------
def final_conv_nodes(onnx_path: os.PathLike[str] | str) -> list[str]:
    """Names of the Conv nodes that produce the graph's outputs (walking back through non-Conv nodes).

    The classifier head (a 1x1 conv, 96 -> 3 channels) is cheap but its
    output *is* the logits: keeping it in fp32 costs nothing measurable and
    avoids quantising the logits themselves.
    """
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    producer = {out: node for node in model.graph.node for out in node.output}
    found: list[str] = []
    todo = [o.name for o in model.graph.output]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        node = producer.get(name)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            found.append(node.name)
            continue
        todo.extend(i for i in node.input if i in producer)
    return found


def quantize_int8(
    fp32_path: os.PathLike[str] | str,
    out_path: os.PathLike[str] | str,
    calib: np.ndarray,
    *,
    per_channel: bool = True,
    reduce_range: bool = True,
    batch_size: int = 1,
    keep_head_fp32: bool = True,
    method: str = "minmax",
) -> Path:
    """Static QDQ quantization of ``fp32_path`` calibrated on ``calib`` (n, 3, S, S); writes ``out_path``.

    ``keep_head_fp32``: leave the final classifier conv(s) unquantised (:func:`final_conv_nodes`).
    """
    import logging

    out = Path(out_path)
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs harmless per-weight notes on the root logger
    try:
        _quantize(fp32_path, out, calib, per_channel, reduce_range, batch_size, keep_head_fp32, method)
    finally:
        root.setLevel(old_level)
    return out


def _quantize(
    fp32_path: Any, out: Path, calib: np.ndarray, per_channel: bool, reduce_range: bool, batch_size: int, keep_head: bool,
    method: str = "minmax",
) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self, data: np.ndarray) -> None:
            self._it = iter([{"image": data[i : i + batch_size]} for i in range(0, len(data), batch_size)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    with tempfile.TemporaryDirectory(prefix="liverseg-quant-", dir=out.parent) as tmp:
        prep = Path(tmp) / "prep.onnx"
        try:
            quant_pre_process(str(fp32_path), str(prep), skip_symbolic_shape=True)
            src = prep
        except Exception:  # pre-processing is an optimisation; quantize the plain model instead
            src = Path(fp32_path)
        exclude = final_conv_nodes(src) if keep_head else []
        quantize_static(
            str(src),
            str(out),
            _Reader(calib),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                              "entropy": CalibrationMethod.Entropy}[method],
            nodes_to_exclude=exclude or None,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )


# -- the command ----------------------------------------------------------------------------
def _tmp_beside(path: Path) -> Path:
    from liverseg_studio.core.io import temp_path_for

    return temp_path_for(path)


def _commit(tmp: Path, dest: Path, overwrite: bool) -> None:
    if dest.exists() and not overwrite:
        raise ExportError(f"{dest}: exists (use --overwrite to replace it)")
    os.replace(tmp, dest)


def export_model(
    model_dir: os.PathLike[str] | str,
    *,
    int8: bool = False,
    calib: os.PathLike[str] | str | None = None,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    fp32: bool = True,
    n_calib: int = 64,
    n_valid: int = 32,
    seed: int = 0,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    max_logit_diff: float = DEFAULT_MAX_LOGIT_DIFF,
    reduce_range: bool = True,
    threads: int | None = None,
    log: LogFn = print,
) -> ExportReport:
    """Export ONNX fp32 (and int8) files for a model folder; see the module docstring."""
    mdir = Path(model_dir)
    card = read_card(mdir)
    report = ExportReport(model_dir=mdir)
    fp32_dest = card.file_path("onnx", mdir)
    int8_dest = card.file_path("onnx_int8", mdir)
    todo = ([fp32_dest] if fp32 else []) + ([int8_dest] if int8 else [])
    if not todo:
        raise ExportError("nothing to export (fp32 disabled and --int8 not given)")
    if not overwrite:
        for p in todo:
            if p.exists():
                raise ExportError(f"{p}: exists (use --overwrite to replace it)")
    if int8 and calib is None:
        raise ExportError("--int8 needs calibration data: --calib DATA_DIR (prepared folder or images)")
    calib_x = valid_x = None
    if int8:
        calib_paths, valid_paths = calibration_paths(calib, n_calib=n_calib, n_valid=n_valid, seed=seed)  # type: ignore[arg-type]
        calib_x = load_images(calib_paths, card.input_size)
        valid_x = load_images(valid_paths, card.input_size)
        report.calibration_slices, report.validation_slices = len(calib_x), len(valid_x)
        log(f"calibration: {len(calib_x)} training slices, verification: {len(valid_x)} validation slices")

    t = time.perf_counter()
    log(f"loading {card.file_path('safetensors', mdir)} ({card.summary()})")
    model = load_torch_model(mdir, card)
    report.seconds["load"] = time.perf_counter() - t

    tmp_fp32 = _tmp_beside(fp32_dest)
    tmp_int8 = _tmp_beside(int8_dest)
    try:
        t = time.perf_counter()
        export_fp32(model, tmp_fp32, card.input_size, opset=opset)
        report.seconds["export_fp32"] = time.perf_counter() - t
        sess32 = make_session(tmp_fp32, threads)
        check_x = valid_x if valid_x is not None else np.random.default_rng(seed).random(
            (4, 3, card.input_size, card.input_size), dtype=np.float32
        )
        check_x = check_x[: max(4, min(len(check_x), 8))]
        ref = run_torch(model, check_x)
        got = run_session(sess32, check_x)
        diff = float(np.max(np.abs(ref - got)))
        report.max_abs_logit_diff = diff
        log(f"torch vs ONNX fp32: max abs logit difference {diff:.3g} on {len(check_x)} slices")
        if not diff <= max_logit_diff:
            raise ExportError(f"ONNX fp32 output differs from torch by {diff:.3g} (> {max_logit_diff:g}); not written")

        if int8:
            assert calib_x is not None and valid_x is not None
            t = time.perf_counter()
            quantize_int8(tmp_fp32, tmp_int8, calib_x, reduce_range=reduce_range)
            report.seconds["quantize_int8"] = time.perf_counter() - t
            sess8 = make_session(tmp_int8, threads)
            lab32 = np.argmax(run_session(sess32, valid_x), axis=1).astype(np.uint8)
            lab8 = np.argmax(run_session(sess8, valid_x), axis=1).astype(np.uint8)
            agree = label_agreement(lab32, lab8)
            report.agreement = agree
            parts = ", ".join(f"{k} {v:.4f}" for k, v in agree.items())
            log(f"int8 vs fp32 on {len(valid_x)} validation slices: Dice {parts}")
            if not agree["mean"] >= min_agreement:
                raise ExportError(
                    f"int8 model agrees with fp32 only at mean Dice {agree['mean']:.4f} (< {min_agreement}); "
                    f"{int8_dest.name} not written"
                )
        # commit: the files, then the card listing their hashes
        if fp32:
            _commit(tmp_fp32, fp32_dest, overwrite)
            entry = card.record_file("onnx", mdir, fp32_dest.name)
            report.onnx_path = fp32_dest
            log(f"wrote {fp32_dest} ({entry['bytes'] / 1e6:.1f} MB, sha256 {entry['sha256'][:16]}...)")
        if int8:
            _commit(tmp_int8, int8_dest, overwrite)
            entry = card.record_file("onnx_int8", mdir, int8_dest.name)
            report.int8_path = int8_dest
            log(f"wrote {int8_dest} ({entry['bytes'] / 1e6:.1f} MB, sha256 {entry['sha256'][:16]}...)")
        if card.file_path("safetensors", mdir).is_file() and "safetensors" not in card.files:
            card.record_file("safetensors", mdir)
        card.metrics.setdefault("export", {})
        card.metrics["export"] = {
            k: v for k, v in report.to_json().items() if k not in ("onnx", "onnx_int8", "seconds")
        }
        card.extra["onnx_opset"] = int(opset)
        write_card(mdir, card)
        log(f"updated {mdir / 'model.json'} (sha256 of {', '.join(sorted(card.files))})")
    finally:
        for p in (tmp_fp32, tmp_int8):
            if p.exists():
                p.unlink()
    return report
