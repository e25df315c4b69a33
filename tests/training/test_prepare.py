"""liverseg prepare: LiTS-layout folders, shared slice sets, patient split, manifest, re-runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.phantom import make_phantom, write_nifti
from liverseg_studio.cli import main
from liverseg_studio.training.prepare import HU_OFFSET, assign_splits, builtin_sets, slices_from_shared_manifest


@pytest.fixture()
def lits_folder(tmp_path: Path) -> Path:
    """Two synthetic LiTS-layout cases: volume-0.nii, volume-1.nii + segmentation-N.nii."""
    folder = tmp_path / "lits"
    folder.mkdir()
    for n in (0, 1):
        ph = make_phantom((14, 64, 64), noise=0.0, seed=n)
        write_nifti(folder / f"volume-{n}.nii", ph.hu, ph.affine, dtype="int16")
        write_nifti(folder / f"segmentation-{n}.nii", ph.labels, ph.affine, dtype="uint8")
    return folder


def _prepare(args: list[str]) -> int:
    return main(["prepare", *args, "--quiet"])


def test_lits_folder_channels_masks_and_patient_split(lits_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    assert _prepare([str(lits_folder), "--out", str(out), "--size", "64", "--split", "50,50,0"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    slices = m["slices"]
    assert slices
    # no patient in two splits, and both patients used (one train, one valid)
    split_of: dict[str, set[str]] = {}
    for e in slices:
        split_of.setdefault(e["patient"], set()).add(e["split"])
    assert set(split_of) == {"lits:0", "lits:1"}
    assert all(len(s) == 1 for s in split_of.values())
    assert {next(iter(s)) for s in split_of.values()} == {"train", "valid"}
    # every slice: 3-channel JPG whose channels follow the windows, mask 0/1/2, HU PNG
    liver_seen = tumour_seen = False
    for e in slices:
        assert {"id", "set", "source", "patient", "split", "image", "mask", "partial", "licence", "grey"} <= set(e)
        assert e["partial"] is False
        rgb = np.asarray(Image.open(out / e["image"]))
        mask = np.asarray(Image.open(out / e["mask"]))
        hu = np.asarray(Image.open(out / e["hu"])).astype(np.float64) - HU_OFFSET
        assert rgb.shape == (64, 64, 3) and mask.shape == (64, 64)
        assert set(np.unique(mask)) <= {0, 1, 2}
        liver = (mask == 1)
        from scipy import ndimage as ndi

        inner = ndi.binary_erosion(liver, iterations=2)
        if inner.sum() > 20:
            liver_seen = True
            # liver 60 HU: W150/L30 -> (60+45)/150 = 0.70 -> 178.5; W200/L60 -> (60+40)/200 = 0.5 -> 127.5
            assert abs(np.median(rgb[..., 0][inner]) - 178.5) <= 6
            assert abs(np.median(rgb[..., 1][inner]) - 127.5) <= 6
            assert abs(np.median(hu[inner]) - 60) <= 1
        tum = ndi.binary_erosion(mask == 2, iterations=1)
        if tum.sum() > 4:
            tumour_seen = True
            # tumour 20 HU: (20+45)/150 -> 110.5; (20+40)/200 -> 76.5
            assert abs(np.median(rgb[..., 0][tum]) - 110.5) <= 8
            assert abs(np.median(rgb[..., 1][tum]) - 76.5) <= 8
        # body (0 HU) and air (clamped to 0 HU) give the same first two channels: 76.5 and 51
        body = ndi.binary_erosion(mask == 0, iterations=3)
        assert abs(np.median(rgb[..., 0][body]) - 76.5) <= 6
        assert abs(np.median(rgb[..., 1][body]) - 51.0) <= 6
        if inner.sum() > 20:
            assert (rgb[..., 0].astype(int) - rgb[..., 1]).std() > 1  # channels differ
    assert liver_seen and tumour_seen
    # bounded share of no-liver slices (default 0.25 per patient)
    for p in ("lits:0", "lits:1"):
        mine = [e for e in slices if e["patient"] == p]
        n_liver = sum(e["has_liver"] for e in mine)
        assert sum(not e["has_liver"] for e in mine) <= 0.25 * n_liver


def test_rerun_is_safe_and_deterministic(lits_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prepared"
    assert _prepare([str(lits_folder), "--out", str(out), "--size", "64"]) == 0
    first = (out / "manifest.json").read_text()
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    capsys.readouterr()
    assert _prepare([str(lits_folder), "--out", str(out), "--size", "64"]) == 0
    assert "0 written" in capsys.readouterr().out
    assert (out / "manifest.json").read_text() == first
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == files
    # a different size rewrites everything, still without duplicates
    assert _prepare([str(lits_folder), "--out", str(out), "--size", "32"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert len({e["id"] for e in m["slices"]}) == len(m["slices"])
    assert np.asarray(Image.open(out / m["slices"][0]["image"])).shape == (32, 32, 3)


def test_refuses_foreign_folder_and_held_out_case(lits_folder: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("user data")
    assert _prepare([str(lits_folder), "--out", str(foreign)]) == 2
    assert (foreign / "notes.txt").read_text() == "user data"
    import liver_ct_segmentation_package as pkg

    data = Path(pkg.__file__).parent / "data"
    assert _prepare(["--pair", str(data / "img_117.mrc"), str(data / "lab_117.mrc"), "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x" / "manifest.json").exists()


def _write_slice(root: Path, set_name: str, name: str, img: np.ndarray, mask: np.ndarray, **row: str) -> dict:
    """Save one slice of the shared-data layout (8-bit image + mask PNG); returns its manifest row."""
    for d in ("images", "masks"):
        (root / set_name / d).mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).convert("RGB").save(root / set_name / "images" / f"{name}.png")
    Image.fromarray(mask).save(root / set_name / "masks" / f"{name}.png")
    return {"set": set_name, "image": f"{set_name}/images/{name}.png", "mask": f"{set_name}/masks/{name}.png", **row,
            "grey": "x", "labels": "x", "source": "synthetic", "licence": "test", "note": ""}


def _write_manifest(root: Path, rows: list[dict]) -> Path:
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


def _write_shared(root: Path) -> Path:
    """A miniature of the shared data layout: manifest.csv + 8-bit images/masks (3 = liver-or-tumour)."""
    rng = np.random.default_rng(0)
    rows = []
    specs = [("lits-msd", f"1{n:04d}", 3) for n in range(40, 52)] + [("lits-msd", "10030", 3)]
    specs += [("ircad", f"100{n:02d}", 3) for n in range(5)] + [("chaos", f"10{n}", 1) for n in range(4)]
    specs += [("amos", f"amos_{n}", 3) for n in range(2)] + [("lits-javispeng", "train_000", 3), ("lits-javispeng", "val_000", 3)]
    for set_name, pid, val in specs:
        for k in range(2):
            img = rng.integers(0, 255, (48, 48)).astype(np.uint8)
            mask = np.zeros((48, 48), np.uint8)
            mask[10:30, 12:34] = val
            rows.append(_write_slice(root, set_name, f"{pid}_{k}", img, mask, patient=f"{set_name}:{pid}"))
    return _write_manifest(root, rows)


def test_shared_sets_partial_flags_groups_and_mixed_validation(tmp_path: Path) -> None:
    src = _write_shared(tmp_path / "shared")
    out = tmp_path / "prepared"
    assert _prepare([str(src), "--out", str(out), "--size", "32", "--seed", "3"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    by_patient: dict[str, set[str]] = {}
    for e in m["slices"]:
        by_patient.setdefault(e["patient"], set()).add(e["split"])
        mask = np.asarray(Image.open(out / e["mask"]))
        # liver-or-tumour stays 3 per pixel (the marginal loss reads it); chaos livers are real liver (1)
        assert set(np.unique(mask)) <= ({0, 1} if e["set"] == "chaos" else {0, 3})
        assert e["partial"] is (e["set"] != "chaos")
        assert e["grey"]["hu_range"] is not None
        assert e["grey"]["estimated"] is (e["set"] in ("ircad", "chaos", "lits-javispeng"))
        assert e["hu"]
    assert all(len(s) == 1 for s in by_patient.values())
    # the same person on both sides of the data: together
    assert by_patient["lits-javispeng:train_000"] == by_patient["lits-msd:10030"]
    valid_sets = {e["set"] for e in m["slices"] if e["split"] == "valid"}
    assert len(valid_sets) >= 3, valid_sets
    # grey -> HU: lits-msd grey == HU
    e = next(e for e in m["slices"] if e["set"] == "lits-msd")
    assert e["grey"]["hu_range"] == [0.0, 255.0]


def test_split_is_seeded_and_by_group(tmp_path: Path) -> None:
    src = _write_shared(tmp_path / "shared")
    sl = slices_from_shared_manifest(src, builtin_sets())
    same = {"lits-javispeng:train_000": "lits-msd:10030"}
    a = assign_splits(sl, (0.8, 0.1, 0.1), 0, same)
    b = assign_splits(sl, (0.8, 0.1, 0.1), 0, same)
    c = assign_splits(sl, (0.8, 0.1, 0.1), 1, same)
    assert a == b
    assert a != c
    assert a["lits-javispeng:train_000"] == a["lits-msd:10030"]
    assert c["lits-javispeng:train_000"] == c["lits-msd:10030"]


def _write_people(root: Path) -> Path:
    """Shared-data rows with a person column: IRCAD people are LiTS people; real labels 1/2 beside merged 3."""
    rng = np.random.default_rng(1)
    rows = []
    specs = [("lits-msd", "lits-msd:10049", "lits-msd:10049", 3), ("lits-msd", "lits-msd:10049", "lits-msd:10049", 2),
             ("ircad", "ircad:1.01", "lits-msd:10049", 2), ("ircad", "ircad:1.07", "lits-msd:10056", 1)]
    specs += [("lits-msd", f"lits-msd:1{n:04d}", f"lits-msd:1{n:04d}", 3) for n in range(10, 30)]
    for k, (set_name, patient, person, val) in enumerate(specs):
        img = rng.integers(0, 255, (48, 48)).astype(np.uint8)
        mask = np.zeros((48, 48), np.uint8)
        mask[10:30, 12:34] = 1 if val in (1, 2) else 3
        if val == 2:
            mask[15:20, 15:20] = 2
        rows.append(_write_slice(root, set_name, f"s{k:03d}", img, mask, patient=patient, person=person))
    return _write_manifest(root, rows)


def test_per_pixel_labels_split_by_person_and_assigned_people(tmp_path: Path) -> None:
    src = _write_people(tmp_path / "shared")
    out = tmp_path / "prepared"
    assert _prepare([str(src), "--out", str(out), "--size", "32", "--assign", "lits-msd:10049=test",
                     "--assign", "lits-msd:10056=valid"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    split_of_person: dict[str, set[str]] = {}
    for e in m["slices"]:
        split_of_person.setdefault(e["person"], set()).add(e["split"])
        mask = np.asarray(Image.open(out / e["mask"]))
        # real labels (1 liver, 2 tumour) are complete; a merged mask (3) is partial
        assert e["partial"] is bool((mask == 3).any())
        assert set(np.unique(mask)) <= {0, 1, 2, 3}
    assert all(len(v) == 1 for v in split_of_person.values())
    # the IRCAD patient 1.01 is LiTS person 10049: held out with it
    assert split_of_person["lits-msd:10049"] == {"test"}
    assert split_of_person["lits-msd:10056"] == {"valid"}
    ircad = [e for e in m["slices"] if e["patient"] == "ircad:1.01"]
    assert ircad and ircad[0]["split"] == "test" and 2 in ircad[0]["labels_present"]
    assert m["assigned"] == {"lits-msd:10049": "test", "lits-msd:10056": "valid"}


def test_assign_refuses_unknown_people_and_bad_splits(tmp_path: Path) -> None:
    src = _write_people(tmp_path / "shared")
    assert _prepare([str(src), "--out", str(tmp_path / "a"), "--assign", "nobody:1=test"]) == 2
    assert _prepare([str(src), "--out", str(tmp_path / "b"), "--assign", "lits-msd:10049=holdout"]) == 2


def test_partial_target_per_pixel_and_legacy_sets(tmp_path: Path) -> None:
    from liverseg_studio.training.data import PARTIAL, SliceStore

    src = _write_people(tmp_path / "shared")
    out = tmp_path / "prepared"
    assert _prepare([str(src), "--out", str(out), "--size", "32"]) == 0
    store = SliceStore.load(out, ["train", "valid", "test"])
    assert not store.legacy_partial
    for i in range(len(store)):
        t = store.target(store.labels[i], i)
        assert (t == PARTIAL).any() == bool(store.partial[i])
        assert ((t == 1) | (t == 2)).any() != bool(store.partial[i])
    # a manifest of an older prepare (no value 3): every liver pixel of a partial slice is liver-or-tumour
    man = json.loads((out / "manifest.json").read_text())
    man["label_values"] = {"0": "background", "1": "liver (liver-or-tumour where partial)", "2": "tumour"}
    (out / "manifest.json").write_text(json.dumps(man))
    old = SliceStore.load(out, ["train", "valid", "test"])
    assert old.legacy_partial
    lab = np.where(old.labels[0] == PARTIAL, 1, old.labels[0]).astype(np.uint8)
    if old.partial[0]:
        assert (old.target(lab, 0)[lab == 1] == PARTIAL).all()
