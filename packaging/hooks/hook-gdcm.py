"""PyInstaller hook for python-gdcm (pydicom's GDCM pixel-data decoder: JPEG, JPEG-LS, JPEG 2000).

``gdcm.py`` loads the SWIG module and the GDCM shared libraries from the ``_gdcm`` package
next to it and points GDCM at its XML dictionaries there (``GDCM_RESOURCES_PATH``): the
libraries and the data files are collected from that package.  Nothing happens when
python-gdcm is not installed (pydicom then reports the gdcm decoder unavailable).
"""

from PyInstaller.utils.hooks import (can_import_module, collect_data_files, collect_dynamic_libs,
                                     collect_submodules, copy_metadata)

datas, binaries, hiddenimports = [], [], []
if can_import_module("_gdcm"):
    datas += collect_data_files("_gdcm")
    binaries += collect_dynamic_libs("_gdcm", search_patterns=["lib*.so", "lib*.so.*", "*.dll", "*.dylib"])
    hiddenimports += collect_submodules("_gdcm")
try:
    datas += copy_metadata("python-gdcm")
except Exception:  # noqa: BLE001 - metadata missing: pydicom only imports gdcm
    pass
