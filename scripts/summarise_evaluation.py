"""Summarise the reports of scripts/evaluate_default_model.sh: per person, per volume, tumour-free shares.

    python scripts/summarise_evaluation.py OUT_DIR   # prints a table, writes OUT_DIR/summary.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _r(v):
    return None if v is None else round(float(v), 4)


def main(out: Path) -> int:
    summary: dict = {}
    for split in ("valid", "test"):
        f = out / split / "metrics.json"
        if not f.is_file():
            continue
        rep = json.loads(f.read_text())
        s = rep["summary"]
        rows = rep["cases"]
        people = []
        for p in rep["patients"]:
            people.append({k: _r(v) if isinstance(v, float) else v for k, v in p.items()})
        chaos = [r for r in rows if r.get("set") == "chaos"]
        liver = sum(r["liver_pred_voxels"] or 0 for r in chaos)
        tum = sum(r["tumour_pred_voxels"] or 0 for r in chaos)
        free = [r for r in rows if not r["partial"] and (r.get("true_tumour_share") == 0.0)]
        # CHAOS livers are tumour-free: how much of the true liver is called tumour (vs. tumour in other organs)
        chaos_true = sum(r.get("liver_truth_voxels") or 0 for r in chaos)
        chaos_in = sum((r.get("tumour_share_of_true_liver") or 0) * (r.get("liver_truth_voxels") or 0) for r in chaos)
        fl = sum(r["liver_pred_voxels"] or 0 for r in free)
        ft = sum(r["tumour_pred_voxels"] or 0 for r in free)
        summary[split] = {
            "slices": len(rows),
            "people": len(people),
            "liver_dice_per_slice": {k: _r(s["liver_dice"][k]) for k in ("mean", "median")} | {"n": s["liver_dice"]["n"]},
            "liver_dice_pooled_per_person_mean": _r(sum(p["liver_dice_pooled"] or 0 for p in people) / max(len(people), 1)),
            "tumour_people": [p for p in people if p.get("tumour_dice_pooled") is not None and p.get("tumour_recall_pooled") is not None],
            "chaos_tumour_share": _r(tum / liver) if liver else None,
            "chaos_slices": len(chaos),
            "chaos_tumour_share_of_true_liver": _r(chaos_in / chaos_true) if chaos_true else None,
            "tumour_free_slices_tumour_share": _r(ft / fl) if fl else None,
            "tumour_free_slices": len(free),
            "liver_free_fp": s.get("liver_free_fp"),
        }
    f = out / "volumes" / "metrics.json"
    if f.is_file():
        rep = json.loads(f.read_text())
        summary["volumes"] = [
            {k: _r(r.get(k)) if isinstance(r.get(k), (float, int)) and not isinstance(r.get(k), bool) else r.get(k)
             for k in ("case", "slices", "unit", "liver_dice", "liver_hd95", "tumour_dice", "tumour_precision",
                       "tumour_recall", "tumour_share", "true_tumour_share", "tumour_outside_true_liver",
                       "tumour_share_of_true_liver", "seconds_per_slice")}
            for r in rep["cases"]
        ]
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    for split in ("valid", "test"):
        if split in summary:
            s = summary[split]
            print(f"{split}: {s['slices']} slices of {s['people']} people; liver Dice per slice mean "
                  f"{s['liver_dice_per_slice']['mean']} median {s['liver_dice_per_slice']['median']}; "
                  f"CHAOS tumour share {s['chaos_tumour_share']} ({s['chaos_slices']} slices; of the true liver "
                  f"{s['chaos_tumour_share_of_true_liver']}); tumour-free "
                  f"real-label slices: share {s['tumour_free_slices_tumour_share']} ({s['tumour_free_slices']} slices)")
            for p in s["tumour_people"]:
                print(f"   {p['patient']}: tumour Dice {p['tumour_dice_pooled']} precision {p['tumour_precision_pooled']} "
                      f"recall {p['tumour_recall_pooled']}; liver Dice {p['liver_dice_pooled']}")
    for v in summary.get("volumes", []):
        print(f"volume {v['case']}: liver Dice {v['liver_dice']}; tumour Dice {v['tumour_dice']} precision "
              f"{v['tumour_precision']} recall {v['tumour_recall']}; tumour share {v['tumour_share']} "
              f"(true {v['true_tumour_share']}); tumour outside the true liver {v['tumour_outside_true_liver']}, "
              f"true liver called tumour {v['tumour_share_of_true_liver']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
