"""Exception types shared by loaders, backends, the CLI and the studio."""

from __future__ import annotations


class LiversegError(Exception):
    """Base class for errors caused by input or configuration (CLI exit code 2)."""


class LoaderError(LiversegError):
    """A file could not be read as an image or volume.

    The message always names the file and the reason, e.g.
    ``"scan.dcm: DICOM file has no pixel data"``.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class BackendError(LiversegError):
    """A segmentation backend could not load its model or failed to predict."""


class CancelledError(LiversegError):
    """A long-running operation was cancelled cooperatively by the user."""


class PluginError(LiversegError):
    """A plugin is broken or conflicts with another plugin."""


class MultipleSeriesError(LoaderError):
    """A DICOM folder holds several series; the caller must choose one.

    ``series`` lists ``(series_instance_uid, description, n_files)``.  The CLI
    takes ``--series UID``; the studio asks the user.
    """

    def __init__(self, path: object, series: list[tuple[str, str, int]]) -> None:
        self.series = series
        listing = "; ".join(f"{uid} ({desc or 'no description'}, {n} files)" for uid, desc, n in series)
        super().__init__(path, f"folder holds {len(series)} DICOM series, choose one with --series UID: {listing}")
