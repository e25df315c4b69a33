"""Choosing a loader by magic bytes and extension, without heavy imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.loaders._common import detect_format


def test_builtin_loader_names(loaders):
    assert set(loaders.names()) == {"image", "dicom", "dicomdir", "dicom-series", "nifti", "mrc"}


def test_formats_found_by_content_not_name(tmp_path, loaders, nifti_phantom):
    png = tmp_path / "really_png.dcm"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(png, format="PNG")
    assert loaders.find(png).name == "image"
    dcm = tmp_path / "really_dicom.png"
    dcm.write_bytes(open(get_testdata_file("CT_small.dcm"), "rb").read())
    assert loaders.find(dcm).name == "dicom"
    nii = tmp_path / "volume.bin"
    nii.write_bytes(nifti_phantom.path.read_bytes())
    assert loaders.find(nii).name == "nifti"


def test_dual_format_dicom_with_tiff_preamble(loaders):
    # pydicom's CT_small.dcm has a TIFF header in its preamble: DICOM must win
    assert loaders.find(get_testdata_file("CT_small.dcm")).name == "dicom"


@pytest.mark.parametrize(
    "head, fmt",
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 20, "jpeg"),
        (b"II*\x00" + b"\0" * 20, "tiff"),
        (b"\0" * 128 + b"DICM" + b"\0" * 8, "dicom"),
        (b"\0" * 208 + b"MAP " + b"\0" * 20, "mrc"),
        (b"hello world", None),
    ],
)
def test_detect_format(head, fmt):
    assert detect_format(head) == fmt


def test_unknown_file_refused(tmp_path, loaders):
    p = tmp_path / "notes.txt"
    p.write_text("nothing to see")
    with pytest.raises(LoaderError, match="no loader recognises"):
        loaders.load(p)


def test_missing_file_refused(tmp_path, loaders):
    with pytest.raises(LoaderError, match="no such file"):
        loaders.load(tmp_path / "nope.nii")


def test_sniffing_imports_nothing_heavy(tmp_path, nifti_phantom):
    png = tmp_path / "a.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(png)
    code = (
        "import sys\n"
        "from liverseg_studio.plugins.manager import get_plugin_manager\n"
        "pm = get_plugin_manager()\n"
        f"names = [pm.loaders.find(p).name for p in sys.argv[1:]]\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pydicom', 'nibabel', 'PIL', 'mrcfile', 'torch', 'onnxruntime', 'PySide6'))\n"
        "print(names, heavy)\n"
    )
    args = [str(png), get_testdata_file("CT_small.dcm"), str(nifti_phantom.path)]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['image', 'dicom', 'nifti'] []"
