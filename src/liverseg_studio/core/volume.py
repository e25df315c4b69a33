"""The imaging data model: :class:`Volume`, :class:`Label` and label maps.

Conventions (read these before touching geometry):

* ``Volume.array`` is indexed ``[z, y, x]`` (slice, row, column); for the paper's
  3-channel windowed images it is ``[z, y, x, 3]`` uint8.
* ``Volume.affine`` is a 4x4 matrix mapping the voxel index **(x, y, z, 1)** to
  patient coordinates in millimetres, RAS+ as in nibabel.  With nibabel this is
  exactly ``img.affine`` when ``array = img.get_fdata().T``; so a mask written
  back as ``Nifti1Image(mask.T, volume.affine)`` has the input's shape and affine.
* Spacing is *derived* from the affine (norms of its first three columns), never
  stored separately, as in nibabel and TorchIO.
* ``Volume.array`` may be *lazy* (:class:`~liverseg_studio.core.slices.LazyArray`,
  ``Volume.is_lazy``): large NIfTI/MRC/DICOM inputs are read from disk a slab of
  slices at a time.  Index it along the first axis (``array[k]``, ``array[a:b]``)
  or stream it with :meth:`Volume.slabs`; ``np.asarray(volume.array)`` reads it
  all.  :meth:`Volume.in_memory` gives an in-memory copy (int16 when that is exact).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np
import numpy.typing as npt

from liverseg_studio.core.slices import DEFAULT_SLAB, LazyArray, SliceSource, SubSource


class Label(enum.IntEnum):
    """Voxel classes of a label map, as LiTS defines them."""

    BACKGROUND = 0
    LIVER = 1
    TUMOUR = 2

    @property
    def display_name(self) -> str:
        return {0: "Background", 1: "Liver", 2: "Liver tumour"}[int(self)]


#: A label map: uint8 array shaped like ``Volume.array[..., 0]`` (z, y, x) with
#: values from :class:`Label`.  Liver as LiTS scores it is ``labels >= 1``.
LabelMap = npt.NDArray[np.uint8]


class Intensity(str, enum.Enum):
    """What the numbers in ``Volume.array`` mean."""

    #: Hounsfield units (DICOM after rescale, NIfTI, MRC).
    HU = "HU"
    #: 8-bit display grey; ``Volume.hu_range`` gives grey 0 -> low HU, 255 -> high HU.
    DISPLAY8 = "display8"
    #: The paper's 3-channel windowed JPG/PNG, already model input (z, y, x, 3) uint8.
    WINDOWED_RGB = "windowed_rgb"


DEFAULT_HU_RANGE: tuple[float, float] = (0.0, 255.0)


def _as_affine(affine: Any) -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("affine contains non-finite values")
    return a


@dataclass(frozen=True, eq=False)
class Volume:
    """A CT volume or a stack of 2D slices with its geometry.

    Parameters
    ----------
    array:
        Voxels ``[z, y, x]`` (or ``[z, y, x, 3]`` for ``Intensity.WINDOWED_RGB``).
        A single 2D image is a volume with one slice.
    affine:
        4x4 voxel-index (x, y, z) to RAS+ millimetre transform.
    intensity:
        What the values mean (:class:`Intensity`).
    hu_range:
        For ``DISPLAY8`` only: the HU that grey 0 and grey 255 stand for.
    source:
        Human-readable description of where the data came from (path).
    loader:
        Name of the loader that produced the volume.
    spacing_known:
        False for plain images (JPG/PNG) whose pixel size is unknown; the
        affine is then the identity and volumetry reports pixels, not mL.
    meta:
        Loader-specific extras (e.g. DICOM SeriesInstanceUID, file list).
    """

    array: np.ndarray | LazyArray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    intensity: Intensity = Intensity.HU
    hu_range: tuple[float, float] | None = None
    source: str = ""
    loader: str = ""
    spacing_known: bool = True
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = self.array
        if isinstance(arr, SliceSource):
            arr = LazyArray(arr)
        if not isinstance(arr, LazyArray):
            arr = np.asarray(arr)
        intensity = Intensity(self.intensity)
        expected_ndim = 4 if intensity is Intensity.WINDOWED_RGB else 3
        if arr.ndim != expected_ndim:
            raise ValueError(
                f"{intensity.value} volume must have {expected_ndim} dimensions, got shape {arr.shape}"
            )
        if intensity is Intensity.WINDOWED_RGB and arr.shape[-1] != 3:
            raise ValueError(f"windowed_rgb volume needs 3 channels, got shape {arr.shape}")
        if min(arr.shape[:3]) < 1:
            raise ValueError(f"volume has an empty dimension: shape {arr.shape}")
        hu_range = self.hu_range
        if intensity is Intensity.DISPLAY8 and hu_range is None:
            hu_range = DEFAULT_HU_RANGE
        if hu_range is not None:
            lo, hi = (float(v) for v in hu_range)
            if not hi > lo:
                raise ValueError(f"hu_range must be increasing, got {hu_range}")
            hu_range = (lo, hi)
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "affine", _as_affine(self.affine))
        object.__setattr__(self, "intensity", intensity)
        object.__setattr__(self, "hu_range", hu_range)
        object.__setattr__(self, "meta", dict(self.meta))

    # -- shape -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) without the channel axis."""
        z, y, x = self.array.shape[:3]
        return int(z), int(y), int(x)

    @property
    def n_slices(self) -> int:
        return self.shape[0]

    @property
    def is_2d(self) -> bool:
        return self.shape[0] == 1

    # -- geometry ------------------------------------------------------------
    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm in array order (z, y, x), derived from the affine."""
        sx, sy, sz = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(sz), float(sy), float(sx)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def index_to_world(self, z: float, y: float, x: float) -> np.ndarray:
        """Patient (RAS) coordinates in mm of the voxel centre at ``[z, y, x]``."""
        return (self.affine @ np.array([x, y, z, 1.0]))[:3]

    # -- intensity -------------------------------------------------------------
    def hu_slice(self, index: int) -> np.ndarray:
        """Slice ``index`` in HU as float32 (y, x).

        ``DISPLAY8`` grey is mapped linearly through ``hu_range``.  Not defined
        for ``WINDOWED_RGB`` volumes, which carry no HU.
        """
        return hu_from(self.array[index], self.intensity, self.hu_range)

    # -- lazy volumes ------------------------------------------------------------------
    @property
    def is_lazy(self) -> bool:
        """True when ``array`` is read from disk on demand (a :class:`LazyArray`)."""
        return isinstance(self.array, LazyArray)

    def slabs(self, batch: int = DEFAULT_SLAB) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, stop, raw slices)`` in consecutive batches: the streaming way to visit every slice."""
        batch = max(1, int(batch))
        if isinstance(self.array, LazyArray):
            yield from self.array.slabs(batch)
            return
        for start in range(0, self.n_slices, batch):
            stop = min(self.n_slices, start + batch)
            yield start, stop, self.array[start:stop]

    def sub_volume(self, z0: int, z1: int) -> "Volume":
        """Slices ``z0:z1`` as a volume with the matching affine (lazy stays lazy)."""
        z0, z1 = int(z0), int(z1)
        if not 0 <= z0 < z1 <= self.n_slices:
            raise ValueError(f"slice range {z0}:{z1} outside 0:{self.n_slices}")
        shift = np.eye(4)
        shift[2, 3] = z0
        if isinstance(self.array, LazyArray):
            array: Any = LazyArray(SubSource(self.array.source, z0, z1))
        else:
            array = self.array[z0:z1]
        return self.with_array(array, affine=self.affine @ shift)

    def in_memory(self, *, compact: bool = True) -> "Volume":
        """This volume with its voxels in memory (itself when they already are).

        With ``compact`` an HU volume whose values are all whole numbers in the
        int16 range is held as int16 (half of float32, and exact: ``hu_slice``
        gives the same float32 values); otherwise the loader's dtype is kept.
        Read slab by slab: no full-size float temporary besides the result.
        """
        arr = self.array
        if not isinstance(arr, LazyArray):
            return self
        use_int16 = compact and self.intensity is Intensity.HU and np.dtype(arr.dtype).kind in "iuf"
        out = np.empty(arr.shape, dtype=np.int16 if use_int16 else arr.dtype)
        for start, stop, slab in arr.slabs():
            if use_int16:
                exact = np.array_equal(np.rint(slab), slab) if slab.dtype.kind == "f" else True
                if exact and slab.size:
                    exact = bool(slab.min() >= -32768 and slab.max() <= 32767)
                if not exact:  # not whole numbers: keep the loader's dtype
                    return self.in_memory(compact=False)
                out[start:stop] = slab
            else:
                out[start:stop] = slab
        return self.with_array(out)

    def close(self) -> None:
        """Release the files of a lazy volume (temporary files are deleted); a no-op otherwise."""
        if isinstance(self.array, LazyArray):
            self.array.close()

    def with_array(self, array: np.ndarray, **changes: Any) -> "Volume":
        """A copy with another array (same geometry unless ``changes`` say otherwise)."""
        fields = dict(
            affine=self.affine,
            intensity=self.intensity,
            hu_range=self.hu_range,
            source=self.source,
            loader=self.loader,
            spacing_known=self.spacing_known,
            meta=self.meta,
        )
        fields.update(changes)
        return Volume(array=array, **fields)

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.array.shape}, dtype={self.array.dtype}, intensity={self.intensity.value}, "
            f"spacing={tuple(round(s, 3) for s in self.spacing)}, source={self.source!r})"
        )


def hu_from(
    values: np.ndarray, intensity: Intensity | str, hu_range: tuple[float, float] | None
) -> np.ndarray:
    """Convert raw values of the given intensity kind to HU (float32)."""
    intensity = Intensity(intensity)
    if intensity is Intensity.HU:
        return np.asarray(values, dtype=np.float32)
    if intensity is Intensity.DISPLAY8:
        lo, hi = hu_range or DEFAULT_HU_RANGE
        return (np.asarray(values, dtype=np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)).astype(
            np.float32
        )
    raise ValueError("a windowed_rgb image carries no Hounsfield units")


def empty_label_map(volume: Volume) -> LabelMap:
    """An all-background label map shaped like ``volume``."""
    return np.zeros(volume.shape, dtype=np.uint8)
