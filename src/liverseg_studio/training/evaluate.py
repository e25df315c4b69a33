"""``liverseg evaluate``: segment cases with ground truth and report the metrics.

Cases are either the slices of one split of a prepared set (``DATA_DIR
--split test``; each slice is a 2D case, aggregated per patient) or volumes /
slices given with their label files (``--labels``, same order), e.g. LiTS case
117: ``liverseg evaluate --model M img_117.mrc --labels lab_117.mrc --out R``.

Each case goes through :func:`liverseg_studio.segment.pipeline.segment_volume`
(what the CLI and the studio ship, post-processing included unless
``--no-postprocess``).  Metrics per case (:mod:`liverseg_studio.core.metrics`):
liver (label >= 1, as LiTS) and tumour (label 2): Dice, Jaccard, precision,
recall, F1, pixel accuracy, RVD, ASSD, HD95 (mm when the spacing is known,
else pixels: stated per case), and inference time per slice.  Slices whose
truth is partial (liver and tumour merged by the source) count for liver
metrics only.  Writes ``metrics.json``, ``metrics.csv`` and ``metrics.png``.

False positives per slice (issue 14): on every slice whose truth has no liver,
the area the prediction calls liver (pixels, and mm^2 when the spacing is
known), per case and pooled over all cases; and the per-slice false-positive
liver area (predicted liver outside the true liver) over all slices.
``per_slice=True`` (``--per-slice``) scores each slice of a volume as its own
2D case, as the studio and ``segment`` see a single slice (no 3D post-processing).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.core.metrics import EMPTY_CONVENTION, binary_metrics, mean_defined, median_defined
from liverseg_studio.core.volume import Intensity, Volume

METRIC_KEYS = ("dice", "jaccard", "precision", "recall", "f1", "pixel_accuracy", "rvd", "assd", "hd95")


class EvaluateError(LiversegError):
    """Bad input for ``liverseg evaluate``."""


@dataclass
class Case:
    """One evaluation case: a volume (or a 2D slice as a one-slice volume) and its truth."""

    id: str
    volume: Volume
    truth: np.ndarray  #: uint8 (z, y, x) 0/1/2
    patient: str
    partial: bool = False
    set: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def labels_from_volume(vol: Volume, where: str) -> np.ndarray:
    """Label values of a label volume read by a loader (raw values, RGB -> first channel)."""
    arr = np.asarray(vol.array)
    if arr.ndim == 4:
        arr = arr[..., 0]
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(np.abs(arr - np.rint(arr)) > 1e-3):
            raise EvaluateError(f"{where}: label file holds non-integer values")
        arr = np.rint(arr)
    vals = np.unique(arr)
    if vals.size and (vals.min() < 0 or vals.max() > 3):
        raise EvaluateError(f"{where}: label values {vals[:10].tolist()} are not 0/1/2 (3 = liver-or-tumour)")
    return arr.astype(np.uint8)


def cases_from_files(images: Sequence[Path], labels: Sequence[Path], load: Callable[[Path], Volume]) -> list[Case]:
    """Cases from images/volumes and their label files (same order)."""
    if len(images) != len(labels):
        raise EvaluateError(f"{len(images)} inputs but {len(labels)} --labels files: give one label file per input")
    out = []
    for img, lab in zip(images, labels):
        vol = load(Path(img))
        lv = load(Path(lab))
        truth = labels_from_volume(lv, str(lab))
        if truth.shape != vol.shape:
            raise EvaluateError(f"{lab}: label shape {truth.shape} differs from {img} {vol.shape}")
        partial = bool((truth == 3).any())
        truth = np.where(truth == 3, 1, truth).astype(np.uint8)
        name = Path(img).name
        out.append(Case(id=name, volume=vol, truth=truth, patient=name, partial=partial, source=str(img)))
    return out


def cases_from_prepared(data_dir: Path, split: str) -> list[Case]:
    """The slices of one split of a prepared set as one-slice windowed-RGB cases."""
    from PIL import Image

    from liverseg_studio.training.prepare import load_manifest

    data_dir = Path(data_dir)
    manifest = load_manifest(data_dir)
    entries = [e for e in manifest["slices"] if e.get("split") == split]
    if not entries:
        raise EvaluateError(f"{data_dir}: the prepared set has no slices in split {split!r}")
    out = []
    for e in entries:
        with Image.open(data_dir / e["image"]) as im:
            rgb = np.asarray(im.convert("RGB"))
        with Image.open(data_dir / e["mask"]) as im:
            m = np.asarray(im)
        if m.ndim == 3:
            m = m[..., 0]
        vol = Volume(rgb[None], intensity=Intensity.WINDOWED_RGB, source=str(data_dir / e["image"]),
                     loader="prepared", spacing_known=False)
        out.append(Case(id=e["id"], volume=vol, truth=m[None].astype(np.uint8), patient=e.get("person") or e["patient"],
                        partial=bool(e.get("partial")), set=e.get("set", ""), source=e.get("source", "")))
    return out


def split_slices(cases: Sequence[Case]) -> list[Case]:
    """Each slice of each case as its own one-slice 2D case (``<id>#z<k>``, same patient)."""
    out = []
    for c in cases:
        if c.volume.n_slices == 1:
            out.append(c)
            continue
        for z in range(c.volume.n_slices):
            out.append(Case(id=f"{c.id}#z{z}", volume=c.volume.sub_volume(z, z + 1), truth=c.truth[z : z + 1],
                            patient=c.patient, partial=c.partial, set=c.set, source=c.source))
    return out


def false_positive_area(pred: np.ndarray, truth: np.ndarray, pixel_mm2: float | None = None) -> dict[str, Any]:
    """Per-slice false-positive liver area of one case.

    ``liver_free_*``: the slices whose truth has no liver (label >= 1), and on them the
    area predicted as liver; ``fp_px_per_slice``: predicted liver outside the true
    liver, mean over all slices.  ``fp_px`` lists the area of each liver-free slice.
    """
    p = np.asarray(pred) >= 1
    t = np.asarray(truth) >= 1
    per_slice_fp = (p & ~t).reshape(p.shape[0], -1).sum(axis=1)
    free = ~t.reshape(t.shape[0], -1).any(axis=1)
    fp_free = p.reshape(p.shape[0], -1).sum(axis=1)[free]
    row: dict[str, Any] = {
        "liver_free_slices": int(free.sum()),
        "liver_free_slices_with_fp": int(np.count_nonzero(fp_free)),
        "liver_free_fp_px_mean": float(fp_free.mean()) if fp_free.size else None,
        "liver_free_fp_px_max": int(fp_free.max()) if fp_free.size else None,
        "fp_px_per_slice": float(per_slice_fp.mean()) if per_slice_fp.size else None,
        "fp_px": [int(v) for v in fp_free],
    }
    if pixel_mm2 is not None:
        row["liver_free_fp_mm2_mean"] = None if not fp_free.size else float(fp_free.mean()) * pixel_mm2
        row["fp_mm2_per_slice"] = None if not per_slice_fp.size else float(per_slice_fp.mean()) * pixel_mm2
    return row


def _fp_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled over every liver-free slice of every case."""
    fp = np.asarray([v for r in rows for v in r.get("fp_px", [])], dtype=np.float64)
    per_slice = [r.get("fp_px_per_slice") for r in rows]
    weights = [r.get("slices", 1) for r in rows]
    usable = [(v, w) for v, w in zip(per_slice, weights) if v is not None]
    out: dict[str, Any] = {
        "n": int(fp.size),
        "with_fp": int(np.count_nonzero(fp)),
        "fraction_with_fp": float(np.count_nonzero(fp) / fp.size) if fp.size else None,
        "px_mean": float(fp.mean()) if fp.size else None,
        "px_median": float(np.median(fp)) if fp.size else None,
        "px_p95": float(np.percentile(fp, 95)) if fp.size else None,
        "px_max": float(fp.max()) if fp.size else None,
        "fp_px_per_slice_all_slices": (
            sum(v * w for v, w in usable) / sum(w for _, w in usable) if usable else None
        ),
    }
    return out


def case_metrics(pred: np.ndarray, case: Case) -> dict[str, Any]:
    """Liver and tumour metrics of one case (tumour undefined on partial truth)."""
    vol = case.volume
    spacing = vol.spacing if vol.spacing_known else None
    if spacing is not None and case.truth.shape[0] == 1:
        spacing = spacing[1:]
    truth, pr = case.truth, np.asarray(pred)
    if spacing is None or len(spacing) == 3:
        t, p = truth, pr
    else:
        t, p = truth[0], pr[0]
    row: dict[str, Any] = {"unit": "mm" if spacing is not None else "pixels"}
    n_liver = int(np.count_nonzero(p >= 1))
    # the share of the predicted liver (liver + tumour) called tumour: ~0 on a tumour-free liver
    row["tumour_share"] = None if n_liver == 0 else int(np.count_nonzero(p == 2)) / n_liver
    row["true_tumour_share"] = None if case.partial or not (t >= 1).any() else float((t == 2).sum() / (t >= 1).sum())
    # where the predicted tumour lies: inside the true liver (liver tissue called tumour) or outside it
    # (a neighbouring organ taken into the liver and called tumour); both are known on partial truth too
    n_tumour = int(np.count_nonzero(p == 2))
    n_true_liver = int(np.count_nonzero(t >= 1))
    in_true_liver = int(np.count_nonzero((p == 2) & (t >= 1)))
    row["tumour_outside_true_liver"] = None if n_tumour == 0 else (n_tumour - in_true_liver) / n_tumour
    row["tumour_share_of_true_liver"] = None if n_true_liver == 0 else in_true_liver / n_true_liver
    liver = binary_metrics(p >= 1, t >= 1, spacing)
    for k, v in liver.items():
        row[f"liver_{k}"] = v
    if case.partial:
        for k in list(liver):
            row[f"tumour_{k}"] = None
        row["tumour_note"] = "partial truth (liver and tumour merged): tumour not scored"
    else:
        for k, v in binary_metrics(p == 2, t == 2, spacing).items():
            row[f"tumour_{k}"] = v
    return row


def _grey(vol: Volume, z: int) -> np.ndarray:
    if vol.intensity is Intensity.WINDOWED_RGB:
        return np.asarray(vol.array[z, ..., 1], dtype=np.float32) / 255.0
    hu = vol.hu_slice(z)
    return np.clip((hu + 40.0) / 200.0, 0, 1)


def _figure(rows: list[dict[str, Any]], overlays: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_ov = len(overlays)
    fig = plt.figure(figsize=(max(8, 0.25 * len(rows) + 4), 4 + (3.2 if n_ov else 0)))
    ax = fig.add_subplot(2 if n_ov else 1, 1, 1)
    x = np.arange(len(rows))
    dl = [r["liver_dice"] if r["liver_dice"] is not None else np.nan for r in rows]
    dt = [r["tumour_dice"] if r.get("tumour_dice") is not None else np.nan for r in rows]
    ax.bar(x - 0.2, dl, width=0.4, label="Dice liver")
    ax.bar(x + 0.2, dt, width=0.4, label="Dice tumour")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("Dice")
    ax.set_title(f"per-case Dice ({len(rows)} cases)")
    if len(rows) <= 40:
        ax.set_xticks(x, [r["case"][-18:] for r in rows], rotation=90, fontsize=6)
    ax.legend(loc="lower right")
    for i, (title, img, truth, pred) in enumerate(overlays):
        a = fig.add_subplot(2, n_ov, n_ov + i + 1)
        a.imshow(img, cmap="gray", vmin=0, vmax=1)
        for mask, colour in ((truth >= 1, "lime"), (truth == 2, "yellow"), (pred >= 1, "red"), (pred == 2, "magenta")):
            if mask.any():
                a.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=0.8)
        a.set_title(title[-30:], fontsize=7)
        a.axis("off")
    fig.text(0.01, 0.01, "contours: truth liver green / tumour yellow; prediction liver red / tumour magenta", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    from liverseg_studio.core.io import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue(), overwrite=True)


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for organ in ("liver", "tumour"):
        for k in METRIC_KEYS:
            vals = [r.get(f"{organ}_{k}") for r in rows]
            n = sum(1 for v in vals if v is not None)
            out[f"{organ}_{k}"] = {"mean": mean_defined(vals), "median": median_defined(vals), "n": n}
    for k in ("tumour_share", "true_tumour_share", "tumour_outside_true_liver", "tumour_share_of_true_liver"):
        vals = [r.get(k) for r in rows]
        out[k] = {"mean": mean_defined(vals), "median": median_defined(vals), "n": sum(v is not None for v in vals)}
    t = [r["seconds_per_slice"] for r in rows]
    out["seconds_per_slice"] = {"mean": mean_defined(t), "median": median_defined(t), "n": len(t)}
    return out


def evaluate_cases(
    cases: Sequence[Case],
    backend: Any,
    out: Path,
    *,
    postprocess: bool = True,
    overwrite: bool = False,
    model_info: dict[str, Any] | None = None,
    n_overlays: int = 3,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``backend`` on every case, write the report into ``out``; returns the metrics.json mapping."""
    from liverseg_studio.core.io import atomic_write_text, check_can_write
    from liverseg_studio.segment.pipeline import segment_volume

    say = log or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(out)
    targets = [out / "metrics.json", out / "metrics.csv", out / "metrics.png"]
    check_can_write(targets, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    preds: list[np.ndarray] = []
    t_all = time.monotonic()
    for k, case in enumerate(cases):
        res = segment_volume(case.volume, backend, postprocess=postprocess)
        pred = np.asarray(res.labels)
        row: dict[str, Any] = {"case": case.id, "patient": case.patient, "set": case.set, "partial": case.partial,
                               "slices": case.volume.n_slices,
                               "seconds_per_slice": res.timings.get("inference", 0.0) / max(case.volume.n_slices, 1)}
        row.update(case_metrics(pred, case))
        vol = case.volume
        row.update(false_positive_area(pred, case.truth, vol.spacing[1] * vol.spacing[2] if vol.spacing_known else None))
        rows.append(row)
        preds.append(pred)
        if len(cases) > 1 and ((k + 1) % 25 == 0 or k + 1 == len(cases)):
            say(f"evaluate: {k + 1}/{len(cases)} cases")
    # per patient: pooled Dice over the patient's cases and mean of the case metrics
    patients: list[dict[str, Any]] = []
    by_patient: dict[str, list[int]] = {}
    for i, c in enumerate(cases):
        by_patient.setdefault(c.patient, []).append(i)
    for pid, idx in sorted(by_patient.items()):
        p_rows = [rows[i] for i in idx]
        entry: dict[str, Any] = {"patient": pid, "cases": len(idx)}
        for organ, sel in (("liver", lambda a: a >= 1), ("tumour", lambda a: a == 2)):
            usable = [i for i in idx if organ == "liver" or not cases[i].partial]
            if usable:
                inter = sum(int(np.count_nonzero(sel(preds[i]) & sel(cases[i].truth))) for i in usable)
                tot = sum(int(np.count_nonzero(sel(preds[i])) + np.count_nonzero(sel(cases[i].truth))) for i in usable)
                entry[f"{organ}_dice_pooled"] = None if tot == 0 else 2.0 * inter / tot
            else:
                entry[f"{organ}_dice_pooled"] = None
            entry[f"{organ}_dice_mean"] = mean_defined([r.get(f"{organ}_dice") for r in p_rows])
        known = [i for i in idx if not cases[i].partial]
        tp = sum(int(np.count_nonzero((preds[i] == 2) & (cases[i].truth == 2))) for i in known)
        n_pred = sum(int(np.count_nonzero(preds[i] == 2)) for i in known)
        n_true = sum(int(np.count_nonzero(cases[i].truth == 2)) for i in known)
        entry["tumour_precision_pooled"] = tp / n_pred if known and n_pred else None
        entry["tumour_recall_pooled"] = tp / n_true if known and n_true else None
        n_liver = sum(int(np.count_nonzero(preds[i] >= 1)) for i in idx)
        entry["tumour_share_pooled"] = sum(int(np.count_nonzero(preds[i] == 2)) for i in idx) / n_liver if n_liver else None
        patients.append(entry)

    # overlays: the cases with the most liver in the truth, at their largest liver slice
    overlays = []
    order = sorted(range(len(cases)), key=lambda i: -int(np.count_nonzero(cases[i].truth >= 1)))[:n_overlays]
    for i in order:
        c = cases[i]
        z = int(np.argmax((c.truth >= 1).reshape(c.truth.shape[0], -1).sum(axis=1)))
        d = rows[i]["liver_dice"]
        overlays.append((f"{c.id} z{z} Dice {d:.3f}" if d is not None else f"{c.id} z{z}", _grey(c.volume, z), c.truth[z], preds[i][z]))

    units = sorted({r["unit"] for r in rows})
    report = {
        "format": "liverseg-evaluate/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model_info or {},
        "backend": str(getattr(backend, "name", type(backend).__name__)),
        "postprocess": bool(postprocess),
        "definitions": {
            "liver": "label >= 1 (liver + tumour, as LiTS scores it)",
            "tumour": "label 2; not scored on partial truth (liver and tumour merged by the source)",
            "hd95": "max of the two directed 95th-percentile surface distances (MedPy hd95)",
            "assd": "mean of the two directed mean surface distances (MedPy assd)",
            "rvd": "(|pred| - |truth|) / |truth|",
            "empty_masks": EMPTY_CONVENTION,
            "distance_unit": "mm when the input's spacing is known, else pixels (see each case's unit): " + ", ".join(units),
            "per_slice_2d": "prepared-set slices are 2D cases (pixel distances); patients aggregate them",
            "seconds_per_slice": "backend inference time of the case / its slices (post-processing excluded)",
            "tumour_share": "predicted tumour / predicted liver (label >= 1)",
            "tumour_outside_true_liver": "share of the predicted tumour lying outside the true liver (another "
            "organ called liver-or-tumour)",
            "tumour_share_of_true_liver": "true liver (label >= 1) predicted as tumour / true liver: on a "
            "tumour-free liver, the liver tissue called tumour",
            "liver_free_fp": "on slices whose truth has no liver: pixels predicted as liver (per slice; "
            "summary pooled over all such slices); fp_px_per_slice: predicted liver outside the true liver, "
            "mean over all slices",
        },
        "summary": {**_summary(rows), "liver_free_fp": _fp_summary(rows)},
        "cases": rows,
        "patients": patients,
        "seconds": round(time.monotonic() - t_all, 2),
    }
    atomic_write_text(out / "metrics.json", json.dumps(report, indent=1) + "\n", overwrite=True)
    cols = ["case", "patient", "set", "partial", "slices", "unit", "seconds_per_slice", "tumour_share",
            "true_tumour_share", "tumour_outside_true_liver", "tumour_share_of_true_liver"] + [
        f"{o}_{k}" for o in ("liver", "tumour") for k in METRIC_KEYS
    ] + ["liver_free_slices", "liver_free_slices_with_fp", "liver_free_fp_px_mean", "liver_free_fp_px_max",
         "fp_px_per_slice"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    atomic_write_text(out / "metrics.csv", buf.getvalue(), overwrite=True)
    try:
        _figure(rows, overlays, out / "metrics.png")
    except Exception as exc:  # noqa: BLE001 - the figure must not lose the numbers
        say(f"evaluate: warning: figure not written ({type(exc).__name__}: {exc})")
    return report
