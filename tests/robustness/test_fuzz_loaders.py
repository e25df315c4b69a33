"""Fuzzing the built-in loaders (issue 8).

Every input must end in a :class:`Volume` or a :class:`LoaderError`: never
another exception, never a hang (> 5 s per case), never a memory blow-up
(the loaders estimate decoded sizes from headers and refuse beyond
``LoadOptions.max_bytes`` *before* allocating; a "not enough memory" error
would mean the guard missed, so it counts as a failure here).

* ``test_mutated_bytes``: a seeded mutation engine (bit flips, interesting
  integers written into header fields, truncation, chunk deletion/duplication,
  random insertion) applied to valid seed files of every format, fed to each
  loader's ``load`` directly (not through the registry, which would turn any
  exception into a LoaderError and hide bugs), plus every built-in ``sniff``.
* ``test_dicom_tag_values``: hypothesis draws random values for the DICOM
  attributes the loaders read (missing PixelSpacing, odd BitsAllocated,
  compressed transfer syntaxes without a decoder, huge Rows/Columns with tiny
  pixel data, bad rescale ...).
* ``test_dicom_series_folders``: seeded series folders with inconsistent
  positions, orientations, sizes, modalities and corrupted files.
* ``test_huge_dimensions_in_tiny_files``: hand-made headers of every format
  that claim gigapixel images in a few hundred bytes, with the default limit.

Cases per loader: ``LIVERSEG_FUZZ_CASES`` (default 2000; ``make fuzz`` runs
more).  The counts are printed in the terminal summary.
"""

from __future__ import annotations

import gzip
import io
import random
import resource
import shutil
import signal
import struct
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from helpers.phantom import ct_dataset, make_phantom
from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.volume import Intensity, Volume
from liverseg_studio.loaders import dicom, dicom_series, image, mrc, nifti
from liverseg_studio.loaders._common import MIN_SIDE
from liverseg_studio.plugins.registry import LoadOptions

#: The fuzzed loaders get a 64 MiB limit: anything bigger is refused by the guard.
FUZZ_OPTIONS = LoadOptions(max_bytes=64 * 1024**2)
CASE_TIMEOUT_S = 5.0
FUZZ_CASES_ENV = "LIVERSEG_FUZZ_CASES"
#: Extra seed text for the mutation engines (``make fuzz FUZZ_SEED=...`` explores other inputs).
FUZZ_SEED_ENV = "LIVERSEG_FUZZ_SEED"

# pydicom and nibabel warn about every odd value they read or write; the outcome is what counts
pytestmark = pytest.mark.filterwarnings("ignore")
#: Peak resident memory may grow by at most this much over a whole fuzz test.
MAX_RSS_GROWTH_MB = 600

LOADERS: dict[str, Callable] = {
    "image": image.load,
    "dicom": dicom.load,
    "nifti": nifti.load,
    "mrc": mrc.load,
    "dicom-series": dicom_series.load,
}
SNIFFS = (image.sniff, dicom.sniff, nifti.sniff, mrc.sniff)


def fuzz_cases() -> int:
    """Cases per loader: ``LIVERSEG_FUZZ_CASES`` (default 2000)."""
    import os

    return max(1, int(os.environ.get(FUZZ_CASES_ENV, "2000")))


def fuzz_seed(name: str) -> str:
    import os

    return f"liverseg-fuzz-{name}{os.environ.get(FUZZ_SEED_ENV, '')}"


class Hang(BaseException):
    """Raised by the alarm when one case runs longer than CASE_TIMEOUT_S."""


def _alarm(signum, frame):
    raise Hang()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


