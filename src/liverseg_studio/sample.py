"""The sample case: LiTS case 117 from ``liver-ct-segmentation-package``.

``make setup`` installs that package with ``--no-deps`` only for its data
files (a 128^3 CT and its labels as MRC, voxel size 0 so the spacing is
unknown).  It is located here *without importing* the package (importing
it would pull in its heavy dependencies): ``importlib.util.find_spec`` of a
top-level package only finds it, and the distribution's file list is the
fallback.  LiTS case 117 is the held-out tumour test: never train, tune or
select on it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "liver_ct_segmentation_package"
DISTRIBUTION = "liver-ct-segmentation-package"
IMAGE_NAME = "img_117.mrc"
LABELS_NAME = "lab_117.mrc"


@dataclass(frozen=True)
class SampleCase:
    """Paths of the sample CT and its reference labels."""

    image: Path
    labels: Path | None
    name: str = "LiTS case 117"
    licence: str = "LiTS (CC BY-NC-SA 4.0), via liver-ct-segmentation-package 1.6.0"


def _from_bundle() -> Path | None:
    """The copy in a PyInstaller bundle (``packaging/liverseg_studio.spec``: ``resources/sample/``)."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle and (Path(bundle) / "resources" / "sample" / IMAGE_NAME).is_file():
        return Path(bundle) / "resources" / "sample"
    return None


def _from_spec() -> Path | None:
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or []:
        data = Path(location) / "data"
        if (data / IMAGE_NAME).is_file():
            return data
    return None


def _from_metadata() -> Path | None:
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.name == IMAGE_NAME:
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path.parent
    return None


def sample_case() -> SampleCase | None:
    """The installed sample case, or None when the package is not installed."""
    data = _from_bundle() or _from_spec() or _from_metadata()
    if data is None:
        return None
    labels = data / LABELS_NAME
    return SampleCase(image=data / IMAGE_NAME, labels=labels if labels.is_file() else None)


def sample_image() -> Path | None:
    """Path of the sample CT (``img_117.mrc``), or None if absent."""
    case = sample_case()
    return case.image if case else None
