"""The overlay colours and display names of the label classes (one place).

The CLI's montage/overlay PNGs and the studio both use these, so a liver is
the same colour everywhere.  The colours are from the Okabe-Ito palette
(distinguishable with the common colour-vision deficiencies): liver bluish
green, tumour vermillion.
"""

from __future__ import annotations

import numpy as np

from liverseg_studio.core.volume import Label

#: RGB 0..255 of each foreground label.
LIVER_COLOUR: tuple[int, int, int] = (0, 158, 115)
TUMOUR_COLOUR: tuple[int, int, int] = (213, 94, 0)

LABEL_COLOURS: dict[Label, tuple[int, int, int]] = {
    Label.LIVER: LIVER_COLOUR,
    Label.TUMOUR: TUMOUR_COLOUR,
}

#: Display names, in label order (background included).
LABEL_NAMES: dict[Label, str] = {lab: lab.display_name for lab in Label}

#: Default opacity of the overlay.
DEFAULT_ALPHA: float = 0.45


def hex_colour(label: Label | int) -> str:
    """``#rrggbb`` of a foreground label (for Qt style sheets, SVG, HTML)."""
    r, g, b = LABEL_COLOURS[Label(label)]
    return f"#{r:02x}{g:02x}{b:02x}"


def overlay_rgb(image: np.ndarray, labels: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Blend label colours over a grey (y, x) or RGB (y, x, 3) uint8 image.

    Returns a new uint8 (y, x, 3) image; background pixels are unchanged.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        rgb = np.repeat(img[..., None], 3, axis=-1).astype(np.float32)
    elif img.ndim == 3 and img.shape[-1] == 3:
        rgb = img.astype(np.float32)
    else:
        raise ValueError(f"expected a (y, x) or (y, x, 3) image, got shape {img.shape}")
    lab = np.asarray(labels)
    if lab.shape != rgb.shape[:2]:
        raise ValueError(f"labels shape {lab.shape} does not match image shape {rgb.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    for label, colour in LABEL_COLOURS.items():
        sel = lab == int(label)
        if np.any(sel):
            rgb[sel] = (1.0 - alpha) * rgb[sel] + alpha * np.asarray(colour, dtype=np.float32)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
