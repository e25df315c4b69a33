"""PyInstaller hook for pydicom 3 (replaces pyinstaller-hooks-contrib's hook-pydicom, which it extends).

* the data dictionaries: ``_dicom_dict``, ``_private_dict`` and ``_uid_dict`` are plain modules
  imported by ``pydicom.datadict``/``pydicom.uid``; listed here so that a lazy import can
  never lose them;
* the pixel-data handlers: pydicom picks decoders/encoders by name
  (``pydicom.pixels.decoders.*``, ``pydicom.pixels.encoders.*`` and the 2.x-style
  ``pydicom.pixel_data_handlers.*``), so every one of them is collected; a decoder whose library
  (pylibjpeg, python-gdcm, pyjpegls) is not installed reports itself unavailable at run time, and the
  library's own hook (hook-pylibjpeg.py, hook-gdcm.py) collects it where it is installed;
* the data files that the contrib hook collects: character sets, palettes, and the
  ``urls.json``/``hashes.json`` that ``pydicom.examples`` (imported by ``import pydicom``)
  reads; pydicom's test files stay out.
"""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

hiddenimports = ["pydicom._dicom_dict", "pydicom._private_dict", "pydicom._uid_dict"]
hiddenimports += collect_submodules("pydicom.pixels")
hiddenimports += collect_submodules("pydicom.pixel_data_handlers")
hiddenimports += collect_submodules("pydicom.encoders")

datas = collect_data_files("pydicom.data", includes=["charset_files/*", "palettes/*", "urls.json", "hashes.json"])
datas += copy_metadata("pydicom")
