"""training/orientation.py: every training slice into the canonical display (liver left, spine down)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from liverseg_studio.training import orientation as O
from liverseg_studio.training.prepare import builtin_sets, grey_to_hu, prepare

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def phantom(size: int = 256, liver_col: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A canonical axial slice in HU: body wider than deep, vertebra (cortex, marrow, canal) at the bottom
    on the midline, a few ribs, the liver (labels 1) centred at ``liver_col`` of the width, the table below."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = size * 0.48, size * 0.5
    hu = np.full((size, size), -1000.0, np.float32)
    body = ((yy - cy) / (size * 0.30)) ** 2 + ((xx - cx) / (size * 0.40)) ** 2 <= 1
    hu[body] = -100.0  # fat
    inner = ((yy - cy) / (size * 0.27)) ** 2 + ((xx - cx) / (size * 0.37)) ** 2 <= 1
    hu[inner] = 40.0
    vy, vx = cy + size * 0.17, cx
    r = np.hypot(yy - vy, xx - vx)
    hu[r <= size * 0.055] = 700.0
    hu[r <= size * 0.04] = 250.0
    hu[np.hypot(yy - (vy + size * 0.065), xx - vx) <= size * 0.02] = 20.0  # the canal behind the body
    for ang in np.linspace(0.0, 2 * np.pi, 12, endpoint=False):  # ribs near the wall, all round
        ry, rx = cy + np.sin(ang) * size * 0.25, cx + np.cos(ang) * size * 0.35
        hu[np.hypot(yy - ry, xx - rx) <= size * 0.01] = 500.0
    liver = ((yy - cy + size * 0.03) / (size * 0.16)) ** 2 + ((xx - size * liver_col) / (size * 0.13)) ** 2 <= 1
    hu[liver] = 60.0
    hu[(np.abs(yy - (cy + size * 0.34)) <= 1) & (np.abs(xx - cx) <= size * 0.42)] = 300.0  # the table
    return hu, liver.astype(np.uint8)


def test_transforms_invert_and_compose() -> None:
    a = np.arange(12).reshape(3, 4)
    seen = set()
    for name in O.TRANSFORMS:
        b = O.apply(name, a)
        assert np.array_equal(O.apply(O.invert(name), b), a), name
        seen.add(b.tobytes() + bytes(b.shape))
    assert len(seen) == 8  # eight distinct transforms
    for first in O.TRANSFORMS:
        for then in O.TRANSFORMS:
            assert np.array_equal(O.apply(O._compose(first, then), a), O.apply(then, O.apply(first, a)))
    assert np.array_equal(O.apply("transpose", a), a.T)


@pytest.mark.parametrize("name", list(O.TRANSFORMS))
def test_detect_undoes_every_dihedral_transform(name: str) -> None:
    hu, lab = phantom()
    o = O.detect(O.apply(name, hu), O.apply(name, lab))
    assert o.ok, o
    assert np.array_equal(O.apply(o.transform, O.apply(name, hu)), hu), (name, o)
    assert o.transform == O.invert(name)
    assert 0.5 <= o.confidence <= 1.0


def test_detect_refuses_ambiguous_slices() -> None:
    hu, lab = phantom(liver_col=0.5)  # liver centred on the midline, in front of the spine
    o = O.detect(hu, lab)
    assert not o.ok and "spine's line" in o.reason
    hu, lab = phantom()
    o = O.detect(np.where(hu >= 200, 40.0, hu).astype(np.float32), lab)
    assert not o.ok and ("spine" in o.reason or "bone" in o.reason)
    o = O.detect(hu, np.zeros_like(lab))
    assert not o.ok and "no liver" in o.reason


def test_set_rules_and_file_name_rule() -> None:
    hu, lab = phantom()
    # a set with a documented orientation: the rule, without looking
    for set_name, rule in (("ircad", "rot180"), ("chaos", "identity"), ("amos", "flipud"), ("lits-javispeng", "flipud")):
        assert O.SET_RULES[set_name] == rule
        h2, l2, o = O.canonicalise(set_name, hu, lab)
        assert o.ok and o.rule == "set" and o.transform == rule
        assert np.array_equal(h2, O.apply(rule, hu)) and np.array_equal(l2, O.apply(rule, lab))
    # unknown set: as stored
    h2, _, o = O.canonicalise("custom", hu, lab)
    assert o.ok and o.transform == "identity" and o.rule == "as-stored" and np.array_equal(h2, hu)
    # lits-msd: the file name's rule (flipped_ = rot90, mirrored_ = rot270), checked against the detector
    stored = O.apply(O.invert("rot90"), hu), O.apply(O.invert("rot90"), lab)
    h2, l2, o = O.canonicalise("lits-msd", *stored, name="flipped_10001_81")
    assert o.ok and o.transform == "rot90" and o.rule == "name+detected"
    assert np.array_equal(h2, hu) and np.array_equal(l2, lab)
    # the detector sees the opposite: refused, slice untouched
    h2, l2, o = O.canonicalise("lits-msd", *stored, name="mirrored_10001_81")
    assert not o.ok and "detector finds rot90" in o.reason and h2 is stored[0]
    # the detector undecided (no liver to place): the name's rule, lower confidence
    _, _, o = O.canonicalise("lits-msd", stored[0], np.zeros_like(lab), name="flipped_1")
    assert o.ok and o.transform == "rot90" and o.confidence == 0.5 and "undecided" in o.reason
    # no known prefix: the detector alone
    _, _, o = O.canonicalise("lits-msd", *stored, name="10001_81")
    assert o.ok and o.transform == "rot90" and o.rule == "detected"


def _write(root: Path, set_name: str, name: str, hu: np.ndarray, lab: np.ndarray, person: str) -> dict:
    lo, hi = builtin_sets()[set_name].hu_range
    grey = np.clip(np.rint((hu - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
    for d in ("images", "masks"):
        (root / set_name / d).mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey).save(root / set_name / "images" / f"{name}.png")
    Image.fromarray(lab * (3 if set_name == "lits-msd" else 1)).save(root / set_name / "masks" / f"{name}.png")
    return {"set": set_name, "image": f"{set_name}/images/{name}.png", "mask": f"{set_name}/masks/{name}.png",
            "patient": person, "person": person, "grey": "x", "labels": "x", "source": "synthetic",
            "licence": "test", "note": ""}


def test_prepare_canonical_turns_records_and_refuses(tmp_path: Path) -> None:
    hu, lab = phantom(128)
    src = tmp_path / "src"
    rows = [
        _write(src, "ircad", "10001_5", O.apply("rot180", hu), O.apply("rot180", lab), "lits-msd:10049"),
        _write(src, "lits-msd", "flipped_10002_7", O.apply("rot270", hu), O.apply("rot270", lab), "lits-msd:10002"),
        # stored as a quarter turn the name does not say: the detector disagrees -> refused
        _write(src, "lits-msd", "mirrored_10003_9", O.apply("rot270", hu), O.apply("rot270", lab), "lits-msd:10003"),
        _write(src, "lits-msd", "flipped_10004_2", O.apply("rot270", hu), O.apply("rot270", lab), "lits-msd:10004"),
    ]
    with open(src / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = prepare([src], tmp_path / "out", size=64, split=(1, 0, 0), orientation="canonical")
    assert res.refused == {"lits-msd": 1} and res.n_slices == 3
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["orientation"] == {"mode": "canonical", "refused": {"lits-msd": 1}}
    by_id = {e["id"]: e for e in m["slices"]}
    assert by_id["ircad/10001_5"]["orientation"] == {"transform": "rot180", "confidence": 1.0, "rule": "set"}
    assert by_id["lits-msd/flipped_10002_7"]["orientation"]["rule"] == "name+detected"
    # every written mask has its liver on the left half; the as-stored set keeps the quarter turns
    for e in m["slices"]:
        mask = np.asarray(Image.open(tmp_path / "out" / e["mask"]))
        cols = np.nonzero(mask)[1]
        assert cols.mean() < mask.shape[1] / 2, e["id"]
    res2 = prepare([src], tmp_path / "out2", size=64, split=(1, 0, 0))
    assert res2.refused == {} and res2.n_slices == 4
    m2 = json.loads((tmp_path / "out2" / "manifest.json").read_text())
    assert "orientation" not in m2["slices"][0] and m2["orientation"]["mode"] == "as-stored"


# -- the detector on the real slices whose orientation is known --------------------------------------------
#: measured (2026-12-05; lits-msd agrees on 97.1 % of what it decides, asserted >= 96 %) with the detector alone (no set rule, no file name): per set (decided, agreeing) of
#: all slices.  Every decision it made on these sets agreed with the documented / file-name orientation except
#: 17 of lits-msd, which the eye shows are the detector's own errors (bowel contrast taken for the spine).
MEASURED = {"ircad": (26, 26, 34), "chaos": (16, 16, 17), "amos": (2, 2, 2), "lits-javispeng": (2, 2, 2),
            "lits-msd": (584, 567, 638)}


@pytest.mark.skipif(not (SHARED / "manifest.csv").is_file(), reason=f"{SHARED} (the shared CT slices) is absent")
def test_detector_agrees_with_the_known_orientations_on_real_slices() -> None:
    from liverseg_studio.training.prepare import _map_labels, _read_grey, _read_mask

    sets = builtin_sets()
    with open(SHARED / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    tally: dict[str, list[int]] = {}
    for row in rows:
        spec = sets[row["set"]]
        grey = _read_grey(SHARED / row["image"])
        labels = _map_labels(_read_mask(SHARED / row["mask"]), spec.source_values, row["mask"])
        rule = O.SET_RULES[row["set"]]
        if rule == "prefix":
            name = Path(row["image"]).stem
            rule = next(t for p, t in O.PREFIX_RULES[row["set"]].items() if name.startswith(p))
        o = O.detect(grey_to_hu(grey, spec.hu_range), labels)
        t = tally.setdefault(row["set"], [0, 0, 0])
        t[0] += o.ok
        t[1] += o.ok and o.transform == rule
        t[2] += 1
    print("decided, agreeing, slices:", tally)
    for name, (decided, agree, n) in tally.items():
        m_dec, m_agree, m_n = MEASURED[name]
        assert n == m_n, name
        assert decided >= 0.7 * n, (name, decided, n)  # the detector decides most slices...
        assert agree >= 0.96 * decided, (name, agree, decided)  # ...and is right on (nearly) all it decides
    known = [tally[k] for k in ("ircad", "chaos", "amos", "lits-javispeng")]
    assert sum(a for _, a, _ in known) == sum(d for d, _, _ in known)  # documented sets: no disagreement at all
