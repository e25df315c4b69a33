"""PyInstaller hook for nibabel (the NIfTI loader and the mask export).

nibabel's modules are found by import analysis (``nibabel/__init__`` imports its image
classes); what it cannot see is the distribution metadata (version checks) and what must
stay out: nibabel's test suites and benchmarks.  nibabel opens ``.nii.gz`` with the standard
library's gzip, or ``indexed_gzip`` when that is installed (then it is bundled too).
"""

from PyInstaller.utils.hooks import can_import_module, copy_metadata

datas = copy_metadata("nibabel")
hiddenimports = ["nibabel.openers", "nibabel.nifti1", "nibabel.nifti2", "nibabel.loadsave", "nibabel.imageclasses"]
if can_import_module("indexed_gzip"):
    hiddenimports.append("indexed_gzip")
excludedimports = ["nibabel.tests", "nibabel.benchmarks"]
