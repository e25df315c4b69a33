"""Training data: a prepared set (``liverseg prepare``) held in RAM, with augmentation.

:class:`SliceStore` decodes every slice of one split once (HU PNG, mask PNG,
partial flag) into numpy arrays: a prepared set is small (256 px: ~130 kB per
slice).  :class:`SegDataset` turns a store into ``(image, target)`` pairs for
fastai/PyTorch DataLoaders:

* ``image``: float32 (3, S, S) in [0, 1], the channels of
  :func:`liverseg_studio.core.preprocess.windowed_rgb` (the one windowing
  function), computed on the fly from HU so that window jitter and synthetic
  tumours work in HU;
* ``target``: int64 (S, S) with 0 background, 1 liver, 2 tumour and
  **3 = liver-or-tumour** on slices flagged ``partial`` (the marginal loss reads it).

Augmentation (training split only): synthetic tumours (HU-known slices),
window jitter (a random affine perturbation of the grey->HU mapping, larger
for sets whose mapping is an estimate), small rotations, zoom crops,
brightness/contrast; flips and 90-degree rotations only for sets prepared as
stored (``augment_for``: a set prepared with ``--orientation canonical`` keeps
one display orientation, so the network can use where the liver is).  Everything here is picklable and torch is
imported only inside methods, so DataLoader workers can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from liverseg_studio.core.preprocess import DEFAULT_SPEC, PreprocessSpec, windowed_rgb
from liverseg_studio.training.prepare import HU_OFFSET, PrepareError, load_manifest, resize_float, resize_labels
from liverseg_studio.training.synthetic import TumourConfig, paint_tumours

#: Target value for "liver or tumour" pixels of partially labelled slices.
PARTIAL = 3


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation switches and ranges (recorded in the model card)."""

    synthetic_tumours: float = 0.5  #: probability per HU-known slice
    flips: bool = True
    rot90: bool = True
    small_rotation_deg: float = 15.0
    small_rotation_p: float = 0.4
    brightness: float = 0.08  #: +- added to [0, 1] channels
    contrast: float = 0.15  #: x (1 +- c) around 0.5
    window_scale: float = 0.08  #: HU' = HU * (1 +- s) + (+- shift) for exact mappings
    window_shift_hu: float = 15.0
    estimated_factor: float = 2.5  #: jitter x this for estimated grey mappings
    #: zoom-in crops: with probability ``zoom_p`` a window of ``zoom_min``..1 of the
    #: side, placed around the liver, is resized to the full input.  CT arrives
    #: cropped too (LiTS case 117 is a 128^3 crop around the liver), so the
    #: model must not assume the whole abdomen fills the image.
    zoom_p: float = 0.4
    zoom_min: float = 0.4
    tumour: TumourConfig = field(default_factory=TumourConfig)

    def to_json(self) -> dict[str, Any]:
        return {
            "synthetic_tumours_p": self.synthetic_tumours,
            "synthetic_tumours": f"Hu et al. CVPR 2023 style: elastic ellipses {self.tumour.darker_hu[0]:g}-"
            f"{self.tumour.darker_hu[1]:g} HU darker than liver, radius {self.tumour.min_radius:g}-"
            f"{self.tumour.max_radius:g} px at 256, texture, optional rim, inside liver of slices with a documented "
            "HU mapping, labelled tumour",
            "flips": self.flips,
            "rot90": self.rot90,
            "small_rotation_deg": self.small_rotation_deg,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "zoom_crop": {"p": self.zoom_p, "min_side": self.zoom_min},
            "window_jitter": {
                "scale": self.window_scale,
                "shift_hu": self.window_shift_hu,
                "estimated_mapping_factor": self.estimated_factor,
            },
        }


#: ``liverseg train --augment`` choices -> (flips, rot90)
AUGMENT_CHOICES = {"canonical": (False, False), "dihedral": (True, True)}


def augment_for(choice: str, manifest: dict[str, Any]) -> dict[str, bool]:
    """``flips``/``rot90`` of :class:`AugmentConfig` for ``--augment`` (``auto``: canonical when the prepared
    set was turned to the canonical display, else the old recipes' dihedral turns)."""
    if choice == "auto":
        choice = "canonical" if (manifest.get("orientation") or {}).get("mode") == "canonical" else "dihedral"
    flips, rot90 = AUGMENT_CHOICES[choice]
    return {"flips": flips, "rot90": rot90}


