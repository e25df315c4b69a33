"""Synthetic CT phantoms and writers for NIfTI and DICOM test files.

Everything here is synthetic (no real patient data).  Import with
``from helpers.phantom import make_phantom, write_ct_series, ct_dataset``
(pytest puts ``tests/`` on ``sys.path``); the fixtures ``phantom``,
``nifti_phantom`` and ``dicom_series_phantom`` live in ``tests/conftest.py``.

Geometry follows DEVELOPERS.md: arrays are ``[z, y, x]``, affines map voxel
index ``(x, y, z, 1)`` to RAS millimetres, DICOM is LPS and converted with
``diag(-1, -1, 1, 1)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

#: HU of the phantom's tissues.
AIR_HU = -1000
BODY_HU = 0
LIVER_HU = 60
TUMOUR_HU = 20

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Phantom:
    """A synthetic abdomen: HU volume, ground-truth labels and geometry.

    ``hu`` is int16-valued float32 ``[z, y, x]`` (integers, so it survives a
    DICOM round trip exactly); ``labels`` is uint8 with 0 background, 1 liver,
    2 tumour; ``affine`` maps ``(x, y, z, 1)`` to RAS mm and is not the identity.
    """

    hu: np.ndarray
    labels: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        z, y, x = self.hu.shape
        return int(z), int(y), int(x)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(z, y, x) mm."""
        sx, sy, sz = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(sz), float(sy), float(sx)

    def volume(self, **changes):
        """The phantom as a ``liverseg_studio`` HU :class:`Volume`."""
        from liverseg_studio.core.volume import Intensity, Volume

        fields = dict(affine=self.affine, intensity=Intensity.HU, source="phantom", loader="phantom")
        fields.update(changes)
        return Volume(array=self.hu.copy(), **fields)


@dataclass(frozen=True)
class PhantomFiles:
    """A phantom written to disk: ``path`` is the image file or series folder."""

    path: Path
    labels_path: Path | None
    phantom: Phantom


def phantom_affine(
    spacing: Sequence[float] = (2.5, 0.8, 0.8), origin: Sequence[float] = (120.0, 90.0, -300.0)
) -> np.ndarray:
    """A typical RAS affine of an axial CT read from DICOM: x -> left-to-right
    flipped (``-dx``), y -> ``-dy``, z -> ``+dz``; ``spacing`` is (z, y, x) mm."""
    dz, dy, dx = (float(s) for s in spacing)
    a = np.diag([-dx, -dy, dz, 1.0])
    a[:3, 3] = origin
    return a


def make_phantom(
    shape: Sequence[int] = (12, 64, 64),
    spacing: Sequence[float] = (2.5, 0.8, 0.8),
    *,
    affine: np.ndarray | None = None,
    noise: float = 0.0,
    seed: int = 0,
    tumour: bool = True,
) -> Phantom:
    """A synthetic abdominal CT with a liver ellipsoid and a tumour sphere.

    * air -1000 HU outside an elliptic body cylinder of ~0 HU;
    * a liver ellipsoid of ~60 HU in the patient's right half of the body
      (label 1), spanning the middle ~70 % of the slices;
    * a tumour sphere of ~20 HU inside the liver (label 2) when ``tumour``;
    * optional Gaussian noise (``noise`` HU std, seeded), rounded to integers.

    ``shape`` is (z, y, x); ``spacing`` (z, y, x) mm gives the default
    non-identity affine (:func:`phantom_affine`) unless ``affine`` is given.
    """
    nz, ny, nx = (int(s) for s in shape)
    if affine is None:
        affine = phantom_affine(spacing)
    z, y, x = np.meshgrid(
        (np.arange(nz) + 0.5) / nz, (np.arange(ny) + 0.5) / ny, (np.arange(nx) + 0.5) / nx, indexing="ij"
    )
    hu = np.full((nz, ny, nx), AIR_HU, dtype=np.float32)
    labels = np.zeros((nz, ny, nx), dtype=np.uint8)
    body = ((y - 0.5) / 0.42) ** 2 + ((x - 0.5) / 0.46) ** 2 <= 1.0
    hu[body] = BODY_HU
    # liver: an ellipsoid centred left of the image centre in x (patient right
    # with the default affine's -dx column), reaching ~70 % of the slices.
    liver = ((z - 0.5) / 0.36) ** 2 + ((y - 0.47) / 0.25) ** 2 + ((x - 0.36) / 0.2) ** 2 <= 1.0
    hu[liver] = LIVER_HU
    labels[liver] = 1
    if tumour:
        # a sphere of radius ~ a third of the liver's in-plane half-axis, in mm-ish units
        ry = 0.08
        rz = ry * (ny * float(np.linalg.norm(affine[:3, 1]))) / max(nz * float(np.linalg.norm(affine[:3, 2])), 1e-6)
        rz = max(rz, 0.6 / nz)  # at least ~one slice thick
        tum = ((z - 0.5) / rz) ** 2 + ((y - 0.47) / ry) ** 2 + ((x - 0.36) / ry) ** 2 <= 1.0
        tum &= liver
        hu[tum] = TUMOUR_HU
        labels[tum] = 2
    if noise > 0:
        rng = np.random.default_rng(seed)
        hu = hu + rng.normal(0.0, noise, size=hu.shape).astype(np.float32)
    hu = np.rint(np.clip(hu, -1024, 3071)).astype(np.float32)
    return Phantom(hu=hu, labels=labels, affine=np.asarray(affine, dtype=np.float64))


