"""The tumour decision, tuned on validation people: ``python -m liverseg_studio.training.calibrate MODEL_DIR DATA_DIR``.

A pixel is tumour when the tumour logit beats the liver logit by ``offset``
(and both beat background), i.e. ``p_tumour / (p_liver + p_tumour) >
sigmoid(offset)``.  The offset is chosen on the *validation* people of a
prepared set, never on a test person or LiTS case 117:

* tumour Dice, precision and recall are pooled over the validation slices with
  real (complete) labels, whose tumours are real;
* the tumour share of the predicted liver is measured on validation slices
  whose livers are known to be tumour-free there (complete labels, no tumour);
* the offset is the one with the best pooled tumour Dice among those whose
  tumour share on tumour-free livers is at most ``max_share`` (5 %); among
  equal Dice the larger (more conservative) offset wins.

The offset is then baked into the bias of the final classifier convolution
(``tumour bias -= offset``), so every engine (ONNX Runtime, OpenVINO, torch)
makes the same decision with a plain argmax, and the card records it.
torch is imported inside the functions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from liverseg_studio.training.data import SliceStore

#: The final 1x1 classifier convolution of the U-Net (``build_unet``'s module name).
HEAD = "layers.10.0"
DEFAULT_OFFSETS = tuple(float(v) for v in np.round(np.arange(-3.0, 6.01, 0.25), 2))


def store_logits(unet: Any, store: SliceStore, bs: int = 8) -> np.ndarray:
    """float16 logits (N, 3, S, S) of the plain validation view of every slice."""
    import torch

    from liverseg_studio.model.arch import IMAGENET_MEAN, IMAGENET_STD
    from liverseg_studio.training.data import make_sample

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = np.zeros((len(store), 3, store.size, store.size), dtype=np.float16)
    unet.eval()
    with torch.no_grad():
        for s in range(0, len(store), bs):
            idx = range(s, min(s + bs, len(store)))
            x = np.stack([make_sample(store, i, None, None)[0] for i in idx]).transpose(0, 3, 1, 2)
            out[s : s + len(idx)] = unet((torch.from_numpy(np.ascontiguousarray(x)) - mean) / std).numpy()
    return out


def decide(logits: np.ndarray, offset: float) -> np.ndarray:
    """Labels (N, S, S) with the tumour logit lowered by ``offset``."""
    lg = logits.astype(np.float32, copy=True)
    lg[:, 2] -= offset
    return lg.argmax(1).astype(np.uint8)


def sweep(logits: np.ndarray, store: SliceStore, offsets: Sequence[float] = DEFAULT_OFFSETS) -> list[dict[str, Any]]:
    """Pooled tumour Dice/precision/recall (real-label slices) and tumour share (tumour-free livers) per offset."""
    real = [i for i in range(len(store)) if not store.partial[i] and (store.labels[i] >= 1).any()]
    free = [i for i in real if not (store.labels[i] == 2).any()]
    rows = []
    for off in offsets:
        pred = decide(logits, off)
        tp = fp = fn = 0
        for i in real:
            p, t = pred[i] == 2, store.labels[i] == 2
            tp += int((p & t).sum())
            fp += int((p & ~t).sum())
            fn += int((~p & t).sum())
        liver_free = sum(int((pred[i] >= 1).sum()) for i in free)
        tum_free = sum(int((pred[i] == 2).sum()) for i in free)
        rows.append({
            "offset": float(off),
            "p_threshold": round(float(1.0 / (1.0 + np.exp(-off))), 4),
            "tumour_dice": round(2 * tp / (2 * tp + fp + fn), 4) if (tp + fp + fn) else None,
            "tumour_precision": round(tp / (tp + fp), 4) if (tp + fp) else None,
            "tumour_recall": round(tp / (tp + fn), 4) if (tp + fn) else None,
            "tumour_share_tumour_free": round(tum_free / liver_free, 4) if liver_free else None,
        })
    return rows


def choose(rows: list[dict[str, Any]], max_share: float = 0.05) -> dict[str, Any]:
    """The offset with the best pooled tumour Dice whose tumour-free share is <= ``max_share``."""
    ok = [r for r in rows if r["tumour_share_tumour_free"] is not None and r["tumour_share_tumour_free"] <= max_share]
    if not ok:
        return max(rows, key=lambda r: r["offset"])
    return max(ok, key=lambda r: ((r["tumour_dice"] or 0.0), r["offset"]))


def apply_offset(unet: Any, offset: float) -> None:
    """Bake the decision into the head: ``bias[tumour] -= offset``."""
    import torch

    head = dict(unet.named_modules())[HEAD]
    with torch.no_grad():
        head.bias[2] -= float(offset)


def calibrate(model_dir: Path, data_dir: Path, max_share: float = 0.05, split: str = "valid") -> dict[str, Any]:
    """Tune the offset on ``split`` of ``data_dir``, bake it into ``model_dir/model.safetensors`` and the card."""
    from liverseg_studio.core.modelcard import read_card, write_card
    from liverseg_studio.model.arch import build_unet, load_unet_weights, save_unet_weights

    card = read_card(model_dir)
    size = int(card.input_size)
    unet = build_unet(size)
    load_unet_weights(unet, model_dir / "model.safetensors")
    store = SliceStore.load(data_dir, split, size)
    people = sorted({e.get("person") or e["patient"] for e in store.entries})
    logits = store_logits(unet, store)
    rows = sweep(logits, store)
    best = choose(rows, max_share)
    apply_offset(unet, best["offset"])
    save_unet_weights(unet, model_dir / "model.safetensors", metadata={"format": "pt", "input_size": str(size)})
    decision = {
        "rule": "tumour where the tumour logit exceeds the liver logit by OFFSET (p_tumour/(p_liver+p_tumour) > "
                "P_THRESHOLD), baked into the head's bias; then 3D post-processing drops tumour components under "
                "min_component_mm3",
        "offset": best["offset"],
        "p_threshold": best["p_threshold"],
        "tuned_on": f"the {split} split of {data_dir} ({len(store)} slices of {len(people)} people; never a test "
                    "person, never LiTS case 117)",
        "criterion": f"best pooled tumour Dice on real-label slices with tumour share <= {max_share:.0%} on "
                     "tumour-free livers",
        "at_offset": best,
        "sweep": rows,
    }
    card.training["tumour_decision"] = decision
    card.record_file("safetensors", model_dir)
    write_card(model_dir, card)
    return decision


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m liverseg_studio.training.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--max-share", type=float, default=0.05)
    ap.add_argument("--split", default="valid")
    a = ap.parse_args(argv)
    d = calibrate(a.model_dir, a.data_dir, a.max_share, a.split)
    for r in d["sweep"]:
        print(json.dumps(r))
    print(f"chosen offset {d['offset']} (p > {d['p_threshold']}): {json.dumps(d['at_offset'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
