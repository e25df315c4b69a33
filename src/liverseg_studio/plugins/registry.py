"""Registries that plugins fill through the ``liverseg_register_*`` hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Generic, Iterator, TypeVar

from liverseg_studio.core.errors import LiversegError, LoaderError, PluginError

if TYPE_CHECKING:
    from liverseg_studio.backends.base import Backend
    from liverseg_studio.core.volume import Volume

SNIFF_BYTES = 1024
#: The backend name that means "the default engine": the fastest installed (highest ``default_rank``).
AUTO_BACKEND = "auto"


@dataclass(frozen=True)
class LoadOptions:
    """Options every loader honours where they apply."""

    #: For 8-bit images: HU of grey 0 and grey 255 (``--input-window LOW,HIGH``).
    input_window: tuple[float, float] | None = None
    #: For DICOM folders holding several series.
    series_uid: str | None = None
    #: Refuse inputs whose decoded voxels would need more bytes than this.
    max_bytes: int = 4 * 1024**3
    #: ``--intensity``: ``auto`` checks that HU volumes look like CT (refuses or corrects),
    #: ``hu`` trusts the values, ``hu+1024`` subtracts 1024 (``loaders.intensity``).
    intensity: str = "auto"


@dataclass(frozen=True)
class LoaderSpec:
    """A loader: how to recognise a file or folder and how to read it."""

    name: str
    load: Callable[[Path, LoadOptions], "Volume"]
    sniff: Callable[[Path, bytes], bool]
    extensions: tuple[str, ...] = ()
    description: str = ""
    #: True for loaders that read folders (e.g. a DICOM series).
    reads_directories: bool = False
    #: Higher wins when several loaders sniff the same input.
    priority: int = 0
    plugin: str = ""  # filled in by the registry


@dataclass(frozen=True)
class BackendSpec:
    """A segmentation backend; ``factory()`` returns a fresh, unloaded backend."""

    name: str
    factory: Callable[[], "Backend"]
    description: str = ""
    #: Whether ``load`` needs a model directory.
    needs_model: bool = True
    #: Default-engine preference: with no ``--backend``, the CLI and the studio use the
    #: registered backend with the highest rank (0: never the default).  Built-in onnx
    #: (ONNX Runtime) is 10; a faster engine whose runtime is installed ranks higher.
    default_rank: int = 0
    plugin: str = ""  # filled in by the registry


S = TypeVar("S", LoaderSpec, BackendSpec)


@dataclass
class _Registry(Generic[S]):
    kind: str
    _items: dict[str, S] = field(default_factory=dict)
    _current_plugin: str = "<direct>"

    def add(self, spec: S) -> None:
        """Register ``spec``; a name already taken raises :class:`PluginError` naming both plugins."""
        if not spec.name or not isinstance(spec.name, str):
            raise PluginError(f"{self.kind} from plugin {self._current_plugin!r} has no name")
        if spec.name in self._items:
            other = self._items[spec.name].plugin
            raise PluginError(
                f"{self.kind} name {spec.name!r} is claimed by both plugin {other!r} and plugin {self._current_plugin!r}"
            )
        self._items[spec.name] = type(spec)(**{**spec.__dict__, "plugin": self._current_plugin})

    def remove_plugin(self, plugin: str) -> None:
        for name in [n for n, s in self._items.items() if s.plugin == plugin]:
            del self._items[name]

    def names(self) -> list[str]:
        return list(self._items)

    def get(self, name: str) -> S:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise LiversegError(f"unknown {self.kind} {name!r} (available: {known})") from None

    def __iter__(self) -> Iterator[S]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items


class LoaderRegistry(_Registry[LoaderSpec]):
    def __init__(self) -> None:
        super().__init__(kind="loader")

    def find(self, path: Path | str) -> LoaderSpec:
        """The loader for ``path``, chosen by a quick sniff (extension, magic bytes)."""
        p = Path(path)
        if not p.exists():
            raise LoaderError(p, "no such file or folder")
        head = b""
        if p.is_file():
            try:
                with p.open("rb") as fh:
                    head = fh.read(SNIFF_BYTES)
            except OSError as exc:
                raise LoaderError(p, f"cannot read: {exc.strerror or exc}") from exc
            if not head:
                raise LoaderError(p, "file is empty (0 bytes)")
        candidates = []
        for spec in self:
            if spec.reads_directories != p.is_dir():
                continue
            try:
                if spec.sniff(p, head):
                    candidates.append(spec)
            except Exception:  # a broken sniff must not hide the other loaders
                continue
        if not candidates:
            what = "folder" if p.is_dir() else "file"
            raise LoaderError(p, f"no loader recognises this {what} (known: {', '.join(self.names()) or 'none'})")
        return max(candidates, key=lambda s: s.priority)

    def load(self, path: Path | str, options: LoadOptions | None = None) -> "Volume":
        """Find the loader for ``path`` and read it; every failure is a :class:`LoaderError`."""
        p = Path(path)
        spec = self.find(p)
        try:
            volume = spec.load(p, options or LoadOptions())
        except LoaderError:
            raise
        except MemoryError:
            raise LoaderError(p, "not enough memory to decode this image") from None
        except Exception as exc:  # isolate loader bugs and library errors
            raise LoaderError(p, f"{spec.name} loader failed: {type(exc).__name__}: {exc}") from exc
        from liverseg_studio.loaders.intensity import apply_intensity_policy

        return apply_intensity_policy(volume, p, (options or LoadOptions()).intensity)

    def file_dialog_filters(self) -> list[tuple[str, tuple[str, ...]]]:
        """(description, extensions) per loader that claims extensions, for file dialogs."""
        return [(s.description or s.name, s.extensions) for s in self if s.extensions]


class BackendRegistry(_Registry[BackendSpec]):
    def __init__(self) -> None:
        super().__init__(kind="backend")

    def get(self, name: str) -> BackendSpec:
        """The backend ``name``; ``"auto"`` is the default engine (:meth:`default_name`)."""
        if name == AUTO_BACKEND and AUTO_BACKEND not in self._items:
            name = self.default_name() or name
        return super().get(name)

    def create(self, name: str) -> "Backend":
        return self.get(name).factory()

    def default_name(self) -> str | None:
        """The default engine: the backend with the highest ``default_rank`` > 0 (first registered wins ties)."""
        ranked = [s for s in self if s.default_rank > 0]
        if not ranked:
            return None
        return max(ranked, key=lambda s: s.default_rank).name
