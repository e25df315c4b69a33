"""One canonical orientation for everything the network sees, and the way back.

The network sees axial slices in the standard **radiological display**: image
column 0 is the patient's right (columns run towards the patient's left, so
the liver lies on the image's left half), row 0 is anterior (rows run towards
posterior, the spine at the bottom), and slices run from inferior to superior.
In nibabel's voxel-axis codes of the (x, y, z) index axes that is
``("L", "P", "S")`` (:data:`CANONICAL_AXCODES`); an axial DICOM series stored
as usual (ImageOrientationPatient 1,0,0 / 0,1,0) is already in it.

:func:`reorientation` finds, from a volume's affine, the axis permutation and
flips that bring its ``[z, y, x]`` array into that display (nibabel's
``io_orientation`` / ``ornt_transform``: the closest axes, so an oblique
affine maps to its nearest canonical axes), and :class:`Reorientation` applies
them both ways, so every output returns to the input's exact storage order.
Whatever the order of the stored axes (a NIfTI stored with the slice axis
first, a sagittal acquisition), the slices given to the network are the
volume's axial planes.

Volumes without a real orientation (plain 2D images, MRC files: an identity or
scale-only affine that says nothing about the patient) are *assumed* to be in
the radiological display already; :attr:`Reorientation.assumed` says so, and
``assume`` (the CLI's ``--orientation``) states another display for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from liverseg_studio.core.slices import LazyArray, SliceSource

#: nibabel axis codes of the (x, y, z) voxel index axes of the canonical display.
CANONICAL_AXCODES: tuple[str, str, str] = ("L", "P", "S")

#: Loaders whose affine describes the patient (NIfTI, DICOM); others' volumes are assumed to be displayed
#: radiologically.  A third-party loader says so with ``meta["orientation_known"] = True``.
ORIENTED_LOADERS = frozenset({"nifti", "dicom", "dicom-series", "dicom-multiframe", "dicom-study"})

#: Displays a user may state for an image without an affine (``--orientation``): how the stored image
#: differs from the radiological display.
ASSUMED_DISPLAYS: Mapping[str, tuple[bool, bool, bool]] = {
    # name: (transpose y/x, flip rows, flip columns), applied in that order
    "radiological": (False, False, False),
    "neurological": (False, False, True),  # patient right on the image's right
    "flipped-ud": (False, True, False),  # upside down (posterior at the top)
    "rotated-180": (False, True, True),
}


@dataclass(frozen=True)
class Reorientation:
    """How a stored ``[z, y, x]`` array maps to the canonical display, and back.

    ``perm[k]`` is the stored array axis that becomes canonical axis ``k``
    (array order z, y, x); ``flip[k]`` reverses canonical axis ``k`` after the
    permutation.
    """

    perm: tuple[int, int, int] = (0, 1, 2)
    flip: tuple[bool, bool, bool] = (False, False, False)
    stored_shape: tuple[int, int, int] = (1, 1, 1)
    #: True when the orientation was assumed (no affine describing the patient), not read.
    assumed: bool = False
    #: Axis codes of the stored (x, y, z) index axes (``"?"`` where assumed).
    stored_axcodes: tuple[str, str, str] = ("?", "?", "?")

    @property
    def is_identity(self) -> bool:
        return self.perm == (0, 1, 2) and not any(self.flip)

    @property
    def keeps_slice_axis(self) -> bool:
        """The canonical slices are stored slices (possibly in reverse order and flipped/transposed in-plane)."""
        return self.perm[0] == 0

    @property
    def canonical_shape(self) -> tuple[int, int, int]:
        return tuple(int(self.stored_shape[p]) for p in self.perm)  # type: ignore[return-value]

    # -- arrays ---------------------------------------------------------------------
    def to_canonical(self, arr: Any) -> np.ndarray:
        """A stored (z, y, x[, ...]) array in the canonical display (a view where possible)."""
        a = np.asarray(arr)
        extra = tuple(range(3, a.ndim))
        a = np.transpose(a, (*self.perm, *extra))
        for k, f in enumerate(self.flip):
            if f:
                a = np.flip(a, axis=k)
        return a

    def from_canonical(self, arr: Any) -> np.ndarray:
        """A canonical (z, y, x[, ...]) array back in the stored order (a view where possible)."""
        a = np.asarray(arr)
        for k, f in enumerate(self.flip):
            if f:
                a = np.flip(a, axis=k)
        inv = tuple(int(i) for i in np.argsort(self.perm))
        extra = tuple(range(3, a.ndim))
        return np.transpose(a, (*inv, *extra))

    def canonical_index(self, k: int) -> int:
        """The stored slice index of canonical slice ``k`` (only when :attr:`keeps_slice_axis`)."""
        if not self.keeps_slice_axis:
            raise ValueError("the canonical slices are not stored slices")
        return self.stored_shape[0] - 1 - int(k) if self.flip[0] else int(k)

    def slice_to_canonical(self, plane: np.ndarray) -> np.ndarray:
        """One stored (y, x[, ...]) slice in the canonical in-plane display (when :attr:`keeps_slice_axis`)."""
        if not self.keeps_slice_axis:
            raise ValueError("the canonical slices are not stored slices")
        a = np.asarray(plane)
        if self.perm[1] == 2:
            a = np.swapaxes(a, 0, 1)
        if self.flip[1]:
            a = a[::-1]
        if self.flip[2]:
            a = a[:, ::-1]
        return a

    # -- geometry -------------------------------------------------------------------
    def canonical_affine(self, affine: np.ndarray) -> np.ndarray:
        """The affine of the canonical array: maps canonical (x, y, z, 1) to the same world points."""
        affine = np.asarray(affine, dtype=np.float64)
        # canonical index (array order z, y, x) -> stored index (array order z, y, x)
        m = np.zeros((4, 4))
        m[3, 3] = 1.0
        for k, p in enumerate(self.perm):
            n = self.stored_shape[p]
            if self.flip[k]:
                m[p, k] = -1.0
                m[p, 3] = n - 1
            else:
                m[p, k] = 1.0
        # affines take (x, y, z): reverse both index orders
        rev = np.zeros((4, 4))
        rev[0, 2] = rev[1, 1] = rev[2, 0] = rev[3, 3] = 1.0
        return affine @ rev @ m @ rev

    def to_json(self) -> dict[str, Any]:
        return {
            "stored_axcodes": "".join(self.stored_axcodes),
            "canonical_axcodes": "".join(CANONICAL_AXCODES),
            "assumed": self.assumed,
            "reoriented": not self.is_identity,
        }


def orientation_known(volume: Any) -> bool:
    """Whether the volume's affine describes the patient (NIfTI, DICOM), not just a pixel grid."""
    meta = getattr(volume, "meta", None) or {}
    if "orientation_known" in meta:
        return bool(meta["orientation_known"])
    return str(getattr(volume, "loader", "")) in ORIENTED_LOADERS