# -- writers --------------------------------------------------------------------
def write_nifti(path: Path, array_zyx: np.ndarray, affine: np.ndarray, dtype: str | None = None) -> Path:
    """Write ``array_zyx`` as NIfTI (``data = array.T``) with ``affine``; returns ``path``."""
    import nibabel as nib

    data = np.asarray(array_zyx)
    if dtype is not None:
        data = data.astype(dtype)
    img = nib.Nifti1Image(np.ascontiguousarray(data.T), np.asarray(affine, dtype=np.float64))
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))
    return Path(path)


def _uid() -> str:
    from pydicom.uid import generate_uid

    return generate_uid()


def ct_dataset(
    pixels_hu: np.ndarray,
    *,
    position_lps: Sequence[float] = (0.0, 0.0, 0.0),
    orientation_lps: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    pixel_spacing: Sequence[float] = (0.8, 0.8),
    slice_thickness: float = 2.5,
    instance_number: int = 1,
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_uid: str | None = None,
    modality: str = "CT",
    series_description: str = "phantom",
    intercept: float = -1024.0,
    slope: float = 1.0,
):
    """A complete single-frame CT Image Storage dataset (explicit VR little endian).

    ``pixels_hu`` is (rows=y, columns=x) in HU; stored as int16
    ``(HU - intercept) / slope``.  ``pixel_spacing`` is DICOM's
    (row spacing = dy, column spacing = dx).  The returned dataset carries
    everything highdicom needs for a SEG referencing it.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    sop_uid = _uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.PatientName = "Phantom^Liver"
    ds.PatientID = "PHANTOM001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid or _uid()
    ds.SeriesInstanceUID = series_uid or _uid()
    ds.FrameOfReferenceUID = frame_uid or _uid()
    ds.StudyID = "1"
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "A1"
    ds.ReferringPhysicianName = ""
    ds.SeriesNumber = 1
    ds.SeriesDescription = series_description
    ds.Manufacturer = "LiverSeg test phantom"
    ds.InstanceNumber = int(instance_number)
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [float(v) for v in position_lps]
    ds.ImageOrientationPatient = [float(v) for v in orientation_lps]
    ds.PixelSpacing = [float(v) for v in pixel_spacing]
    ds.SliceThickness = float(slice_thickness)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = 120
    px = np.asarray(pixels_hu, dtype=np.float64)
    stored = np.rint((px - intercept) / slope).astype(np.int16)
    ds.Rows, ds.Columns = (int(v) for v in stored.shape)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = float(intercept)
    ds.RescaleSlope = float(slope)
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.PixelData = stored.tobytes()
    return ds


def write_ct_series(
    folder: Path,
    hu: np.ndarray,
    affine_ras: np.ndarray,
    *,
    shuffle_names: bool = True,
    seed: int = 0,
    series_uid: str | None = None,
    study_uid: str | None = None,
    modality: str = "CT",
    series_description: str = "phantom",
) -> list[Path]:
    """Write ``hu`` ``[z, y, x]`` as a CT series whose geometry is ``affine_ras``.

    Orientation, positions and pixel spacing are derived from the affine
    (converted to LPS), so any affine with orthogonal in-plane columns works,
    oblique ones included.  With ``shuffle_names`` the file names do not follow
    the slice order (loaders must sort by position).  Returns the written paths
    in slice order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lps = LPS_TO_RAS @ np.asarray(affine_ras, dtype=np.float64)  # the same matrix converts back
    col_x, col_y = lps[:3, 0], lps[:3, 1]
    dx, dy = float(np.linalg.norm(col_x)), float(np.linalg.norm(col_y))
    orientation = list(col_x / dx) + list(col_y / dy)
    slice_step = float(np.linalg.norm(lps[:3, 2]))
    series_uid = series_uid or _uid()
    study_uid = study_uid or _uid()
    frame_uid = _uid()
    nz = hu.shape[0]
    names = [f"slice_{i:03d}.dcm" for i in range(nz)]
    if shuffle_names:
        random.Random(seed).shuffle(names)
    paths = []
    for k in range(nz):
        pos = (lps @ np.array([0.0, 0.0, float(k), 1.0]))[:3]
        ds = ct_dataset(
            hu[k],
            position_lps=pos,
            orientation_lps=orientation,
            pixel_spacing=(dy, dx),
            slice_thickness=slice_step,
            instance_number=k + 1,
            series_uid=series_uid,
            study_uid=study_uid,
            frame_uid=frame_uid,
            modality=modality,
            series_description=series_description,
        )
        path = folder / names[k]
        ds.save_as(str(path), enforce_file_format=True)
        paths.append(path)
    return paths
