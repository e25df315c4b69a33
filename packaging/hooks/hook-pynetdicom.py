"""PyInstaller hook for pynetdicom (DICOM networking: C-ECHO/C-FIND/C-MOVE/C-STORE with a PACS).

pynetdicom picks its service classes and the SOP classes it offers by name at run time: every
submodule except its test suite and the example command-line apps is collected, with the
distribution metadata.
"""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

hiddenimports = collect_submodules(
    "pynetdicom", filter=lambda name: not any(part in ("tests", "apps", "benchmarks") for part in name.split("."))
)
datas = copy_metadata("pynetdicom") + collect_data_files("pynetdicom", excludes=["tests/**", "apps/**"])