class Runner:
    """Runs cases against one loader and records the outcome."""

    def __init__(self, name: str, report: dict, options: LoadOptions = FUZZ_OPTIONS) -> None:
        self.name = name
        self.load = LOADERS[name]
        self.options = options
        self.stats = report.setdefault(name, {"cases": 0, "volumes": 0, "errors": 0, "slowest_s": 0.0})
        self.failures: list[str] = []
        self.last = ""
        self.rss0 = _rss_mb()

    def __enter__(self) -> "Runner":
        self._old = signal.signal(signal.SIGALRM, _alarm)
        return self

    def __exit__(self, *exc) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._old)
        growth = _rss_mb() - self.rss0
        self.stats["rss_growth_mb"] = max(self.stats.get("rss_growth_mb", 0.0), growth)

    def case(self, path: Path, label: str) -> None:
        self.stats["cases"] += 1
        if path.is_file():
            head = path.read_bytes()[:1024]
            for sniff in SNIFFS:
                try:
                    result = sniff(path, head)
                except Exception as exc:  # noqa: BLE001
                    self.failures.append(f"{label}: {sniff.__module__}.sniff raised {type(exc).__name__}: {exc}")
                    continue
                if not isinstance(result, bool):
                    self.failures.append(f"{label}: {sniff.__module__}.sniff returned {result!r}")
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT_S)
        try:
            volume = self.load(path, self.options)
        except LoaderError as exc:
            self.last = "error"
            self.stats["errors"] += 1
            if "not enough memory" in exc.reason:
                self.failures.append(f"{label}: memory guard missed: {exc}")
            if not exc.reason or str(path.name) not in str(exc) and str(path) not in str(exc):
                self.failures.append(f"{label}: LoaderError does not name the file: {exc}")
        except Hang:
            self.last = "hang"
            self.failures.append(f"{label}: hang (> {CASE_TIMEOUT_S} s)")
        except Exception as exc:  # noqa: BLE001 - the point of the test
            self.last = "crash"
            self.failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
        else:
            self.last = "volume"
            self.stats["volumes"] += 1
            problem = _check_volume(volume)
            if problem:
                self.failures.append(f"{label}: bad Volume: {problem}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        self.stats["slowest_s"] = max(self.stats["slowest_s"], time.perf_counter() - t0)

    def check(self) -> None:
        growth = _rss_mb() - self.rss0
        assert not self.failures, f"{len(self.failures)} failing cases, e.g.:\n" + "\n".join(self.failures[:15])
        assert growth < MAX_RSS_GROWTH_MB, f"peak RSS grew by {growth:.0f} MB"


def _check_volume(v: object) -> str:
    if not isinstance(v, Volume):
        return f"returned {type(v).__name__}"
    if v.array.nbytes > FUZZ_OPTIONS.max_bytes:
        return f"{v.array.nbytes} bytes exceed the limit"
    if min(v.shape[1:]) < MIN_SIDE:
        return f"tiny image {v.shape}"
    if v.intensity is not Intensity.WINDOWED_RGB and not np.all(np.isfinite(v.array)):
        return "non-finite voxels"
    if not np.all(np.isfinite(v.affine)):
        return "non-finite affine"
    return ""


# -- seeds -------------------------------------------------------------------------------
def _image_seeds() -> list[tuple[str, bytes]]:
    from PIL import Image

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (24, 20), dtype=np.uint8)
    rgb = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    seeds = []
    for ext, fmt, arr, kw in (
        ("png", "PNG", grey, {}),
        ("png", "PNG", rgb, {}),
        ("jpg", "JPEG", grey, {"quality": 90}),
        ("jpg", "JPEG", rgb, {"quality": 90, "progressive": True}),
        ("bmp", "BMP", grey, {}),
        ("tif", "TIFF", grey, {}),
        ("tif", "TIFF", rgb, {"compression": "tiff_lzw"}),
    ):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt, **kw)
        seeds.append((ext, buf.getvalue()))
    return seeds


def _dicom_bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _dicom_seeds() -> list[tuple[str, bytes]]:
    from pydicom.data import get_testdata_file

    ph = make_phantom(shape=(1, 16, 16))
    explicit = _dicom_bytes(ct_dataset(ph.hu[0]))
    ds = ct_dataset(ph.hu[0])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.clip(ph.hu[0] + 1024, 0, 255).astype(np.uint8).tobytes()
    eight_bit = _dicom_bytes(ds)
    return [("dcm", explicit), ("dcm", eight_bit), ("dcm", Path(get_testdata_file("CT_small.dcm")).read_bytes())]