def assumed_reorientation(shape: tuple[int, int, int], display: str = "radiological") -> Reorientation:
    """The reorientation of an image stored in a stated display (``ASSUMED_DISPLAYS``)."""
    if display not in ASSUMED_DISPLAYS:
        raise ValueError(f"unknown display {display!r}; expected one of {', '.join(ASSUMED_DISPLAYS)}")
    transpose, flip_rows, flip_cols = ASSUMED_DISPLAYS[display]
    perm = (0, 2, 1) if transpose else (0, 1, 2)
    return Reorientation(perm=perm, flip=(False, flip_rows, flip_cols), stored_shape=tuple(int(s) for s in shape[:3]),
                         assumed=True)


def reorientation_from_affine(affine: np.ndarray, shape: tuple[int, int, int]) -> Reorientation:
    """The permutation/flips that bring a stored ``[z, y, x]`` array with this affine to the canonical display."""
    from nibabel import orientations as nio

    affine = np.asarray(affine, dtype=np.float64)
    start = nio.io_orientation(affine)  # per index axis (x, y, z): world axis, direction
    if np.any(np.isnan(start)):
        raise ValueError("the affine has a degenerate (zero) axis; its orientation cannot be read")
    target = nio.axcodes2ornt(CANONICAL_AXCODES)
    tr = nio.ornt_transform(start, target)  # index axis i -> canonical axis tr[i, 0], flipped if tr[i, 1] < 0
    # index axes (x, y, z) are array axes (2, 1, 0)
    perm = [0, 0, 0]
    flip = [False, False, False]
    for i in range(3):
        new_index_axis = int(tr[i, 0])
        perm[2 - new_index_axis] = 2 - i
        flip[2 - new_index_axis] = bool(tr[i, 1] < 0)
    codes = tuple(str(c) for c in nio.ornt2axcodes(start))
    return Reorientation(perm=tuple(perm), flip=tuple(flip), stored_shape=tuple(int(s) for s in shape[:3]),
                         assumed=False, stored_axcodes=codes)  # type: ignore[arg-type]


