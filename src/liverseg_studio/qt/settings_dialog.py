"""The settings dialog: inference threads, default backend, overlay opacity."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox, QWidget

from liverseg_studio.qt.settings import StudioSettings


class SettingsDialog(QDialog):
    """Edits :class:`StudioSettings`; :meth:`apply` stores the values."""

    def __init__(self, settings: StudioSettings, backends: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        form = QFormLayout(self)
        self.threads = QSpinBox()
        self.threads.setRange(0, max(1, os.cpu_count() or 1) * 2)
        self.threads.setSpecialValueText("Automatic (physical cores)")
        self.threads.setValue(settings.threads)
        form.addRow("Inference threads", self.threads)
        self.backend = QComboBox()
        self.backend.addItem("Automatic", "")
        for name in backends:
            self.backend.addItem(name, name)
        idx = self.backend.findData(settings.default_backend)
        self.backend.setCurrentIndex(max(0, idx))
        form.addRow("Default backend", self.backend)
        self.opacity = QSpinBox()
        self.opacity.setRange(0, 100)
        self.opacity.setSuffix(" %")
        self.opacity.setValue(int(round(settings.opacity * 100)))
        form.addRow("Overlay opacity", self.opacity)
        where = QLabel(f"Stored in {settings.location}")
        where.setObjectName("muted")
        where.setWordWrap(True)
        form.addRow(where)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def apply(self) -> None:
        self.settings.threads = self.threads.value()
        self.settings.default_backend = str(self.backend.currentData() or "")
        self.settings.opacity = self.opacity.value() / 100.0
        self.settings.sync()
