"""File -> "Open cohort table…": a cohort.csv sorted by any column; double-click opens the study with its mask."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from helpers.phantom import make_phantom, write_nifti
from liverseg_studio.cohort.table import CohortTable, columns_for
from liverseg_studio.qt.cohort_table import load_mask, open_cohort_table


@pytest.fixture
def cohort(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A cohort folder as ``liverseg cohort`` leaves it: 2 studies with masks, 1 failed."""
    out = tmp_path / "out"
    out.mkdir()
    masks = {}
    rows = []
    for i, (shape, liver_ml) in enumerate([((10, 48, 48), "950.5"), ((12, 64, 64), "1210"), ((8, 40, 40), "88.25")]):
        ph = make_phantom(shape, seed=i)
        src = write_nifti(tmp_path / f"case{i}.nii.gz", ph.hu, ph.affine, dtype="int16")
        labels = ph.labels.copy()
        labels[0] = 1  # not the phantom's own truth: the test sees that the file is what is shown
        nib.save(nib.Nifti1Image(np.ascontiguousarray(labels.T), ph.affine), str(out / f"case{i}_mask.nii.gz"))
        masks[f"case{i}"] = labels
        rows.append({"id": f"case{i}", "path": str(src), "status": "ok", "liver_ml": liver_ml,
                     "n_lesions": str(i), "mask": f"case{i}_mask.nii.gz"})  # fmt: skip
    rows.append({"id": "bad", "path": str(tmp_path / "bad.nii.gz"), "status": "failed", "error": "broken header"})
    table = CohortTable(out / "cohort.csv", columns_for())
    table.rewrite(rows)
    return out / "cohort.csv", masks


def test_menu_has_the_action(window):
    texts = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert "Open &cohort table…" in texts


def test_sorted_by_any_column(window, cohort):
    csv_path, _ = cohort
    table = open_cohort_table(window, str(csv_path))
    assert table is not None and table.model.rowCount() == 4
    table.sort_by("liver_ml", descending=True)
    assert [table.row_at(r)["id"] for r in range(3)] == ["case1", "case0", "case2"]  # numbers, not text
    table.sort_by("liver_ml")
    assert [table.row_at(r)["id"] for r in range(4)] == ["case2", "case0", "case1", "bad"]  # empty cells last
    table.sort_by("status", descending=True)
    assert table.row_at(3)["id"] == "bad"
    table.filter.setText("broken")
    assert table.proxy.rowCount() == 1 and table.row_at(0)["id"] == "bad"
    table.close()


def test_double_click_opens_the_study_with_its_mask(window, cohort, qtbot, errors, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda parent, title, text, *a, **k: errors.append((title, text))))

    csv_path, masks = cohort
    table = open_cohort_table(window, str(csv_path))
    table.sort_by("liver_ml", descending=True)  # case1 first
    qtbot.waitExposed(table)
    rect = table.view.visualRect(table.proxy.index(0, 0))
    assert rect.isValid()
    with qtbot.waitSignal(table.study_requested, timeout=5000) as request:
        # a double-click as the view receives it: press/release, then the double-click event
        qtbot.mouseClick(table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: errors or window.studio is not None and window.volume is not None, timeout=60000)
    assert not errors, errors
    assert request.args == [str(csv_path.parent.parent / "case1.nii.gz"), str(csv_path.parent / "case1_mask.nii.gz")]
    assert window.volume.shape == masks["case1"].shape
    qtbot.waitUntil(lambda: window.studio.viewer.labels is not None, timeout=5000)
    assert np.array_equal(window.studio.viewer.labels, masks["case1"])
    table.close()


def test_mask_of_another_shape_is_refused(cohort):
    csv_path, masks = cohort
    with pytest.raises(ValueError, match="does not match"):
        load_mask(csv_path.parent / "case0_mask.nii.gz", masks["case1"].shape)
    assert np.array_equal(load_mask(csv_path.parent / "case0_mask.nii.gz", masks["case0"].shape), masks["case0"])
