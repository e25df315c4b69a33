"""Lazy volumes: voxels read from disk one slab of slices at a time.

A loader that can hand out slices on demand returns a :class:`~liverseg_studio.core.volume.Volume`
whose ``array`` is a :class:`LazyArray` over a :class:`SliceSource`.  A
``LazyArray`` behaves like the read-only numpy array it stands for wherever
the code indexes it along the first (slice) axis:

* ``lazy[k]``, ``lazy[a:b]``, ``lazy[[i, j]]``, ``lazy[k, ::2, ::2]``, ``lazy[z, y, x]``
  read only the slices they name (float32 for HU volumes);
* ``np.asarray(lazy)`` (and any numpy function given the whole array) reads
  every slice into one in-memory array: correct, but exactly what streaming
  consumers avoid;
* :meth:`LazyArray.slabs` iterates ``(start, stop, array)`` in batches, which
  is how the segmentation pipeline, volumetry and the exporters stream.

Nothing here keeps decoded voxels between calls: each read returns a fresh
array, so memory is bounded by the caller's batch.  Sources read with plain
file reads rather than memory maps on purpose: the pages of a memory-mapped
file count in the process's resident set (RSS) while they stay mapped, so a
memmap streamed from end to end ends up as large as the file.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, Sequence

import numpy as np

#: Slices per read when a whole lazy array is materialised or streamed without a batch size.
DEFAULT_SLAB = 16


class SliceSource:
    """Reads slices ``[start, stop)`` of a volume on demand (the loaders subclass it).

    Subclasses set ``shape`` ((z, y, x) or (z, y, x, 3)) and ``dtype`` and
    implement :meth:`read_slab`; :meth:`close` releases files (temporary
    files are deleted).  ``read_slab`` may be called from several threads;
    subclasses that share a file position guard it with ``self._lock``.
    """

    shape: tuple[int, ...] = ()
    dtype: np.dtype = np.dtype(np.float32)
    #: What the source reads (for repr and error messages).
    description: str = ""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.closed = False

    def read_slab(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        """Slices ``start:stop`` (``0 <= start < stop <= shape[0]``) as a fresh array of ``dtype``."""
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


class ArraySource(SliceSource):
    """A :class:`SliceSource` over an in-memory array (tests, and sub-volumes of real arrays)."""

    def __init__(self, array: np.ndarray, description: str = "in-memory array") -> None:
        super().__init__()
        self._array = np.asarray(array)
        self.shape = tuple(int(s) for s in self._array.shape)
        self.dtype = self._array.dtype
        self.description = description
        #: How many slices were read, in total (tests check that streaming reads each slice once).
        self.slices_read = 0

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        self.slices_read += stop - start
        return np.array(self._array[start:stop], copy=True)


class SubSource(SliceSource):
    """Slices ``z0:z1`` of another source (a sub-volume that stays lazy)."""

    def __init__(self, parent: SliceSource, z0: int, z1: int) -> None:
        super().__init__()
        if not 0 <= z0 < z1 <= parent.shape[0]:
            raise ValueError(f"slice range {z0}:{z1} outside 0:{parent.shape[0]}")
        self.parent, self.z0 = parent, int(z0)
        self.shape = (int(z1 - z0), *parent.shape[1:])
        self.dtype = parent.dtype
        self.description = f"{parent.description} [slices {z0}:{z1}]"

    def read_slab(self, start: int, stop: int) -> np.ndarray:
        return self.parent.read_slab(self.z0 + start, self.z0 + stop)


class LazyArray(np.lib.mixins.NDArrayOperatorsMixin):
    """A read-only array-like over a :class:`SliceSource` (see the module docstring).

    Operators, ufuncs and ndarray methods (``lazy > 30``, ``np.isfinite(lazy)``,
    ``lazy.max()``) work by reading the whole array first: correct, for old code
    and tests, but never what a streaming consumer does.
    """

    def __init__(self, source: SliceSource) -> None:
        if len(source.shape) < 3:
            raise ValueError(f"a slice source needs (z, y, x[, c]), got shape {source.shape}")
        self.source = source

    # -- what numpy code looks at ------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.source.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.source.dtype)

    @property
    def ndim(self) -> int:
        return len(self.source.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes the whole array would take in memory (not what it holds: nothing)."""
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyArray(shape={self.shape}, dtype={self.dtype}, source={self.source.description!r})"

    # -- reading -----------------------------------------------------------------------
    def read(self, start: int, stop: int) -> np.ndarray:
        """Slices ``start:stop`` (clipped to the volume) as a fresh in-memory array."""
        n = self.shape[0]
        start, stop = max(0, int(start)), min(n, int(stop))
        if stop <= start:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        out = self.source.read_slab(start, stop)
        if out.shape != (stop - start, *self.shape[1:]):
            raise ValueError(
                f"{self.source.description}: read {out.shape} for slices {start}:{stop}, expected "
                f"{(stop - start, *self.shape[1:])}"
            )
        return out

    def slabs(self, batch: int = DEFAULT_SLAB) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, stop, array)`` for consecutive slabs of at most ``batch`` slices."""
        batch = max(1, int(batch))
        n = self.shape[0]
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            yield start, stop, self.read(start, stop)

    def _read_indices(self, indices: Sequence[int]) -> np.ndarray:
        idx = [int(i) for i in indices]
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
        if not idx:
            return out
        lo, hi = min(idx), max(idx) + 1
        if hi - lo <= 2 * len(idx) + DEFAULT_SLAB:  # close together: one read
            slab = self.read(lo, hi)
            for j, i in enumerate(idx):
                out[j] = slab[i - lo]
        else:
            for j, i in enumerate(idx):
                out[j] = self.read(i, i + 1)[0]
        return out

    def __getitem__(self, key: Any) -> Any:
        n = self.shape[0]
        if not isinstance(key, tuple):
            key = (key,)
        if not key:
            return np.asarray(self)
        first, rest = key[0], key[1:]
        if first is Ellipsis or first is None:
            return np.asarray(self)[key]
        if isinstance(first, (int, np.integer)):
            k = int(first)
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for axis 0 with size {n}")
            k %= n
            return self.read(k, k + 1)[(0, *rest)]
        if isinstance(first, slice):
            start, stop, step = first.indices(n)
            if step == 1:
                slab = self.read(start, stop)
            else:
                slab = self._read_indices(range(start, stop, step))
            return slab[(slice(None), *rest)] if rest else slab
        arr = np.asarray(first)
        if arr.dtype == bool:
            if arr.shape != (n,):
                return np.asarray(self)[key]
            arr = np.flatnonzero(arr)
        if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
            if arr.size and (arr.min() < -n or arr.max() >= n):
                raise IndexError(f"index out of bounds for axis 0 with size {n}")
            slab = self._read_indices(list(arr % n))
            return slab[(slice(None), *rest)] if rest else slab
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if copy is False:
            raise ValueError("a LazyArray cannot be viewed as an array without reading it (copy=False)")
        out = np.empty(self.shape, dtype=self.dtype if dtype is None else dtype)
        for start, stop, slab in self.slabs():
            out[start:stop] = slab
        return out

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(np.asarray(x) if isinstance(x, LazyArray) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(x) if isinstance(x, LazyArray) else x for x in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # ndarray methods and attributes (T, astype, min, ...) on the whole array, read in full
        if name.startswith("_") or not hasattr(np.ndarray, name):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)

    def close(self) -> None:
        self.source.close()
