#!/usr/bin/env python
"""Average the weights of trained model folders (a "model soup"): one new model folder.

    python scripts/average_weights.py OUT_DIR MODEL_DIR MODEL_DIR [...] [--version V] [--weights w1,w2,...]

Each input is a ``liverseg train`` output folder (``model.safetensors`` + ``model.json``) of the same
architecture and input size, or a folder holding only ONNX weights (``model.onnx`` / ``model.int8.onnx``,
e.g. the first shipped model 2026.11.1 taken out of git): those are dequantised as ``liverseg train
--init-from`` does (BatchNorm folded into the convolutions, the parametrisation every fine-tuned stage
kept).  A folder that went through ``liverseg_studio.training.calibrate`` has its
tumour offset baked into the head's bias; that offset is taken back out first, so the soup averages the
networks as trained and is calibrated afresh afterwards (its card has no ``tumour_decision`` until then).
BatchNorm is frozen in the fine-tuning stages (``--freeze-bn``), so the running statistics averaged here
are those of the common ancestor and stay consistent.

The card of the first input is the template: version, ``training.soup`` (the inputs, their weights and
card versions) are written; ``files`` keeps only the safetensors (export writes the ONNX files again).
torch is needed (the training extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--version", help="model version for the new card (default: the first input's)")
    ap.add_argument("--weights", help="comma-separated mixing weights (default: equal)")
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args(argv)
    if len(a.models) < 2:
        ap.error("give at least two model folders")
    weights = [float(w) for w in a.weights.split(",")] if a.weights else [1.0] * len(a.models)
    if len(weights) != len(a.models) or any(w < 0 for w in weights) or sum(weights) <= 0:
        ap.error("--weights needs one non-negative weight per model, not all zero")
    total = sum(weights)
    weights = [w / total for w in weights]
    if a.out_dir.exists() and any(a.out_dir.iterdir()) and not a.overwrite:
        ap.error(f"{a.out_dir} exists and is not empty (use --overwrite)")

    import torch

    from liverseg_studio.core.errors import BackendError
    from liverseg_studio.core.modelcard import read_card, write_card
    from liverseg_studio.model.arch import build_unet, save_unet_weights
    from liverseg_studio.training.calibrate import HEAD
    from liverseg_studio.training.train import TrainError, warm_start
    from liverseg_studio.training.warmstart import WarmStartError

    cards = [read_card(m) for m in a.models]
    sizes = {int(c.input_size) for c in cards}
    if len(sizes) != 1:
        ap.error(f"input sizes differ: {sorted(sizes)}")
    size = sizes.pop()
    avg: dict[str, torch.Tensor] = {}
    inputs = []
    for m, card, w in zip(a.models, cards, weights):
        net = build_unet(size)
        try:  # the loader of `liverseg train --init-from`: safetensors strictly, or ONNX weights dequantised
            warm_start(net, m, size)
        except (BackendError, TrainError, WarmStartError) as exc:
            ap.error(str(exc))
        state = net.state_dict()
        offset = float((card.training.get("tumour_decision") or {}).get("offset", 0.0))
        state[f"{HEAD}.bias"] = state[f"{HEAD}.bias"].clone()
        state[f"{HEAD}.bias"][2] += offset  # undo calibrate.apply_offset
        for k, v in state.items():
            if v.is_floating_point():
                avg[k] = avg.get(k, torch.zeros_like(v, dtype=torch.float64)) + w * v.double()
            else:  # num_batches_tracked and the like: the first model's
                avg.setdefault(k, v.clone())
        inputs.append({"model": str(m), "version": card.version, "weight": round(w, 4), "offset_removed": offset})
    unet = build_unet(size)
    ref = unet.state_dict()
    unet.load_state_dict({k: v.to(ref[k].dtype) for k, v in avg.items()}, strict=True)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    save_unet_weights(unet, a.out_dir / "model.safetensors", metadata={"format": "pt", "input_size": str(size)})
    card = cards[0]
    if a.version:
        card.version = a.version
    card.training.pop("tumour_decision", None)
    card.training["soup"] = {"how": "weighted mean of every floating-point weight (offsets removed)", "inputs": inputs}
    card.files = {}
    card.record_file("safetensors", a.out_dir)
    write_card(a.out_dir, card)
    print(f"wrote {a.out_dir} from {len(inputs)} models", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
