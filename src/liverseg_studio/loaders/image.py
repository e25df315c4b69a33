"""2D image slices: JPG, PNG, BMP, TIFF (Pillow).

* 8-bit grey (or RGB whose three channels are equal, as many tools save grey)
  becomes a one-slice ``Intensity.DISPLAY8`` volume; ``hu_range`` is
  ``LoadOptions.input_window`` (grey 0 -> LOW HU, 255 -> HIGH HU), default
  ``(0, 255)``, the grey = HU convention of the LiTS/MSD training slices.
* RGB whose channels differ is the paper's 3-channel windowed image and becomes
  ``Intensity.WINDOWED_RGB`` (z, y, x, 3), passed to the model unchanged.
* Pixel size is unknown: ``spacing_known=False`` and an identity affine.

16-bit and floating-point images, multi-page TIFFs, images under 8x8 pixels,
truncated or corrupt files are refused with a :class:`LoaderError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from liverseg_studio.core.errors import LoaderError
from liverseg_studio.core.volume import Intensity, Volume
from liverseg_studio.loaders._common import (
    quiet,
    MAX_IMAGE_PIXELS,
    check_memory,
    check_side,
    human_bytes,
    require_nonempty,
    sniff_by,
)

NAME = "image"
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
FORMATS = ("png", "jpeg", "bmp", "tiff")

#: RGB counts as grey when the channels differ by at most this on average ...
_GREY_MEAN_DIFF = 1.0
#: ... and 99.9 % of the pixels differ by at most this (JPEG chroma noise).
_GREY_P999_DIFF = 6


def sniff(path: Path, head: bytes) -> bool:
    """PNG/JPEG/BMP/TIFF magic, or one of the image extensions when the magic is unknown."""
    return sniff_by(path, head, FORMATS, EXTENSIONS)


def _channels_equal(rgb: np.ndarray) -> bool:
    a = rgb.astype(np.int16)
    d = np.maximum(np.abs(a[..., 0] - a[..., 1]), np.abs(a[..., 1] - a[..., 2]))
    if float(d.mean()) > _GREY_MEAN_DIFF:
        return False
    return float(np.quantile(d, 0.999)) <= _GREY_P999_DIFF


@quiet
def load(path: Path, options) -> Volume:
    """Read one 2D image as a one-slice :class:`Volume` (see the module docstring)."""
    path = Path(path)
    size = require_nonempty(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            fmt = im.format or "image"
            width, height = (int(v) for v in im.size)
            mode = im.mode
            n_frames = int(getattr(im, "n_frames", 1) or 1)
            check_side(path, height, width)
            if width * height > MAX_IMAGE_PIXELS:
                raise LoaderError(
                    path, f"{fmt} image of {width}x{height} pixels is larger than any CT slice (limit {MAX_IMAGE_PIXELS} pixels)"
                )
            if fmt == "JPEG":
                # every 8x8 block costs at least one bit (its DC Huffman code); libjpeg
                # silently pads missing data with grey, so check the size up front
                blocks = ((width + 7) // 8) * ((height + 7) // 8)
                if size * 16 < blocks:
                    raise LoaderError(
                        path, f"JPEG data is truncated: {size} bytes cannot hold a {width}x{height} image"
                    )
            bands = len(im.getbands()) if mode not in ("P", "PA") else 4
            check_memory(path, width * height * max(bands, 1) * 4, options.max_bytes)
            if n_frames > 1:
                raise LoaderError(
                    path, f"multi-page {fmt} ({n_frames} pages) is not supported; use DICOM or NIfTI for volumes"
                )
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F") or mode.startswith("I;"):
                raise LoaderError(
                    path,
                    f"{fmt} image has {mode} pixels (16-bit or float); only 8-bit grey or RGB images are supported "
                    "(use DICOM or NIfTI for HU data)",
                )
            im.load()  # decode now: truncated data fails here
            if mode in ("1", "L"):
                grey = np.asarray(im.convert("L"), dtype=np.uint8)
                rgb = None
            elif mode in ("LA", "La"):
                grey = np.asarray(im.getchannel(0), dtype=np.uint8)
                rgb = None
            else:  # RGB, RGBA, P, PA, CMYK, YCbCr, LAB, HSV ...
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
                grey = None
    except LoaderError:
        raise
    except UnidentifiedImageError:
        raise LoaderError(path, f"not a readable image ({size} bytes; unknown or corrupt format)") from None
    except MemoryError:
        raise LoaderError(path, "not enough memory to decode this image") from None
    except Image.DecompressionBombError as exc:  # pragma: no cover - guarded above
        raise LoaderError(path, f"image too large: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, TypeError, struct.error ...
        text = str(exc)
        if "truncated" in text or isinstance(exc, EOFError):
            reason = f"image data is truncated or corrupt ({human_bytes(size)} file): {text}"
        else:
            reason = f"corrupt image: {type(exc).__name__}: {text}"
        raise LoaderError(path, reason) from None

    meta = {"format": fmt, "mode": mode}
    if rgb is not None and rgb.ndim == 3 and rgb.shape[-1] == 3 and not _channels_equal(rgb):
        arr = np.ascontiguousarray(rgb[None])
        return Volume(
            array=arr,
            affine=np.eye(4),
            intensity=Intensity.WINDOWED_RGB,
            hu_range=None,
            source=str(path),
            loader=NAME,
            spacing_known=False,
            meta={**meta, "channels": "windowed RGB (channels differ)"},
        )
    if grey is None:
        assert rgb is not None
        grey = np.rint(rgb.astype(np.float32).mean(axis=-1)).astype(np.uint8)
        meta["channels"] = "RGB with equal channels, read as grey"
    if grey.ndim != 2:
        raise LoaderError(path, f"unexpected image shape {grey.shape}")
    hu_range = tuple(options.input_window) if options.input_window is not None else (0.0, 255.0)
    return Volume(
        array=np.ascontiguousarray(grey[None]),
        affine=np.eye(4),
        intensity=Intensity.DISPLAY8,
        hu_range=hu_range,
        source=str(path),
        loader=NAME,
        spacing_known=False,
        meta=meta,
    )
