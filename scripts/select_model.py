#!/usr/bin/env python
"""Choose among candidate models on the validation people only: ``python scripts/select_model.py DATA_DIR MODEL_DIR...``.

The rule (fixed before the candidates' figures were looked at, and the same for every candidate):

* every candidate has been calibrated (``liverseg_studio.training.calibrate``) on the same validation split;
* two views of each validation slice, fp32 torch, argmax of the calibrated head:
  - **plain**: the whole slice, as the studio sees a 2D image or one slice of a whole CT;
  - **zoom**: a square around the slice's true liver (10 % margin, at least 40 % of the side) resized to
    the model's input, as a reconstruction or crop targeted at the liver shows it (LiTS case 117 is such a
    128^3 crop; it is *not* used here);
* per view: liver Dice (label >= 1) per slice, mean over slices with liver; tumour Dice pooled over the
  slices with real (complete) labels;
* **score = mean(liver plain, liver zoom) + mean(tumour plain, tumour zoom)**, the highest wins.

Prints one JSON line per candidate and the winner.  torch is imported inside (the training extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

MARGIN = 0.10
MIN_SIDE = 0.40


def liver_box(labels: np.ndarray) -> tuple[int, int, int] | None:
    """``(y0, x0, side)`` of the zoom view for one slice, or None without liver."""
    size = labels.shape[0]
    ys, xs = np.nonzero(labels >= 1)
    if not ys.size:
        return None
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    side = int(min(size, max(round(max(h, w) * (1 + 2 * MARGIN)), round(MIN_SIDE * size))))
    cy, cx = (ys.max() + ys.min()) // 2, (xs.max() + xs.min()) // 2
    y0 = int(np.clip(cy - side // 2, 0, size - side))
    x0 = int(np.clip(cx - side // 2, 0, size - side))
    return y0, x0, side


def zoom_view(img: np.ndarray, target: np.ndarray, box: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage as ndi

    y0, x0, side = box
    size = target.shape[0]
    f = size / side
    im = ndi.zoom(img[y0 : y0 + side, x0 : x0 + side], (f, f, 1), order=1, grid_mode=True, mode="nearest")
    tg = ndi.zoom(target[y0 : y0 + side, x0 : x0 + side], (f, f), order=0, grid_mode=True, mode="nearest")
    return im[:size, :size], tg[:size, :size]


def measure(model_dir: Path, store: Any) -> dict[str, Any]:
    import torch

    from liverseg_studio.core.metrics import confusion, dice
    from liverseg_studio.core.modelcard import read_card
    from liverseg_studio.model.arch import IMAGENET_MEAN, IMAGENET_STD, build_unet, load_unet_weights
    from liverseg_studio.training.data import make_sample

    card = read_card(model_dir)
    if "tumour_decision" not in card.training:
        raise SystemExit(f"{model_dir}: not calibrated (run liverseg_studio.training.calibrate first)")
    unet = build_unet(int(card.input_size))
    load_unet_weights(unet, model_dir / "model.safetensors")
    unet.eval()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out: dict[str, Any] = {"model": str(model_dir), "version": card.version,
                           "offset": card.training["tumour_decision"]["offset"]}
    views = ("plain", "zoom")
    liver: dict[str, list[float]] = {v: [] for v in views}
    tumour = {v: np.zeros(3, dtype=np.int64) for v in views}  # pooled tp, fp, fn
    for i in range(len(store)):
        img, tgt = make_sample(store, i, None, None)
        box = liver_box(tgt)
        if box is None:
            continue
        for view, (im, tg) in zip(views, ((img, tgt), zoom_view(img, tgt, box))):
            x = torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)[None]))
            with torch.no_grad():
                pred = unet((x - mean) / std).argmax(1)[0].numpy()
            liver[view].append(dice(pred >= 1, tg >= 1))
            if not store.partial[i]:
                tumour[view] += confusion(pred == 2, tg == 2)[:3]
    for view in views:
        tp, fp, fn = (int(c) for c in tumour[view])
        out[f"liver_dice_{view}"] = round(float(np.mean(liver[view])), 4)
        out[f"tumour_dice_{view}"] = round(2 * tp / (2 * tp + fp + fn), 4) if tp + fp + fn else 0.0
        out[f"tumour_precision_{view}"] = round(tp / (tp + fp), 4) if tp + fp else None
        out[f"tumour_recall_{view}"] = round(tp / (tp + fn), 4) if tp + fn else None
    out["slices"] = len(liver["plain"])
    out["score"] = round((out["liver_dice_plain"] + out["liver_dice_zoom"]) / 2
                         + (out["tumour_dice_plain"] + out["tumour_dice_zoom"]) / 2, 4)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON here")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    from liverseg_studio.core.modelcard import read_card
    from liverseg_studio.training.data import SliceStore

    size = int(read_card(a.models[0]).input_size)
    store = SliceStore.load(a.data_dir, a.split, size)
    rows = []
    for m in a.models:
        rows.append(measure(m, store))
        print(json.dumps(rows[-1]), flush=True)
    best = max(rows, key=lambda r: r["score"])
    print(f"selected: {best['model']} (score {best['score']})", file=sys.stderr)
    if a.out:
        a.out.write_text(json.dumps({"rule": __doc__, "rows": rows, "selected": best["model"]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
