"""Write measured figures into a model card (model.json ``metrics``), from the measuring scripts' outputs.

    python scripts/card_metrics.py MODEL_DIR EVAL_DIR [SPREAD_JSON]

EVAL_DIR is what scripts/evaluate_default_model.sh wrote (summary.json + the metrics.json files);
SPREAD_JSON is the output of scripts/engine_spread.py.  Nothing here is typed in by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from liverseg_studio.core.modelcard import read_card, write_card


def _vol(summary: dict, name: str) -> dict | None:
    for v in summary.get("volumes", []):
        if name in v["case"]:
            return v
    return None


def main(model_dir: Path, eval_dir: Path, spread_path: Path | None) -> int:
    card = read_card(model_dir)
    s = json.loads((eval_dir / "summary.json").read_text())
    spread = json.loads(spread_path.read_text()) if spread_path else {}
    m = dict(card.metrics)
    how = "`scripts/evaluate_default_model.sh` (liverseg evaluate, onnx int8 backend, 3D post-processing)"
    for key, case, what in (
        ("lits_case_117", "img_117", "LiTS case 117 (liver-ct-segmentation-package 1.6.0, 128^3 crop; never trained, "
                                     "tuned or selected on), whole volume; distances in voxels (no spacing in the file)"),
        ("ircad_1_01", "ct", "3D-IRCADb 1.01 (../shared/data/volumes/ircad-1.01: the real DICOM series, 7 tumours, "
                             "7.5 % of the liver), whole volume; person held out of training and tuning"),
        ("ircad_1_07", "ct.nii.gz", "3D-IRCADb 1.07 (../shared/data/volumes/ircad-1.07: a tumour-free liver), whole "
                                   "volume; person held out of training and tuning"),
    ):
        v = _vol(s, case) if case != "ct" else next((x for x in s.get("volumes", []) if x["case"] == "ct"), None)
        if v is None:
            continue
        entry = {"what": what, "how": how, **{k: v[k] for k in ("liver_dice", "liver_hd95", "tumour_dice",
                                                               "tumour_precision", "tumour_recall", "tumour_share",
                                                               "true_tumour_share")},
                 **{k: v.get(k) for k in ("tumour_outside_true_liver", "tumour_share_of_true_liver")}}
        if key in spread:
            entry["engine_spread"] = {"engines": {e: r[key] for e, r in spread["engines"].items() if key in r},
                                      "spread": spread[key]["spread"]}
            entry["tolerance"] = spread[key]["tolerance"]
        m[key] = entry
    for split in ("valid", "test"):
        if split not in s:
            continue
        x = s[split]
        m[f"{split}_people"] = {
            "what": f"the {split} people of the prepared shared data (person-disjoint from training), each slice a "
                    f"2D case; tumour figures pooled per person over slices with real labels; {how}",
            "slices": x["slices"], "people": x["people"],
            "liver_dice_per_slice": x["liver_dice_per_slice"],
            "tumour_people": x["tumour_people"],
            "chaos_tumour_share": x["chaos_tumour_share"], "chaos_slices": x["chaos_slices"],
            "chaos_tumour_share_of_true_liver": x.get("chaos_tumour_share_of_true_liver"),
            "tumour_free_real_label_slices_tumour_share": x["tumour_free_slices_tumour_share"],
            "tumour_free_real_label_slices": x["tumour_free_slices"],
            "liver_free_fp": x.get("liver_free_fp"),
        }
    m.pop("validation", None)
    m.pop("targets", None)
    card.metrics = m
    write_card(model_dir, card)
    print(json.dumps({k: v for k, v in m.items() if k != "export"}, indent=1)[:4000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None))
