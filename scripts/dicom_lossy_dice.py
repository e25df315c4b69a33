"""Liver Dice of the default model on lossy DICOM forms against the uncompressed series (issue 28).

A measurement, not a test: 24 full-resolution slices of 3D-IRCADb 1.01 (../shared/data), written
uncompressed, as JPEG 2000 lossy (pydicom + openjpeg, compression ratio 10) and as JPEG Extended
12-bit (dcmtk ``dcmcjpeg +ee``, quality 90, the default), each segmented with the default model.
Usage: python scripts/dicom_lossy_dice.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parents[1]
CT = ROOT / ".." / "shared" / "data" / "volumes" / "ircad-1.01" / "ct"
FIRST, COUNT = 60, 24


def main() -> int:
    from liverseg_studio.backends.common import default_model_dir
    from liverseg_studio.plugins.manager import get_plugin_manager
    from liverseg_studio.plugins.registry import LoadOptions
    from liverseg_studio.segment.pipeline import segment_volume

    files = sorted(CT.iterdir(), key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    tmp = Path(tempfile.mkdtemp())
    forms = {k: tmp / k for k in ("plain", "twelve", "j2k", "jpeg12")}
    for f in forms.values():
        f.mkdir()
    uid = generate_uid()
    for k, src in enumerate(files[FIRST : FIRST + COUNT]):
        ds = pydicom.dcmread(src)
        for kw in ("WindowCenter", "WindowWidth"):
            if kw in ds:
                del ds[kw]
        ds.SeriesInstanceUID, ds.file_meta.TransferSyntaxUID = uid, ExplicitVRLittleEndian
        ds.save_as(forms["plain"] / f"IM{k:03d}", enforce_file_format=True)
        hu = ds.pixel_array.astype(np.int32)
        t = pydicom.dcmread(forms["plain"] / f"IM{k:03d}")
        t.BitsStored, t.HighBit, t.PixelRepresentation, t.RescaleIntercept = 12, 11, 0, "-1024"
        t.PixelData = np.clip(hu + 1024, 0, 4095).astype(np.uint16).tobytes()
        t.save_as(forms["twelve"] / f"IM{k:03d}", enforce_file_format=True)
        j = pydicom.dcmread(forms["plain"] / f"IM{k:03d}")
        j.compress(JPEG2000, j2k_cr=[10])
        j.save_as(forms["j2k"] / f"IM{k:03d}", enforce_file_format=True)
        subprocess.run(["dcmcjpeg", "+ee", str(forms["twelve"] / f"IM{k:03d}"), str(forms["jpeg12"] / f"IM{k:03d}")], check=True)
    pm = get_plugin_manager()
    backend = pm.backends.create("auto")
    backend.load(default_model_dir())
    masks = {}
    for name in ("plain", "j2k", "jpeg12"):
        vol = pm.loaders.load(forms[name], LoadOptions())
        masks[name] = np.asarray(segment_volume(vol, backend).labels)
        print(f"{name}: {vol.meta.get('files', [''])[0]} liver voxels {(masks[name] >= 1).sum()}", file=sys.stderr)
    ref = masks["plain"] >= 1
    for name in ("j2k", "jpeg12"):
        m = masks[name] >= 1
        dice = 2 * (m & ref).sum() / max(m.sum() + ref.sum(), 1)
        print(f"{name}: liver Dice vs uncompressed {dice:.4f} ({COUNT} slices of ircad-1.01, 512x512)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
