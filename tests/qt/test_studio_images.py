"""The paper's use case: one CT slice as a PNG/JPG (grey, or the 3-channel windowed image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from studio_helpers import TEST_BACKEND, open_case, run_and_wait

from liverseg_studio.core.preprocess import windowed_rgb
from liverseg_studio.core.volume import Intensity

pytestmark = pytest.mark.timeout(120)


def test_grey_png_slice(qtbot: Any, window: Any, phantom: Any, tmp_path: Path) -> None:
    from PIL import Image

    z = phantom.shape[0] // 2
    grey = np.clip(phantom.hu[z], 0, 255).astype(np.uint8)  # grey = HU, as the LiTS slices
    path = tmp_path / "slice.png"
    Image.fromarray(grey).save(path)
    volume = open_case(qtbot, window, path)
    assert volume.intensity is Intensity.DISPLAY8 and volume.n_slices == 1
    viewer = window.studio.viewer
    assert viewer.slice_index == 0 and viewer.slider.maximum() == 0
    window.next_action.trigger()  # nothing to page through
    assert viewer.slice_index == 0
    result = run_and_wait(qtbot, window)
    # grey 0..255 = HU 0..255: the liver (60) and tumour (20) come back from the test backend;
    # post-processing (spacing unknown: threshold in pixels) may turn the small tumour into liver
    np.testing.assert_array_equal(result.raw_labels[0], phantom.labels[z])
    np.testing.assert_array_equal(result.labels[0] >= 1, phantom.labels[z] >= 1)
    np.testing.assert_array_equal(viewer.label_item.image, result.labels[0])
    # no geometry: areas in pixels
    assert window.studio.results.liver.value.text().endswith("vox")


def test_windowed_rgb_image_is_shown_as_the_model_input(qtbot: Any, window: Any, phantom: Any, tmp_path: Path) -> None:
    from PIL import Image

    z = phantom.shape[0] // 2
    rgb = windowed_rgb(phantom.hu[z])
    path = tmp_path / "windowed.png"
    Image.fromarray(rgb).save(path)
    volume = open_case(qtbot, window, path)
    assert volume.intensity is Intensity.WINDOWED_RGB
    viewer = window.studio.viewer
    np.testing.assert_array_equal(viewer.rgb_item.image, rgb)  # passed through unchanged
    assert not viewer.preset_combo.isEnabled()  # no HU to window
    r = viewer.readout(0, 0, 0)
    assert r["unit"] == "grey"


def test_settings_dialog_stores_values(qtbot: Any, window: Any) -> None:
    from liverseg_studio.qt.settings_dialog import SettingsDialog

    dlg = SettingsDialog(window.settings, window.manager.backends.names(), window)
    qtbot.addWidget(dlg)
    dlg.threads.setValue(2)
    dlg.backend.setCurrentIndex(dlg.backend.findData(TEST_BACKEND))
    dlg.opacity.setValue(80)
    dlg.apply()
    assert window.settings.threads == 2
    assert window.settings.default_backend == TEST_BACKEND
    assert window.settings.opacity == pytest.approx(0.8)