def _nifti_seeds() -> list[tuple[str, bytes]]:
    import nibabel as nib

    ph = make_phantom(shape=(4, 12, 10))
    out = []
    for cls, dtype, gz in ((nib.Nifti1Image, np.int16, False), (nib.Nifti1Image, np.float32, True), (nib.Nifti2Image, np.int16, False)):
        img = cls(ph.hu.T.astype(dtype), ph.affine)
        raw = img.to_bytes()
        out.append(("nii.gz", gzip.compress(raw, compresslevel=1)) if gz else ("nii", raw))
    return out


def _mrc_seeds(tmp: Path) -> list[tuple[str, bytes]]:
    import mrcfile

    ph = make_phantom(shape=(12, 10, 16))  # file (sections, rows, cols); the loader returns data.T
    out = []
    for dtype, vs in ((np.float32, 0.0), (np.int16, 1.5)):
        p = tmp / "seed.mrc"
        with mrcfile.new(str(p), overwrite=True) as m:
            m.set_data(ph.hu.astype(dtype))
            m.voxel_size = vs
        out.append(("mrc", p.read_bytes()))
    return out


# -- mutation engine ---------------------------------------------------------------------------
INTERESTING = [0, 1, 2, 7, 8, 16, 255, 256, 348, 540, 1023, 1024, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF0, 100000, 65535 * 65535]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation stack of ``data`` (header region favoured)."""
    b = bytearray(data)
    if rng.random() < 0.15:  # plain truncation
        return bytes(b[: rng.randrange(0, max(len(b), 1))])
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        header = min(len(b), 1100)
        pos = rng.randrange(header) if rng.random() < 0.75 else rng.randrange(len(b))
        op = rng.randrange(8)
        if op == 0:  # bit flip
            b[pos] ^= 1 << rng.randrange(8)
        elif op == 1:  # random byte
            b[pos] = rng.randrange(256)
        elif op == 2:  # interesting integer, random width and byte order
            width = rng.choice((1, 2, 4, 8))
            value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
            b[pos : pos + width] = value.to_bytes(width, rng.choice(("little", "big")))
        elif op == 3:  # delete a chunk
            del b[pos : pos + rng.randint(1, 64)]
        elif op == 4:  # duplicate a chunk
            chunk = b[pos : pos + rng.randint(1, 64)]
            b[pos:pos] = chunk
        elif op == 5:  # insert random bytes
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 6:  # zero a range
            n = rng.randint(1, 32)
            b[pos : pos + n] = bytes(min(n, len(b) - pos))
        else:  # truncate
            del b[rng.randrange(len(b)) :]
    return bytes(b)


@pytest.mark.parametrize("loader", ["image", "dicom", "nifti", "mrc"])
def test_mutated_bytes(loader, tmp_path, fuzz_report):
    seeds = {
        "image": _image_seeds,
        "dicom": _dicom_seeds,
        "nifti": _nifti_seeds,
        "mrc": lambda: _mrc_seeds(tmp_path),
    }[loader]()
    n = fuzz_cases()
    rng = random.Random(fuzz_seed(loader))
    # the unmutated seeds load
    for i, (ext, data) in enumerate(seeds):
        p = tmp_path / f"seed{i}.{ext}"
        p.write_bytes(data)
        assert isinstance(LOADERS[loader](p, FUZZ_OPTIONS), Volume), f"seed {i} of {loader} does not load"
    with Runner(loader, fuzz_report) as run:
        for i in range(n):
            ext, data = seeds[i % len(seeds)]
            path = tmp_path / f"case.{ext}"
            path.write_bytes(mutate(data, rng))
            run.case(path, f"{loader} case {i} (seed {i % len(seeds)})")
    print(f"{loader}: {n} mutated-byte cases")
    run.check()


# -- DICOM attributes (hypothesis) ----------------------------------------------------------------
def _dicom_tag_strategy():
    from hypothesis import strategies as st
    from pydicom import uid

    number = st.one_of(
        st.integers(-(2**31), 2**31 - 1).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda f: f"{f:.6g}"),
        st.sampled_from(["", "abc", "1e400", "-0", "0", "nan", "inf", "1\\2", " 7 "]),
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "Rows": st.integers(0, 65535),
            "Columns": st.integers(0, 65535),
            "BitsAllocated": st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64, 255]),
            "BitsStored": st.integers(0, 64),
            "HighBit": st.integers(0, 64),
            "PixelRepresentation": st.integers(0, 3),
            "SamplesPerPixel": st.integers(0, 4),
            "NumberOfFrames": st.sampled_from(["0", "1", "2", "-3", "x", "100000"]),
            "PhotometricInterpretation": st.sampled_from(
                ["MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL", "", "bogus"]
            ),
            "Modality": st.sampled_from(["CT", "MR", "", "ct", "SEG", "OT"]),
            "RescaleSlope": number,
            "RescaleIntercept": number,
            "PixelSpacing": st.lists(number, min_size=0, max_size=4),
            "ImageOrientationPatient": st.lists(number, min_size=0, max_size=7),
            "ImagePositionPatient": st.lists(number, min_size=0, max_size=4),
            "SliceThickness": number,
            "TransferSyntaxUID": st.sampled_from(
                [uid.JPEG2000Lossless, uid.JPEGBaseline8Bit, uid.JPEGLSLossless, uid.RLELossless,
                 uid.DeflatedExplicitVRLittleEndian, uid.ExplicitVRBigEndian, uid.ImplicitVRLittleEndian,
                 "1.2.3.4.5.6.7", uid.HTJ2KLossless if hasattr(uid, "HTJ2KLossless") else uid.JPEG2000]
            ),
            "PixelData": st.one_of(st.none(), st.integers(0, 2000), st.binary(min_size=0, max_size=64)),
            "delete": st.lists(
                st.sampled_from(["PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "Modality",
                                 "RescaleSlope", "RescaleIntercept", "Rows", "Columns", "BitsAllocated",
                                 "PhotometricInterpretation", "SOPInstanceUID", "SeriesInstanceUID"]),
                max_size=4,
            ),
        },
    )


_DS_KEYWORDS_VR = {
    "RescaleSlope": "DS", "RescaleIntercept": "DS", "SliceThickness": "DS",
    "PixelSpacing": "DS", "ImageOrientationPatient": "DS", "ImagePositionPatient": "DS",
}


def _apply_tags(ds, tags: dict) -> None:
    from pydicom.dataelem import DataElement
    from pydicom.datadict import tag_for_keyword

    for kw in tags.get("delete", []):
        if kw in ds:
            delattr(ds, kw)
    for kw, value in tags.items():
        if kw in ("delete", "PixelData", "TransferSyntaxUID"):
            continue
        try:
            if kw in _DS_KEYWORDS_VR:
                raw = "\\".join(value) if isinstance(value, list) else value
                # write the raw text without validation, as a broken scanner would
                ds[tag_for_keyword(kw)] = DataElement(tag_for_keyword(kw), "LO" if len(raw) <= 64 else "LT", raw)
            else:
                setattr(ds, kw, value)
        except Exception:  # noqa: BLE001 - pydicom rejects the value itself: store it as raw text
            ds[tag_for_keyword(kw)] = DataElement(tag_for_keyword(kw), "LO", str(value)[:64])
    if "TransferSyntaxUID" in tags:
        ds.file_meta.TransferSyntaxUID = tags["TransferSyntaxUID"]
    pd = tags.get("PixelData", ...)
    if pd is None:
        if "PixelData" in ds:
            del ds.PixelData
    elif isinstance(pd, int):  # truncated or over-long pixel data (kept even, as DICOM requires)
        data = ds.PixelData[:pd] if pd < len(ds.PixelData) else ds.PixelData + bytes(pd)
        ds.PixelData = data + b"\0" * (len(data) % 2)
    elif isinstance(pd, bytes):
        ds.PixelData = pd + b"\0" * (len(pd) % 2)
    ts = ds.file_meta.TransferSyntaxUID
    if "PixelData" in ds and ts.is_transfer_syntax and ts.is_compressed:
        # a compressed syntax needs encapsulated fragments: wrap the native bytes (undecodable)
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([bytes(ds.PixelData) or b"\0\0"])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True


def test_dicom_tag_values(tmp_path, fuzz_report):
    from hypothesis import HealthCheck, given, settings

    import pydicom

    base_bytes = _dicom_bytes(ct_dataset(make_phantom(shape=(1, 16, 16)).hu[0]))
    path = tmp_path / "tags.dcm"
    # half the budget here; test_mutated_bytes[dicom] adds the other n cases for the dicom loader
    n = (fuzz_cases() + 1) // 2
    written = {"n": 0}

    import os

    from hypothesis import seed

    extra = os.environ.get(FUZZ_SEED_ENV, "")
    with Runner("dicom", fuzz_report) as run:

        @seed(zlib.crc32(extra.encode()))
        @settings(
            max_examples=n + n // 4,  # a few drawn combinations cannot be written at all
            derandomize=not extra,  # seeded and repeatable in CI
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(tags=_dicom_tag_strategy())
        def one(tags):
            ds = pydicom.dcmread(io.BytesIO(base_bytes))
            _apply_tags(ds, tags)
            try:
                ds.save_as(str(path), enforce_file_format=False, implicit_vr=None)
            except Exception:  # noqa: BLE001 - pydicom refuses to *write* some combinations
                try:
                    path.write_bytes(_raw_write(ds))
                except Exception:  # noqa: BLE001
                    return
            written["n"] += 1
            run.case(path, f"dicom tags {tags!r:.300}")

        one()
    print(f"dicom: {written['n']} tag-value cases")
    assert written["n"] >= n
    run.check()


def _raw_write(ds) -> bytes:
    """Write ``ds`` without consistency checks (as explicit VR little endian)."""
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.filebase import DicomBytesIO

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=False)
    write_dataset(fp, ds)
    return fp.getvalue()


# -- DICOM series folders ---------------------------------------------------------------------------
def test_dicom_series_folders(tmp_path, fuzz_report):
    import pydicom
    from pydicom.uid import generate_uid

    n = fuzz_cases()
    rng = random.Random(fuzz_seed("dicom-series"))
    ph = make_phantom(shape=(4, 16, 16))
    from helpers.phantom import write_ct_series

    seed_dir = tmp_path / "seed"
    seed_paths = write_ct_series(seed_dir, ph.hu, ph.affine, shuffle_names=False)
    seed_bytes = [p.read_bytes() for p in seed_paths]
    seed_ds = [pydicom.dcmread(p) for p in seed_paths]
    folder = tmp_path / "case"

    def perturb(ds, r: random.Random) -> None:
        choice = r.randrange(12)
        if choice == 0:
            ds.ImagePositionPatient = [r.uniform(-500, 500) for _ in range(3)]
        elif choice == 1 and "ImagePositionPatient" in ds:
            del ds.ImagePositionPatient
        elif choice == 2:
            ds.ImageOrientationPatient = [r.choice([0, 1, -1, 0.5, 1e-9]) for _ in range(6)]
        elif choice == 3 and "PixelSpacing" in ds:
            del ds.PixelSpacing
        elif choice == 4:
            ds.SeriesInstanceUID = r.choice([generate_uid(), ds.SeriesInstanceUID, "1.2.3"])
        elif choice == 5:
            ds.Modality = r.choice(["MR", "CT", "SEG"])
        elif choice == 6:
            ds.Rows = r.choice([8, 16, 32, 0, 65535])
        elif choice == 7:
            ds.PixelSpacing = [r.choice([0.5, 0.8, 0, -1, 1e9]), r.choice([0.5, 0.8, 0])]
        elif choice == 8:
            ds.InstanceNumber = r.randrange(-5, 5)
        elif choice == 9:
            ds.ImagePositionPatient = list(seed_ds[0].ImagePositionPatient)  # duplicate position
        elif choice == 10:
            ds.BitsAllocated = r.choice([8, 12, 32])
        else:
            ds.PixelData = ds.PixelData[: r.randrange(len(ds.PixelData) + 1)]

    with Runner("dicom-series", fuzz_report) as run:
        for i in range(n):
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir()
            n_files = rng.randint(0, 4)
            for k in range(n_files):
                mode = rng.random()
                if mode < 0.4:
                    data = seed_bytes[k]
                elif mode < 0.7:
                    data = mutate(seed_bytes[k], rng)
                else:
                    ds = pydicom.dcmread(io.BytesIO(seed_bytes[k]))
                    for _ in range(rng.randint(1, 3)):
                        perturb(ds, rng)
                    try:
                        data = _dicom_bytes(ds)
                    except Exception:  # noqa: BLE001
                        data = _raw_write(ds)
                name = f"IM{rng.randrange(10**6):06d}" + rng.choice([".dcm", "", ".txt"])
                (folder / name).write_bytes(data)
            if rng.random() < 0.1:
                (folder / "sub").mkdir()
                (folder / "sub" / "x.dcm").write_bytes(mutate(seed_bytes[0], rng))
            run.case(folder, f"dicom-series case {i}")
    print(f"dicom-series: {n} folder cases")
    run.check()


# -- huge dimensions in tiny files (default limit) ---------------------------------------------------
def _png_header(width: int, height: int, colour: int = 0, depth: int = 8) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_header(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _bmp_header(width: int, height: int) -> bytes:
    header = struct.pack("<2sIHHI", b"BM", 54 + 100, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return header + info + b"\0" * 100


def _tiff_header(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 200), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, width * height)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0" * 100


def _nifti_header(shape: tuple[int, ...], gz: bool) -> bytes:
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.float32)
    raw = hdr.binaryblock + b"\0\0\0\0" + b"\0" * 200
    return gzip.compress(raw) if gz else raw


def _mrc_header(nx: int, ny: int, nz: int) -> bytes:
    head = bytearray(1024)
    head[0:16] = struct.pack("<4i", nx, ny, nz, 2)
    head[208:212] = b"MAP "
    head[212:214] = b"DD"
    return bytes(head) + b"\0" * 256


def _dicom_huge(rows: int, cols: int) -> bytes:
    ds = ct_dataset(np.zeros((16, 16)))
    ds.Rows, ds.Columns = rows, cols
    return _dicom_bytes(ds)


HUGE_CASES = [
    ("image", "png", lambda: _png_header(65535, 65535)),
    ("image", "png", lambda: _png_header(8000, 8000)),
    ("image", "png", lambda: _png_header(2**31 - 1, 2**31 - 1, colour=2, depth=16)),
    ("image", "jpg", lambda: _jpeg_header(65500, 65500)),
    ("image", "jpg", lambda: _jpeg_header(8000, 8000)),
    ("image", "bmp", lambda: _bmp_header(30000, 30000)),
    ("image", "bmp", lambda: _bmp_header(5000, -5000)),
    ("image", "tif", lambda: _tiff_header(60000, 60000)),
    ("image", "tif", lambda: _tiff_header(8000, 8000)),
    ("dicom", "dcm", lambda: _dicom_huge(65535, 65535)),
    ("dicom", "dcm", lambda: _dicom_huge(20000, 20000)),
    ("nifti", "nii", lambda: _nifti_header((32767, 32767, 32767), False)),
    ("nifti", "nii.gz", lambda: _nifti_header((32767, 32767, 32767), True)),
    ("nifti", "nii.gz", lambda: _nifti_header((1000, 1000, 250), True)),
    ("nifti", "nii", lambda: _nifti_header((1000, 1000, 250), False)),
    ("mrc", "mrc", lambda: _mrc_header(2**30, 2**30, 2**30)),
    ("mrc", "mrc", lambda: _mrc_header(1000, 1000, 250)),
    ("mrc", "mrc", lambda: _mrc_header(-5, 100, 100)),
]


@pytest.mark.parametrize("loader, ext, make", HUGE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(HUGE_CASES)])
def test_huge_dimensions_in_tiny_files(loader, ext, make, tmp_path, fuzz_report):
    path = tmp_path / f"huge.{ext}"
    path.write_bytes(make())
    with Runner(loader, fuzz_report, options=LoadOptions()) as run:  # default 4 GiB limit
        run.case(path, f"{loader} huge {ext}")
    run.check()
    assert run.last == "error", f"{loader} accepted a {path.stat().st_size}-byte file claiming huge dimensions"
    assert path.stat().st_size < 5000


def test_case_counts_per_loader(fuzz_report):
    """Runs last (file order): every loader got at least LIVERSEG_FUZZ_CASES cases."""
    if set(fuzz_report) != set(LOADERS):
        pytest.skip("only part of the fuzz suite ran")
    n = fuzz_cases()
    counts = {name: r["cases"] for name, r in fuzz_report.items()}
    print("fuzz cases per loader:", counts)
    assert all(c >= n for c in counts.values()), counts
