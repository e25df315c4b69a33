"""Registers the built-in loaders through the same hook third parties use.

Importing this module is cheap: the loader modules import pydicom, nibabel,
Pillow and mrcfile only inside their ``load`` functions.
"""

from __future__ import annotations

from liverseg_studio.plugins import hookimpl


@hookimpl
def liverseg_register_loaders(registry) -> None:
    """Register ``image``, ``dicom``, ``dicomdir``, ``dicom-series``, ``nifti`` and ``mrc``."""
    from liverseg_studio.loaders import dicom, dicom_series, dicomdir, image, mrc, nifti
    from liverseg_studio.plugins.registry import LoaderSpec

    registry.add(
        LoaderSpec(
            name=image.NAME,
            load=image.load,
            sniff=image.sniff,
            extensions=image.EXTENSIONS,
            description="2D image slice (JPG, PNG, BMP, TIFF; 8-bit grey or windowed RGB)",
            priority=10,
        )
    )
    registry.add(
        LoaderSpec(
            name=dicom.NAME,
            load=dicom.load,
            sniff=dicom.sniff,
            extensions=dicom.EXTENSIONS,
            description="single DICOM CT image",
            priority=20,
        )
    )
    registry.add(
        LoaderSpec(
            name=dicomdir.NAME,
            load=dicomdir.load,
            sniff=dicomdir.sniff,
            extensions=dicomdir.EXTENSIONS,
            description="DICOMDIR of a CD, DVD or USB stick (the series it lists)",
            priority=30,
        )
    )
    registry.add(
        LoaderSpec(
            name=dicom_series.NAME,
            load=dicom_series.load,
            sniff=dicom_series.sniff,
            extensions=(),
            description="folder holding a DICOM CT series",
            reads_directories=True,
            priority=0,
        )
    )
    registry.add(
        LoaderSpec(
            name=nifti.NAME,
            load=nifti.load,
            sniff=nifti.sniff,
            extensions=nifti.EXTENSIONS,
            description="NIfTI volume (.nii, .nii.gz)",
            priority=20,
        )
    )
    registry.add(
        LoaderSpec(
            name=mrc.NAME,
            load=mrc.load,
            sniff=mrc.sniff,
            extensions=mrc.EXTENSIONS,
            description="MRC volume (e.g. LiTS case 117)",
            priority=20,
        )
    )
