"""``liverseg prepare``: turn CT sources into a patient-split 2D training set.

Sources
-------
* a **LiTS-layout folder**: ``volume-N.nii[.gz]`` + ``segmentation-N.nii[.gz]``
  (HU, labels 0/1/2), one patient per ``N``;
* **volume + label pairs** readable by the loaders (``--pair IMAGE LABELS``);
* the **2D slice sets** of the shared data folder (``manifest.csv`` with a
  ``set`` column; each set is described by ``training/sets/<set>.json``: grey
  to HU mapping, label meaning, licence, orientation).

Output (``DATA_DIR``)
---------------------
* ``images/<set>/<id>.jpg``: the paper's 3-channel windowed image, made by
  :func:`liverseg_studio.core.preprocess.windowed_rgb` (the one function);
* ``masks/<set>/<id>.png``: 0 background, 1 liver (liver-or-tumour on slices
  flagged ``partial``), 2 tumour; nearest-neighbour resized;
* ``hu/<set>/<id>.png``: 16-bit PNG of ``HU + 1024`` (when the HU mapping is
  known or estimated) so that training can re-window on the fly (window
  jitter, synthetic tumours in HU);
* ``manifest.json``: every slice's id, set, source, patient, split, labels
  present, partial flag, grey mapping, licence and relative paths (``image``,
  ``mask``, ``hu``, ``split``).

The split is by patient (groups of patients known to be the same person stay
together), stratified per set and seeded, so it is deterministic: re-running
on the same output rewrites the same files and never duplicates.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.core.preprocess import DEFAULT_SPEC, PreprocessSpec, windowed_rgb

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "liverseg-prepared/1"
HU_OFFSET = 1024  #: ``hu/*.png`` stores ``HU + HU_OFFSET`` as uint16
SPLITS = ("train", "valid", "test")
#: Mask value of a liver-or-tumour pixel (merged by the source; a partial label).
PARTIAL_VALUE = 3

#: Inputs that must never become training data (the held-out tumour test).
HELD_OUT_MARKERS = ("liver_ct_segmentation_package", "liver-ct-segmentation-package")


class PrepareError(LiversegError):
    """Bad input for ``liverseg prepare``."""


# -- set descriptions ------------------------------------------------------------
@dataclass(frozen=True)
class SetSpec:
    """How to read one source set (``training/sets/<name>.json``)."""

    name: str
    grey_kind: str  #: "linear" (8-bit grey -> HU through hu_range) or "hu"
    hu_range: tuple[float, float] | None
    estimated: bool
    grey_note: str
    partial: bool
    source_values: dict[int, int]
    licence: str
    non_commercial: bool
    orientation: str
    synthetic_tumours: bool
    same_patient: dict[str, str] = field(default_factory=dict)
    description: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SetSpec":
        grey = data.get("grey", {})
        labels = data.get("labels", {})
        hr = grey.get("hu_range")
        return cls(
            name=str(data["set"]),
            grey_kind=str(grey.get("kind", "linear")),
            hu_range=None if hr is None else (float(hr[0]), float(hr[1])),
            estimated=bool(grey.get("estimated", False)),
            grey_note=str(grey.get("note", "")),
            partial=bool(labels.get("partial", False)),
            source_values={int(k): int(v) for k, v in labels.get("source_values", {"0": 0, "1": 1, "2": 2}).items()},
            licence=str(data.get("licence", "unknown")),
            non_commercial=bool(data.get("non_commercial", True)),
            orientation=str(data.get("orientation", "")),
            synthetic_tumours=bool(data.get("synthetic_tumours", False)),
            same_patient={str(k): str(v) for k, v in data.get("same_patient", {}).items()},
            description=str(data.get("description", "")),
        )

    def grey_json(self) -> dict[str, Any]:
        return {
            "kind": self.grey_kind,
            "hu_range": list(self.hu_range) if self.hu_range else None,
            "estimated": self.estimated,
            "note": self.grey_note,
        }


def builtin_sets() -> dict[str, SetSpec]:
    """The set descriptions shipped in ``liverseg_studio/training/sets``."""
    out: dict[str, SetSpec] = {}
    folder = resources.files("liverseg_studio.training") / "sets"
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            spec = SetSpec.from_json(json.loads(entry.read_text(encoding="utf-8")))
            out[spec.name] = spec
    return out


# -- slices ---------------------------------------------------------------------------
@dataclass
class SliceSource:
    """One 2D training slice before it is written: how to get its HU and labels."""

    id: str  #: unique, file-name safe: "<set>/<stem>"
    set: str
    patient: str
    source: str
    licence: str
    partial: bool
    grey: dict[str, Any]
    synthetic_tumours: bool
    #: returns (HU float32 (y, x) or None, 8-bit grey (y, x) or None, labels uint8 (y, x) in 0/1/2)
    read: Callable[[], tuple[np.ndarray | None, np.ndarray | None, np.ndarray]]
    has_liver: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: one id per human across sets (the shared data's ``person`` column); the split unit.  "" = the patient.
    person: str = ""
    #: True when the labels carry partial pixels as value 3 (PARTIAL) themselves; False: the old convention,
    #: every liver pixel of a ``partial`` slice is liver-or-tumour.
    per_pixel_partial: bool = False

    @property
    def person_key(self) -> str:
        return self.person or self.patient


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _map_labels(raw: np.ndarray, values: dict[int, int], where: str) -> np.ndarray:
    raw = np.asarray(raw)
    out = np.zeros(raw.shape, dtype=np.uint8)
    present = np.unique(raw)
    unknown = [int(v) for v in present if int(v) not in values]
    if unknown:
        raise PrepareError(f"{where}: unexpected label values {unknown} (expected {sorted(values)})")
    for src, dst in values.items():
        out[raw == src] = dst
    return out


def _read_grey(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I"):
                raise PrepareError(f"{path}: expected an 8-bit image, got mode {im.mode}")
            return np.asarray(im.convert("L"))
    except OSError as exc:
        raise PrepareError(f"{path}: cannot read image ({exc})") from None


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
    except OSError as exc:
        raise PrepareError(f"{path}: cannot read mask ({exc})") from None
    return arr[..., 0] if arr.ndim == 3 else arr  # RGB / RGBA masks: the first channel


def _check_not_held_out(path: Path) -> None:
    text = str(Path(path).resolve())
    if any(m in text for m in HELD_OUT_MARKERS):
        raise PrepareError(
            f"{path}: this is LiTS case 117 from liver-ct-segmentation-package, the held-out tumour test; "
            "it must never be used for training"
        )


def slices_from_shared_manifest(folder: Path, sets: dict[str, SetSpec]) -> list[SliceSource]:
    """Slices of a shared-data folder (``manifest.csv`` with set/image/mask/patient columns)."""
    csv_path = folder / "manifest.csv"
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    need = {"set", "image", "mask", "patient"}
    if rows and not need.issubset(rows[0]):
        raise PrepareError(f"{csv_path}: needs the columns {sorted(need)}")
    out: list[SliceSource] = []
    for row in rows:
        name = row["set"]
        spec = sets.get(name)
        if spec is None:
            raise PrepareError(
                f"{csv_path}: no description for set {name!r} (add training/sets/{name}.json: grey mapping, labels, licence)"
            )
        img, msk = folder / row["image"], folder / row["mask"]
        _check_not_held_out(img)

        def read(img: Path = img, msk: Path = msk, spec: SetSpec = spec) -> tuple[Any, Any, np.ndarray]:
            grey = _read_grey(img)
            labels = _map_labels(_read_mask(msk), spec.source_values, str(msk))
            if labels.shape != grey.shape:
                raise PrepareError(f"{msk}: mask shape {labels.shape} differs from image {grey.shape}")
            return None, grey, labels

        out.append(
            SliceSource(
                id=f"{_safe(name)}/{_safe(Path(row['image']).stem)}",
                set=name,
                patient=row["patient"] if ":" in row["patient"] else f"{name}:{row['patient']}",
                source=f"{row.get('source', '') or folder}: {row['image']}",
                licence=row.get("licence") or spec.licence,
                partial=spec.partial,
                grey=spec.grey_json(),
                synthetic_tumours=spec.synthetic_tumours and spec.hu_range is not None,
                read=read,
                person=(row.get("person") or "").strip(),
                per_pixel_partial=PARTIAL_VALUE in spec.source_values.values(),
            )
        )
    return out


_LITS_RE = re.compile(r"^volume-(\d+)\.nii(\.gz)?$")


def _load_nifti_zyx(path: Path) -> np.ndarray:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds
        raise PrepareError(f"{path}: cannot read NIfTI ({exc})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise PrepareError(f"{path}: expected a 3D volume, got shape {data.shape}")
    return np.asarray(data).T  # (x, y, z) -> [z, y, x]


class _OneVolumeCache:
    """Holds the HU and labels of the one volume being written (slices come in volume order)."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.hu: np.ndarray | None = None
        self.labels: np.ndarray | None = None

    def get(
        self, key: str, hu: Callable[[], np.ndarray], labels: Callable[[], np.ndarray], spec: SetSpec
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.key != key:
            self.key = self.hu = self.labels = None
            h = np.asarray(hu(), dtype=np.float32)
            lab = _map_labels(np.rint(labels()).astype(np.int64), spec.source_values, key)
            if h.shape != lab.shape:
                raise PrepareError(f"{key}: labels shape {lab.shape} differs from volume {h.shape}")
            self.key, self.hu, self.labels = key, h, lab
        assert self.hu is not None and self.labels is not None
        return self.hu, self.labels


_VOLUME_CACHE = _OneVolumeCache()


def _volume_slices(
    set_name: str,
    patient: str,
    source: str,
    licence: str,
    hu: Callable[[], np.ndarray],
    labels: Callable[[], np.ndarray],
    spec: SetSpec,
    id_stem: str,
) -> Iterator[SliceSource]:
    """One SliceSource per axial slice of a volume.

    Only the labels are read now (to know which slices hold liver); the volume
    is read when its first slice is written and kept until the next volume.
    """
    lab = np.rint(np.asarray(labels())).astype(np.int64)
    n = lab.shape[0]
    liver_values = [src for src, dst in spec.source_values.items() if dst >= 1]
    liver_z = np.isin(lab, liver_values).reshape(n, -1).any(axis=1)
    del lab
    for z in range(n):

        def read(z: int = z) -> tuple[Any, Any, np.ndarray]:
            hh, ll = _VOLUME_CACHE.get(source, hu, labels, spec)
            return hh[z], None, ll[z]

        yield SliceSource(
            id=f"{_safe(set_name)}/{_safe(id_stem)}_z{z:04d}",
            set=set_name,
            patient=patient,
            source=f"{source} slice {z}",
            licence=licence,
            partial=spec.partial,
            grey=spec.grey_json(),
            synthetic_tumours=spec.synthetic_tumours,
            read=read,
            has_liver=bool(liver_z[z]),
        )


def slices_from_lits_folder(folder: Path, sets: dict[str, SetSpec]) -> list[SliceSource]:
    """Slices of a LiTS-layout folder (``volume-N.nii[.gz]`` + ``segmentation-N.nii[.gz]``)."""
    spec = sets["lits-nifti"]
    out: list[SliceSource] = []
    found = sorted(
        ((int(m.group(1)), p) for p in folder.iterdir() if (m := _LITS_RE.match(p.name))), key=lambda t: t[0]
    )
    for n, vol in found:
        _check_not_held_out(vol)
        seg = next((folder / f"segmentation-{n}{ext}" for ext in (".nii", ".nii.gz") if (folder / f"segmentation-{n}{ext}").exists()), None)
        if seg is None:
            raise PrepareError(f"{vol}: no segmentation-{n}.nii[.gz] beside it")
        out.extend(
            _volume_slices(
                spec.name,
                f"lits:{n}",
                str(vol),
                spec.licence,
                lambda vol=vol: _load_nifti_zyx(vol),
                lambda seg=seg: _load_nifti_zyx(seg),
                spec,
                f"{n}",
            )
        )
    return out


def slices_from_pair(image: Path, labels: Path, licence: str) -> list[SliceSource]:
    """Slices of a volume + label volume read through the loaders (HU volumes only)."""
    from liverseg_studio.core.volume import Intensity
    from liverseg_studio.plugins.manager import get_plugin_manager
    from liverseg_studio.plugins.registry import LoadOptions

    _check_not_held_out(image)
    _check_not_held_out(labels)
    pm = get_plugin_manager()
    vol = pm.loaders.load(image, LoadOptions())
    lab = pm.loaders.load(labels, LoadOptions())
    if vol.intensity is Intensity.WINDOWED_RGB:
        raise PrepareError(f"{image}: already a windowed 3-channel image; prepare needs HU or 8-bit grey")
    spec = SetSpec(
        name="custom",
        grey_kind="hu" if vol.intensity is Intensity.HU else "linear",
        hu_range=vol.hu_range,
        estimated=False,
        grey_note=f"read by the {vol.loader} loader as {vol.intensity.value}",
        partial=False,
        source_values={0: 0, 1: 1, 2: 2},
        licence=licence,
        non_commercial=True,
        orientation="as loaded ([z, y, x])",
        synthetic_tumours=True,
    )
    stem = re.sub(r"(\.nii)?(\.gz)?$", "", Path(image).name)
    if lab.shape != vol.shape:
        raise PrepareError(f"{labels}: label volume shape {lab.shape} differs from {image} {vol.shape}")
    return list(
        _volume_slices(
            "custom",
            f"custom:{_safe(stem)}",
            str(image),
            licence,
            lambda: np.stack([vol.hu_slice(i) for i in range(vol.n_slices)]),
            lambda: np.asarray(lab.array),
            spec,
            stem,
        )
    )


def collect_sources(
    srcs: Sequence[Path], pairs: Sequence[tuple[Path, Path]] = (), licence: str = "unknown (user data)"
) -> tuple[list[SliceSource], dict[str, SetSpec]]:
    """Every slice of every source (shared-data folders, LiTS folders, pairs)."""
    sets = builtin_sets()
    out: list[SliceSource] = []
    for src in srcs:
        src = Path(src)
        if not src.exists():
            raise PrepareError(f"{src}: no such file or folder")
        if src.is_dir() and (src / "manifest.csv").is_file():
            out.extend(slices_from_shared_manifest(src, sets))
        elif src.is_dir() and any(_LITS_RE.match(p.name) for p in src.iterdir()):
            out.extend(slices_from_lits_folder(src, sets))
        else:
            raise PrepareError(
                f"{src}: not a LiTS-layout folder (volume-N.nii + segmentation-N.nii) nor a slice-set folder "
                "with manifest.csv; give a volume and its labels with --pair IMAGE LABELS"
            )
    for img, lab in pairs:
        out.extend(slices_from_pair(Path(img), Path(lab), licence))
    ids = [s.id for s in out]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise PrepareError(f"two sources give the same slice ids (e.g. {dup}); give each source once")
    return out, sets


# -- splitting ---------------------------------------------------------------------------
def parse_split(text: str) -> tuple[float, float, float]:
    """``"80,10,10"`` -> fractions (0.8, 0.1, 0.1)."""
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        raise PrepareError(f"--split expects TRAIN,VALID,TEST percentages, got {text!r}") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0 or parts[0] <= 0:
        raise PrepareError(f"--split expects three non-negative percentages with TRAIN > 0, got {text!r}")
    s = sum(parts)
    return (parts[0] / s, parts[1] / s, parts[2] / s)


def parse_assign(items: Sequence[str]) -> dict[str, str]:
    """``["lits-msd:10049=test", ...]`` -> {person: split}."""
    out: dict[str, str] = {}
    for item in items:
        person, sep, split = item.rpartition("=")
        if not sep or not person or split not in SPLITS:
            raise PrepareError(f"--assign expects PERSON=SPLIT with SPLIT one of {', '.join(SPLITS)}, got {item!r}")
        out[person] = split
    return out


def patient_groups(patients: Iterable[str], same: dict[str, str]) -> dict[str, str]:
    """Map each patient to a group key; patients declared the same person share one key."""
    return _union_groups(patients, same.items())


def _union_groups(nodes: Iterable[str], pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Node -> group key (the smallest node of its group); pairs naming an absent node are ignored."""
    present = list(dict.fromkeys(nodes))
    parent = {p: p for p in present}

    def find(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in pairs:
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                lo, hi = sorted((ra, rb))
                parent[hi] = lo
    return {p: find(p) for p in present}


def assign_splits(
    slices: Sequence[SliceSource],
    fractions: tuple[float, float, float],
    seed: int,
    same: dict[str, str],
    forced: dict[str, str] | None = None,
) -> dict[str, str]:
    """Patient -> split, stratified per set, deterministic for a seed.

    The unit is the person (``SliceSource.person``, else the patient): every
    patient id of one human lands in the same split.  ``forced`` maps a person
    or patient id to a split (e.g. people held out as a test set); their groups
    are taken out before the random cut.

    Each set's patient groups are shuffled with a seed derived from ``seed`` and
    the set name, then cut by the fractions; a set with at least three groups
    gets at least one validation and one test group (when those fractions are
    non-zero), a set with two groups one train and one validation group, so the
    validation split holds patients of several sets.  A group spanning several
    sets belongs to the set holding most of its slices.
    """
    person_links = {s.patient: "person=" + s.person for s in slices if s.person}
    group_of = _union_groups(
        [s.patient for s in slices] + list(person_links.values()), list(same.items()) + list(person_links.items())
    )
    counts: dict[str, dict[str, int]] = {}
    for s in slices:
        g = group_of[s.patient]
        counts.setdefault(g, {}).setdefault(s.set, 0)
        counts[g][s.set] += 1
    split_of_group: dict[str, str] = {}
    for ident, split in (forced or {}).items():
        if split not in SPLITS:
            raise PrepareError(f"--assign {ident}={split}: the split must be one of {', '.join(SPLITS)}")
        key = ident if ident in group_of else "person=" + ident
        if key not in group_of:
            raise PrepareError(f"--assign {ident}={split}: no patient or person {ident!r} in the sources")
        g = group_of[key]
        if split_of_group.get(g, split) != split:
            raise PrepareError(f"--assign {ident}={split}: that person is already assigned to {split_of_group[g]}")
        split_of_group[g] = split
    by_set: dict[str, list[str]] = {}
    for g, c in counts.items():
        if g in split_of_group:
            continue
        home = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        by_set.setdefault(home, []).append(g)
    _, fv, ft = fractions
    for set_name in sorted(by_set):
        groups = sorted(by_set[set_name])
        rng = np.random.default_rng([seed, zlib.crc32(set_name.encode())])
        order = [groups[i] for i in rng.permutation(len(groups))]
        n = len(order)
        n_valid = int(round(n * fv))
        n_test = int(round(n * ft))
        if n >= 3:
            n_valid = max(n_valid, 1) if fv > 0 else 0
            n_test = max(n_test, 1) if ft > 0 else 0
        elif n == 2:
            n_valid, n_test = (1, 0) if fv > 0 else ((0, 1) if ft > 0 else (0, 0))
        else:
            n_valid = n_test = 0
        while n - n_valid - n_test < 1 and (n_valid or n_test):
            if n_test >= n_valid and n_test:
                n_test -= 1
            else:
                n_valid -= 1
        for i, g in enumerate(order):
            split_of_group[g] = "valid" if i < n_valid else ("test" if i < n_valid + n_test else "train")
    return {p: split_of_group[g] for p, g in group_of.items() if g in split_of_group and not p.startswith("person=")}


# -- writing ----------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _encode(array: np.ndarray, fmt: str, **kw: Any) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    if array.dtype == np.uint16:
        im = Image.fromarray(array)  # mode I;16
    else:
        im = Image.fromarray(array)
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def resize_float(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a float image to (size, size) (PIL 'F' mode)."""
    from PIL import Image

    img = np.asarray(img, dtype=np.float32)
    if img.shape == (size, size):
        return img.copy()
    return np.asarray(Image.fromarray(img, mode="F").resize((size, size), Image.BILINEAR), dtype=np.float32)


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a uint8 label image to (size, size)."""
    from PIL import Image

    labels = np.asarray(labels, dtype=np.uint8)
    if labels.shape == (size, size):
        return labels.copy()
    return np.asarray(Image.fromarray(labels).resize((size, size), Image.NEAREST), dtype=np.uint8)


def grey_to_hu(grey: np.ndarray, hu_range: tuple[float, float]) -> np.ndarray:
    lo, hi = hu_range
    return np.asarray(grey, dtype=np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)


def select_empty(slices: list[SliceSource], max_empty_ratio: float, seed: int) -> list[SliceSource]:
    """Keep every slice with liver and at most ``max_empty_ratio`` x that many slices
    without liver per patient (seeded choice).  Slices whose liver content is not
    known before reading (2D sets) are kept."""
    if max_empty_ratio < 0:
        return slices
    by_patient: dict[str, list[int]] = {}
    for i, s in enumerate(slices):
        if s.has_liver is False:
            by_patient.setdefault(s.patient, []).append(i)
    drop: set[int] = set()
    for patient, idx in sorted(by_patient.items()):
        n_liver = sum(1 for s in slices if s.patient == patient and s.has_liver)
        keep = int(np.floor(max_empty_ratio * n_liver))
        if len(idx) > keep:
            rng = np.random.default_rng([seed, zlib.crc32(patient.encode())])
            chosen = set(rng.choice(len(idx), size=keep, replace=False).tolist()) if keep else set()
            drop.update(i for j, i in enumerate(idx) if j not in chosen)
    return [s for i, s in enumerate(slices) if i not in drop]


class _Progress:
    """A small stderr progress line (no dependency)."""

    def __init__(self, total: int, label: str, stream: Any = None) -> None:
        self.total, self.label, self.stream = total, label, stream or sys.stderr
        self.t0 = time.monotonic()
        self.last = -1.0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        frac = done / max(self.total, 1)
        bar = "#" * int(30 * frac)
        el = now - self.t0
        eta = el / frac - el if frac > 0 else 0.0
        line = f"{self.label} [{bar:<30s}] {done}/{self.total} {el:5.0f}s eta {eta:4.0f}s"
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        if done >= self.total and self.tty:
            self.stream.write("\n")
        self.stream.flush()


@dataclass
class PrepareResult:
    out: Path
    n_slices: int
    counts: dict[str, dict[str, int]]  #: split -> set -> slices
    patients: dict[str, dict[str, int]]  #: split -> set -> patients
    written: int
    skipped: int
    refused: dict[str, int] = field(default_factory=dict)  #: set -> slices refused (orientation ambiguous)


def prepare(
    srcs: Sequence[Path],
    out: Path,
    *,
    size: int = 256,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    max_empty_ratio: float = 0.25,
    pairs: Sequence[tuple[Path, Path]] = (),
    licence: str = "unknown (user data)",
    assign: dict[str, str] | None = None,
    spec: PreprocessSpec = DEFAULT_SPEC,
    jpeg_quality: int = 95,
    progress: Callable[[int, int], None] | None = None,
    orientation: str = "as-stored",
) -> PrepareResult:
    """Prepare ``srcs`` into ``out`` (see the module docstring)."""
    out = Path(out)
    if size < 16 or size > 2048:
        raise PrepareError(f"--size must be in 16..2048, got {size}")
    old: dict[str, Any] | None = None
    if out.exists():
        if not out.is_dir():
            raise PrepareError(f"{out}: exists and is not a folder")
        mpath = out / MANIFEST_NAME
        if mpath.is_file():
            try:
                old = json.loads(mpath.read_text(encoding="utf-8"))
            except ValueError:
                old = None
            if not old or old.get("format") != MANIFEST_FORMAT:
                raise PrepareError(f"{out}: holds a manifest.json that liverseg prepare did not write; choose another --out")
        elif any(out.iterdir()):
            raise PrepareError(f"{out}: folder is not empty and holds no prepared set; choose another --out")
    slices, sets = collect_sources(srcs, pairs, licence)
    if not slices:
        raise PrepareError("no slices found in the sources")
    slices = select_empty(slices, max_empty_ratio, seed)
    same: dict[str, str] = {}
    for s in sets.values():
        same.update(s.same_patient)
    split_of = assign_splits(slices, split, seed, same, assign)
    params = {"size": size, "spec": spec.to_json(), "jpeg_quality": jpeg_quality, "hu_offset": HU_OFFSET}
    if orientation != "as-stored":  # training/orientation.py: "canonical" turns every slice to one display
        params["orientation"] = orientation
    params_key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    old_entries: dict[str, dict[str, Any]] = {}
    if old and old.get("params_key") == params_key:
        old_entries = {e["id"]: e for e in old.get("slices", [])}

    entries: list[dict[str, Any]] = []
    written = skipped = 0
    refused: dict[str, int] = {}
    total = len(slices)
    for k, s in enumerate(slices):
        rel_img = f"images/{s.id}.jpg"
        rel_msk = f"masks/{s.id}.png"
        rel_hu = f"hu/{s.id}.png"
        prev = old_entries.get(s.id)
        if (
            prev is not None
            and prev.get("source") == s.source
            and prev.get("grey") == s.grey
            and all((out / p).is_file() for p in (prev["image"], prev["mask"]) + ((prev["hu"],) if prev.get("hu") else ()))
        ):
            entry = dict(prev)
            skipped += 1
        else:
            hu, grey, labels = s.read()
            if hu is None:
                hr = s.grey.get("hu_range")
                hu = grey_to_hu(grey, tuple(hr)) if hr else None
            turned = None
            if orientation == "canonical":
                from liverseg_studio.training.orientation import canonicalise

                hu, labels, turned = canonicalise(s.set, hu, labels, Path(s.id).name)
                if not turned.ok:
                    refused[s.set] = refused.get(s.set, 0) + 1
                    continue
            labels_r = resize_labels(labels, size)
            if hu is not None:
                hu_r = resize_float(hu, size)
                rgb = windowed_rgb(hu_r, spec)
                hu16 = np.clip(np.rint(hu_r + HU_OFFSET), 0, 65535).astype(np.uint16)
                _atomic_write_bytes(out / rel_hu, _encode(hu16, "PNG"))
            else:  # no HU mapping at all: the model can only see the grey through the 8-bit mapping 0..255
                raise PrepareError(f"{s.source}: set {s.set} has no grey->HU mapping; add hu_range to its description")
            _atomic_write_bytes(out / rel_img, _encode(rgb, "JPEG", quality=jpeg_quality))
            _atomic_write_bytes(out / rel_msk, _encode(labels_r, "PNG"))
            present = sorted(int(v) for v in np.unique(labels_r))
            entry = {
                "id": s.id,
                "set": s.set,
                "source": s.source,
                "patient": s.patient,
                "licence": s.licence,
                "partial": bool(PARTIAL_VALUE in present) if s.per_pixel_partial else s.partial,
                "person": s.person_key,
                "grey": s.grey,
                "synthetic_tumours": s.synthetic_tumours,
                "labels_present": present,
                "has_liver": bool(any(v >= 1 for v in present)),
                "has_tumour": bool(2 in present),
                "liver_pixels": int((labels_r >= 1).sum()),
                "image": rel_img,
                "mask": rel_msk,
                "hu": rel_hu if hu is not None else None,
            }
            if turned is not None:
                entry["orientation"] = turned.to_json()
            written += 1
        entry["split"] = split_of[s.patient]
        entries.append(entry)
        if progress is not None:
            progress(k + 1, total)

    # remove files of slices that an earlier run wrote and this one no longer has
    ids_now = {e["id"] for e in entries}
    if old:
        for e in old.get("slices", []):
            if e["id"] not in ids_now:
                for key in ("image", "mask", "hu"):
                    if e.get(key):
                        p = out / e[key]
                        if p.is_file():
                            p.unlink()

    counts: dict[str, dict[str, int]] = {sp: {} for sp in SPLITS}
    patients: dict[str, dict[str, set[str]]] = {sp: {} for sp in SPLITS}
    for e in entries:
        counts[e["split"]][e["set"]] = counts[e["split"]].get(e["set"], 0) + 1
        patients[e["split"]].setdefault(e["set"], set()).add(e["patient"])
    used_sets = sorted({e["set"] for e in entries})
    manifest = {
        "format": MANIFEST_FORMAT,
        "created_by": "liverseg prepare",
        "size": size,
        "split_fractions": list(split),
        "seed": seed,
        "max_empty_ratio": max_empty_ratio,
        "preprocessing": spec.to_json(),
        "hu_offset": HU_OFFSET,
        "params_key": params_key,
        "label_values": {"0": "background", "1": "liver", "2": "tumour", "3": "liver-or-tumour merged (partial)"},
        "assigned": dict(assign or {}),
        "orientation": {"mode": orientation, "refused": refused},
        "sets": {
            n: {
                "description": sets[n].description if n in sets else "",
                "grey": sets[n].grey_json() if n in sets else None,
                "partial": sets[n].partial if n in sets else False,
                "licence": sets[n].licence if n in sets else licence,
                "non_commercial": sets[n].non_commercial if n in sets else True,
                "orientation": sets[n].orientation if n in sets else "",
            }
            for n in used_sets
        },
        "counts": counts,
        "patients": {sp: {k: len(v) for k, v in d.items()} for sp, d in patients.items()},
        "slices": entries,
    }
    _atomic_write_bytes(out / MANIFEST_NAME, json.dumps(manifest, indent=1).encode("utf-8"))
    return PrepareResult(
        out=out,
        n_slices=len(entries),
        counts=counts,
        patients={sp: {k: len(v) for k, v in d.items()} for sp, d in patients.items()},
        written=written,
        skipped=skipped,
        refused=refused,
    )


def load_manifest(data_dir: Path) -> dict[str, Any]:
    """Read ``DATA_DIR/manifest.json`` written by :func:`prepare`."""
    path = Path(data_dir) / MANIFEST_NAME
    if not path.is_file():
        raise PrepareError(f"{data_dir}: no manifest.json (run liverseg prepare first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PrepareError(f"{path}: not valid JSON ({exc})") from None
    if data.get("format") != MANIFEST_FORMAT:
        raise PrepareError(f"{path}: not a manifest written by liverseg prepare")
    return data
