"""PyInstaller hook for pylibjpeg (JPEG, JPEG-LS, JPEG 2000 and RLE decoding of DICOM pixel data).

pylibjpeg finds its decoders (pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle) through
entry points (``importlib.metadata``), which import analysis cannot follow: every plugin of every
pylibjpeg entry-point group is collected with its metadata (``collect_entry_point``).
"""

from PyInstaller.utils.hooks import collect_entry_point, copy_metadata

try:
    from pylibjpeg.utils import DECODER_ENTRY_POINTS, ENCODER_ENTRY_POINTS

    GROUPS = sorted(set(DECODER_ENTRY_POINTS.values()) | set(ENCODER_ENTRY_POINTS.values()))
except ImportError:  # an older pylibjpeg: the groups it has always had
    GROUPS = ["pylibjpeg.jpeg_decoders", "pylibjpeg.jpeg_2000_decoders", "pylibjpeg.jpeg_ls_decoders",
              "pylibjpeg.pixel_data_decoders", "pylibjpeg.pixel_data_encoders"]
GROUPS = sorted(set(GROUPS) | {"pylibjpeg.pixel_data_decoders", "pylibjpeg.pixel_data_encoders"})

datas = copy_metadata("pylibjpeg")
hiddenimports = []
for group in GROUPS:
    group_datas, group_hidden = collect_entry_point(group)
    datas += [d for d in group_datas if d not in datas]
    hiddenimports += [h for h in group_hidden if h not in hiddenimports]