def reorientation(volume: Any, *, assume: str = "radiological") -> Reorientation:
    """How ``volume`` maps to the canonical display: from its affine where it describes the patient, else assumed.

    A single 2D image (one slice) never changes its slice axis.
    """
    shape = tuple(int(s) for s in volume.shape[:3])
    if not orientation_known(volume):
        return assumed_reorientation(shape, assume)
    r = reorientation_from_affine(volume.affine, shape)
    if shape[0] == 1 and not r.keeps_slice_axis:
        # one slice whose affine says it is not axial: segment it as the plane it is
        return Reorientation(stored_shape=shape, assumed=False, stored_axcodes=r.stored_axcodes)
    return r


class _CanonicalSource(SliceSource):
    """Canonical slices of a lazy volume whose slice axis is kept (read a slab at a time)."""

    def __init__(self, parent: LazyArray, r: Reorientation) -> None:
        super().__init__()
        self._parent = parent
        self._r = r
        n = r.stored_shape[0]
        plane = parent.shape[1:]
        if r.perm[1] == 2:
            plane = (plane[1], plane[0], *plane[2:])
        self.shape = (n, *plane)
        self.dtype = parent.dtype
        self.description = f"canonical view of {getattr(parent.source, 'description', 'a volume')}"

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        n = self._r.stored_shape[0]
        if self._r.flip[0]:
            a, b = n - stop, n - start
            slab = np.asarray(self._parent[a:b])[::-1]
        else:
            slab = np.asarray(self._parent[start:stop])
        if self._r.perm[1] == 2:
            slab = np.swapaxes(slab, 1, 2)
        if self._r.flip[1]:
            slab = slab[:, ::-1]
        if self._r.flip[2]:
            slab = slab[:, :, ::-1]
        return np.ascontiguousarray(slab)

    def close(self) -> None:  # the parent volume owns the file
        return None


def canonical_volume(volume: Any, r: Reorientation | None = None) -> tuple[Any, Reorientation]:
    """``volume`` in the canonical display, and the :class:`Reorientation` that maps results back.

    The identity returns the volume itself.  A lazy volume whose slice axis is
    kept stays lazy (slices are flipped/transposed as they are read); one whose
    slices must be cut across the stored ones is read into memory once.
    """
    r = r if r is not None else reorientation(volume)
    if r.is_identity:
        return volume, r
    affine = r.canonical_affine(volume.affine) if not r.assumed else volume.affine
    if isinstance(volume.array, LazyArray) and r.keeps_slice_axis:
        arr: Any = LazyArray(_CanonicalSource(volume.array, r))
    else:
        arr = np.ascontiguousarray(r.to_canonical(np.asarray(volume.array)))
    from dataclasses import replace

    return replace(volume, array=arr, affine=affine), r


__all__ = [
    "ASSUMED_DISPLAYS",
    "CANONICAL_AXCODES",
    "ORIENTED_LOADERS",
    "Reorientation",
    "assumed_reorientation",
    "canonical_volume",
    "orientation_known",
    "reorientation",
    "reorientation_from_affine",
]