def _decode(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return np.asarray(im)


@dataclass
class SliceStore:
    """Every slice of one split of a prepared set, decoded into RAM."""

    ids: list[str]
    entries: list[dict[str, Any]]
    hu: np.ndarray  #: int16 (N, S, S) HU (zeros where a slice has no HU)
    hu_known: np.ndarray  #: bool (N,): the slice has HU (else only ``rgb``)
    rgb: np.ndarray | None  #: uint8 (N, S, S, 3) for slices without HU, else None
    labels: np.ndarray  #: uint8 (N, S, S) 0/1/2
    partial: np.ndarray  #: bool (N,)
    synthetic_ok: np.ndarray  #: bool (N,)
    estimated: np.ndarray  #: bool (N,)
    size: int
    #: masks of an older prepared set store liver-or-tumour as 1 on ``partial`` slices (no value 3)
    legacy_partial: bool = False

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(
        cls,
        data_dir: Path,
        split: str | Sequence[str],
        size: int | None = None,
        *,
        limit: int | None = None,
    ) -> "SliceStore":
        data_dir = Path(data_dir)
        manifest = load_manifest(data_dir)
        splits = {split} if isinstance(split, str) else set(split)
        entries = [e for e in manifest["slices"] if e["split"] in splits]
        if limit is not None:
            entries = entries[:limit]
        size = int(size or manifest.get("size", 256))
        n = len(entries)
        hu = np.zeros((n, size, size), dtype=np.int16)
        labels = np.zeros((n, size, size), dtype=np.uint8)
        rgb: np.ndarray | None = None
        offset = int(manifest.get("hu_offset", HU_OFFSET))
        for i, e in enumerate(entries):
            m = _decode(data_dir / e["mask"])
            if m.ndim == 3:
                m = m[..., 0]
            labels[i] = resize_labels(m, size)
            if e.get("hu"):
                h = _decode(data_dir / e["hu"]).astype(np.float32) - offset
                hu[i] = np.clip(np.rint(resize_float(h, size)), -32767, 32767).astype(np.int16)
            else:
                if rgb is None:
                    rgb = np.zeros((n, size, size, 3), dtype=np.uint8)
                img = _decode(data_dir / e["image"])
                from PIL import Image

                rgb[i] = np.asarray(Image.fromarray(img).convert("RGB").resize((size, size), Image.BILINEAR))
        return cls(
            ids=[e["id"] for e in entries],
            entries=entries,
            hu=hu,
            hu_known=np.array([bool(e.get("hu")) for e in entries], dtype=bool),
            rgb=rgb,
            labels=labels,
            partial=np.array([bool(e.get("partial")) for e in entries], dtype=bool),
            synthetic_ok=np.array([bool(e.get("synthetic_tumours")) and bool(e.get("hu")) for e in entries], dtype=bool),
            estimated=np.array([bool((e.get("grey") or {}).get("estimated")) for e in entries], dtype=bool),
            size=size,
            legacy_partial=str(PARTIAL) not in (manifest.get("label_values") or {}),
        )

    def has_hu(self, i: int) -> bool:
        return bool(self.hu_known[i])

    def subset(self, idx: Sequence[int]) -> "SliceStore":
        """A store of the slices ``idx`` (copies)."""
        idx = np.asarray(idx, dtype=np.int64)
        return SliceStore(
            ids=[self.ids[i] for i in idx],
            entries=[self.entries[i] for i in idx],
            hu=self.hu[idx],
            hu_known=self.hu_known[idx],
            rgb=None if self.rgb is None else self.rgb[idx],
            labels=self.labels[idx],
            partial=self.partial[idx],
            synthetic_ok=self.synthetic_ok[idx],
            estimated=self.estimated[idx],
            size=self.size,
            legacy_partial=self.legacy_partial,
        )

    def target(self, labels: np.ndarray, i: int) -> np.ndarray:
        """Labels -> training target: 0/1/2 and :data:`PARTIAL` (liver-or-tumour) per pixel.

        Masks of an older prepared set (``legacy_partial``) stored liver-or-tumour as 1 on
        slices flagged ``partial``: there every liver pixel becomes :data:`PARTIAL`."""
        t = labels.astype(np.int64)
        if self.legacy_partial and self.partial[i]:
            t[t == 1] = PARTIAL
        return t

    def with_liver_prior(self, config: "LiverPrior") -> tuple["SliceStore", dict[str, Any]]:
        """A copy whose liver-or-tumour pixels of normal parenchyma intensity are liver (see :func:`liver_prior`)."""
        out = self.subset(range(len(self)))
        changed = total = 0
        for i in range(len(out)):
            if not out.has_hu(i) or out.estimated[i]:
                continue
            lab = out.target(out.labels[i], i).astype(np.uint8)
            new = liver_prior(out.hu[i].astype(np.float32), lab, config)
            total += int((lab == PARTIAL).sum())
            changed += int(((lab == PARTIAL) & (new == 1)).sum())
            out.labels[i] = new
        if out.legacy_partial:
            # labels now carry PARTIAL explicitly
            out.legacy_partial = False
            for i in range(len(out)):
                if out.partial[i] and (not out.has_hu(i) or out.estimated[i]):
                    lab = out.labels[i]
                    lab[lab == 1] = PARTIAL
        return out, {"partial_pixels": total, "made_liver": changed,
                     "share": round(changed / total, 4) if total else None}


@dataclass(frozen=True)
class LiverPrior:
    """Which liver-or-tumour pixels count as liver: those of normal parenchyma intensity.

    A merged mask says "liver or tumour"; most of it is parenchyma, whose HU is
    the bulk of the mask's histogram.  Pixels whose smoothed HU lies within
    ``below_hu`` under / ``above_hu`` over the mask's reference HU (the
    ``reference_quantile`` of the smoothed HU inside the mask) become liver; the
    rest, dilated by ``margin_px``, stays ambiguous (marginal loss).
    Hypodense tumours (the common kind; 20-40 HU under the parenchyma in
    3D-IRCADb) therefore stay ambiguous, never "liver".
    """

    sigma_px: float = 1.0
    reference_quantile: float = 0.6
    below_hu: float = 20.0
    above_hu: float = 60.0
    margin_px: int = 4
    min_pixels: int = 200  #: smaller merged masks stay ambiguous

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def liver_prior(hu: np.ndarray, labels: np.ndarray, config: LiverPrior = LiverPrior()) -> np.ndarray:
    """Labels with the confidently-parenchyma :data:`PARTIAL` pixels turned into liver (1); see :class:`LiverPrior`."""
    from scipy import ndimage as ndi

    labels = np.asarray(labels, dtype=np.uint8)
    part = labels == PARTIAL
    n = int(part.sum())
    if n < config.min_pixels:
        return labels
    sm = ndi.gaussian_filter(np.asarray(hu, dtype=np.float32), config.sigma_px)
    ref = float(np.quantile(sm[part], config.reference_quantile))
    outlier = part & ((sm < ref - config.below_hu) | (sm > ref + config.above_hu))
    if config.margin_px > 0 and outlier.any():
        outlier = ndi.binary_dilation(outlier, iterations=config.margin_px) & part
    out = labels.copy()
    out[part & ~outlier] = 1
    return out


def _rotate(img: np.ndarray, mask: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage as ndi

    img_r = ndi.rotate(img, deg, axes=(0, 1), reshape=False, order=1, mode="constant", cval=0.0)
    mask_r = ndi.rotate(mask, deg, axes=(0, 1), reshape=False, order=0, mode="constant", cval=0)
    return img_r, mask_r


def _zoom_crop(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, min_side: float
) -> tuple[np.ndarray, np.ndarray]:
    """A random square window of ``min_side``..1 of the side (around the liver when there is one), resized back."""
    from scipy import ndimage as ndi

    size = labels.shape[0]
    side = max(8, int(round(size * float(rng.uniform(min_side, 1.0)))))
    if side >= size:
        return image, labels
    ys, xs = np.nonzero(labels)
    if ys.size:
        k = int(rng.integers(ys.size))
        cy, cx = int(ys[k]), int(xs[k])
    else:
        cy, cx = int(rng.integers(size)), int(rng.integers(size))
    y0 = int(np.clip(cy - side // 2 + rng.integers(-side // 4, side // 4 + 1), 0, size - side))
    x0 = int(np.clip(cx - side // 2 + rng.integers(-side // 4, side // 4 + 1), 0, size - side))
    f = size / side
    crop = image[y0 : y0 + side, x0 : x0 + side]
    zoom = (f, f) + (1,) * (crop.ndim - 2)
    out = ndi.zoom(crop.astype(np.float32), zoom, order=1, grid_mode=True, mode="nearest")
    lab = ndi.zoom(labels[y0 : y0 + side, x0 : x0 + side], (f, f), order=0, grid_mode=True, mode="nearest")
    return out[:size, :size].astype(image.dtype, copy=False), lab[:size, :size]


def make_sample(
    store: SliceStore,
    i: int,
    rng: np.random.Generator | None,
    aug: AugmentConfig | None,
    spec: PreprocessSpec = DEFAULT_SPEC,
) -> tuple[np.ndarray, np.ndarray]:
    """One ``(image float32 (S, S, 3) in [0, 1], target int64 (S, S))``; no augmentation when ``aug`` is None."""
    labels = store.labels[i]
    if store.has_hu(i):
        hu = store.hu[i].astype(np.float32)
        if aug is not None and rng is not None:
            if store.synthetic_ok[i] and aug.synthetic_tumours > 0 and rng.random() < aug.synthetic_tumours:
                hu, labels, _ = paint_tumours(hu, labels, rng, aug.tumour)
            f = aug.estimated_factor if store.estimated[i] else 1.0
            scale = 1.0 + float(rng.uniform(-1, 1)) * aug.window_scale * f
            shift = float(rng.uniform(-1, 1)) * aug.window_shift_hu * f
            hu = hu * np.float32(scale) + np.float32(shift)
            if aug.zoom_p > 0 and rng.random() < aug.zoom_p:
                hu, labels = _zoom_crop(hu, labels, rng, aug.zoom_min)
        img = windowed_rgb(hu, spec, as_float=True)
    else:
        assert store.rgb is not None
        img = store.rgb[i].astype(np.float32) / 255.0
        if aug is not None and rng is not None and aug.zoom_p > 0 and rng.random() < aug.zoom_p:
            img, labels = _zoom_crop(img, labels, rng, aug.zoom_min)
    target = store.target(labels, i)
    if aug is not None and rng is not None:
        if aug.small_rotation_deg > 0 and rng.random() < aug.small_rotation_p:
            img, target = _rotate(img, target, float(rng.uniform(-aug.small_rotation_deg, aug.small_rotation_deg)))
        if aug.rot90:
            k = int(rng.integers(4))
            img, target = np.rot90(img, k, axes=(0, 1)), np.rot90(target, k, axes=(0, 1))
        if aug.flips and rng.random() < 0.5:
            img, target = img[:, ::-1], target[:, ::-1]
        if aug.brightness > 0 or aug.contrast > 0:
            c = 1.0 + float(rng.uniform(-aug.contrast, aug.contrast))
            b = float(rng.uniform(-aug.brightness, aug.brightness))
            img = np.clip((img - 0.5) * c + 0.5 + b, 0.0, 1.0)
    return np.ascontiguousarray(img, dtype=np.float32), np.ascontiguousarray(target, dtype=np.int64)


def random_crop(
    img: np.ndarray, target: np.ndarray, side: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A ``side`` x ``side`` window of a sample, centred near a random foreground pixel when there is one."""
    h, w = target.shape
    ys, xs = np.nonzero(target)
    if ys.size and rng.random() < 0.8:
        k = int(rng.integers(ys.size))
        cy, cx = int(ys[k]), int(xs[k])
    else:
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0 = int(np.clip(cy - side // 2, 0, h - side))
    x0 = int(np.clip(cx - side // 2, 0, w - side))
    return (np.ascontiguousarray(img[y0 : y0 + side, x0 : x0 + side]),
            np.ascontiguousarray(target[y0 : y0 + side, x0 : x0 + side]))


class SegDataset:
    """Map-style dataset of ``(TensorImage (3, S, S), TensorMask (S, S))`` for fastai.

    ``aug=None`` gives the plain, deterministic validation view.  Random
    numbers come from torch's per-worker seed, so workers differ and a run is
    reproducible with ``torch.manual_seed``.
    """

    def __init__(
        self,
        store: SliceStore,
        aug: AugmentConfig | None = None,
        spec: PreprocessSpec = DEFAULT_SPEC,
        *,
        index: Sequence[int] | None = None,
        crop: int | None = None,
    ) -> None:
        self.store, self.aug, self.spec = store, aug, spec
        #: item -> slice of the store (repeats weight slices up); None = every slice once
        self.index = None if index is None else [int(i) for i in index]
        #: random square crops of this side from augmented samples (fully convolutional training, cheaper)
        self.crop = crop if crop and aug is not None and crop < store.size else None
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if aug is None else None

    def __len__(self) -> int:
        return len(self.store) if self.index is None else len(self.index)

    def new_empty(self) -> "SegDataset":
        """An empty dataset of the same kind (fastai's ``learn.export`` keeps no data)."""
        return SegDataset(self.store.subset([]), self.aug, self.spec)

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index is not None:
            i = self.index[i]
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        rng = None
        if self.aug is not None:
            import torch

            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        out = make_sample(self.store, i, rng, self.aug, self.spec)
        if self.crop is not None and rng is not None:
            out = random_crop(out[0], out[1], self.crop, rng)
        if self._cache is not None:
            self._cache[i] = out
        return out

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        import torch
        from fastai.torch_core import TensorImage, TensorMask

        if i < 0 or i >= len(self):
            raise IndexError(i)
        img, target = self.sample(int(i))
        return TensorImage(torch.from_numpy(img).permute(2, 0, 1).contiguous()), TensorMask(torch.from_numpy(target))


def check_store(store: SliceStore, what: str) -> None:
    if len(store) == 0:
        raise PrepareError(f"the prepared set has no {what} slices (check --split when preparing)")
