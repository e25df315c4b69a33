"""The DICOM forms hospitals deliver, built at test time from the 3D-IRCADb 1.01 series (issue 28).

``base_series`` takes a few consecutive liver slices of ``../shared/data/volumes/ircad-1.01/ct``,
every second pixel in-plane (256 x 256, small and fast, stored values untouched), written
uncompressed (explicit VR little endian).  Every other form is made from it by the tools a PACS or
scanner would use: dcmtk (``dcmcjpeg``, ``dcmcjpls``, ``dcmcrle``, ``dcmconv``), pydicom's own
encoders (JPEG 2000 through pylibjpeg-openjpeg) and highdicom (legacy-converted enhanced CT).

Tests skip with a reason when the shared data or dcmtk is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

IRCAD_CT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "volumes" / "ircad-1.01" / "ct"

#: First slice index (0-based, by position) and number of slices taken: liver in every one.
FIRST, COUNT = 70, 6

requires_ircad = pytest.mark.skipif(not IRCAD_CT.is_dir(), reason=f"shared data absent: {IRCAD_CT}")
requires_dcmtk = pytest.mark.skipif(shutil.which("dcmcjpeg") is None, reason="dcmtk not installed (apt-get install dcmtk; make setup does it)")

#: 3D-IRCADb's files have no FrameOfReferenceUID; the fixtures share this one (as a scanner's would).
FRAME_OF_REFERENCE = "1.2.826.0.1.3680043.8.498.28281012010101"

#: form -> the dcmtk command that makes it
LOSSLESS_DCMTK = {
    "jpeg-lossless-sv1": ["dcmcjpeg", "+e1"],
    "jpeg-lossless-p14": ["dcmcjpeg", "+el"],
    "jpeg-ls": ["dcmcjpls", "+el"],
    "rle": ["dcmcrle"],
    "deflate": ["dcmconv", "+td"],
    "big-endian": ["dcmconv", "+tb"],
    "implicit-le": ["dcmconv", "+ti"],
}


def _sources() -> list[Path]:
    import pydicom

    files = sorted(IRCAD_CT.iterdir(), key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    return files[FIRST : FIRST + COUNT]


def base_series(folder: Path, *, series_uid: str | None = None, description: str = "PORTAL VENOUS 1.6 mm",
                hu_shift: int = 0, series_number: int = 3, twelve_bit: bool = False, prefix: str = "IM") -> list[Path]:
    """The uncompressed 256 x 256 subset in ``folder`` (one file per slice); returns the paths.

    ``twelve_bit`` stores ``HU + 1024`` unsigned in 12 bits (intercept -1024), as JPEG Extended needs.
    """
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    out = []
    for k, src in enumerate(_sources()):
        ds = pydicom.dcmread(src)
        hu = ds.pixel_array[::2, ::2].astype(np.int32) + hu_shift
        ps = [float(v) * 2 for v in ds.PixelSpacing]
        ds.PixelSpacing = [f"{v:.6f}" for v in ps]
        if twelve_bit:
            stored = np.clip(hu + 1024, 0, 4095).astype(np.uint16)
            ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
            ds.RescaleIntercept = "-1024"
        else:
            stored = hu.astype(np.int16)
        ds.Rows, ds.Columns = stored.shape
        ds.PixelData = stored.tobytes()
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = FRAME_OF_REFERENCE
        ds.SeriesDescription = description
        ds.SeriesNumber = series_number
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.InstanceNumber = k + 1
        for kw in ("WindowCenter", "WindowWidth"):  # "0" width is invalid
            if kw in ds:
                del ds[kw]
        path = folder / f"{prefix}{k:04d}"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def dcmtk_form(src: Path, dst: Path, cmd: list[str]) -> Path:
    """Run a dcmtk converter over every file of ``src`` into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        subprocess.run([*cmd, str(f), str(dst / f.name)], check=True, capture_output=True, timeout=60)
    return dst


def pydicom_form(src: Path, dst: Path, uid: str, **kwargs) -> Path:
    """Re-encode every file of ``src`` with pydicom's own encoder for transfer syntax ``uid``."""
    import pydicom

    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        ds = pydicom.dcmread(f)
        ds.compress(uid, generate_instance_uid=False, **kwargs)
        ds.save_as(dst / f.name, enforce_file_format=True)
    return dst


def multiframe(src: Path, dst_file: Path, *, transfer_syntax_uid: str | None = None, reverse: bool = False) -> Path:
    """One legacy-converted enhanced CT file (highdicom) holding every slice of ``src`` as a frame."""
    import highdicom as hd
    import pydicom

    datasets = [pydicom.dcmread(f) for f in sorted(src.iterdir())]
    if reverse:
        datasets = datasets[::-1]
    kwargs = {"transfer_syntax_uid": transfer_syntax_uid} if transfer_syntax_uid else {}
    img = hd.legacy.LegacyConvertedEnhancedCTImage(
        datasets, series_instance_uid=hd.UID(), series_number=9, sop_instance_uid=hd.UID(), instance_number=1, **kwargs
    )
    dst_file.parent.mkdir(parents=True, exist_ok=True)
    img.save_as(dst_file, enforce_file_format=True)
    return dst_file


def scout(folder: Path, *, study_uid: str, frame_uid: str) -> list[Path]:
    """A 2-image topogram series (LOCALIZER, coronal), as scanners write before the axial runs."""
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    ds0 = pydicom.dcmread(_sources()[0])
    series_uid = generate_uid()
    out = []
    for k in range(2):
        ds = pydicom.dcmread(_sources()[0])
        img = np.full((128, 256), -1000, dtype=np.int16)
        img[32:96, 40:216] = 40
        ds.Rows, ds.Columns = img.shape
        ds.PixelData = img.tobytes()
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1] if k == 0 else [0, 1, 0, 0, 0, -1]
        ds.ImagePositionPatient = [0, 0, 0]
        ds.PixelSpacing = ["2", "2"]
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID = series_uid, study_uid, frame_uid
        ds.SeriesDescription, ds.SeriesNumber = "Topogram 0.6 T20s", 1
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        for kw in ("WindowCenter", "WindowWidth"):
            if kw in ds:
                del ds[kw]
        p = folder / f"SC{k}"
        ds.save_as(p, enforce_file_format=True)
        out.append(p)
    del ds0
    return out


def study_folder(root: Path) -> dict[str, str]:
    """A study as a PACS export delivers it: a scout, an arterial and a portal-venous series (same study and
    frame of reference), their files side by side in one folder.  Returns ``{"arterial": uid, "venous": uid,
    "scout": uid}``."""
    import pydicom

    art = base_series(root, description="ARTERIAL 1.6 mm", hu_shift=40, series_number=2, prefix="ART")
    ven = base_series(root, description="PORTAL VENOUS 1.6 mm", series_number=3, prefix="PV")
    first = pydicom.dcmread(art[0], stop_before_pixels=True)
    study, frame = str(first.StudyInstanceUID), str(first.FrameOfReferenceUID)
    sc = scout(root, study_uid=study, frame_uid=frame)
    return {
        "arterial": str(first.SeriesInstanceUID),
        "venous": str(pydicom.dcmread(ven[0], stop_before_pixels=True).SeriesInstanceUID),
        "scout": str(pydicom.dcmread(sc[0], stop_before_pixels=True).SeriesInstanceUID),
    }
