"""The studio's look: a calm dark theme (reading rooms are dim) on the Fusion style."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from liverseg_studio.core.colours import hex_colour
from liverseg_studio.core.volume import Label

BACKGROUND = "#14171c"
PANEL = "#1c2027"
PANEL_ALT = "#232833"
BORDER = "#2e3440"
TEXT = "#e6e9ef"
MUTED = "#9aa3b2"
ACCENT = "#3d8bfd"
ACCENT_DARK = "#2f6fd0"
DANGER = "#e5534b"

STYLESHEET = f"""
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QWidget {{ color: {TEXT}; font-size: 10pt; }}
QToolTip {{ color: {TEXT}; background: {PANEL_ALT}; border: 1px solid {BORDER}; }}
QMenuBar {{ background: {PANEL}; border-bottom: 1px solid {BORDER}; }}
QMenuBar::item:selected {{ background: {PANEL_ALT}; }}
QMenu {{ background: {PANEL}; border: 1px solid {BORDER}; }}
QMenu::item:selected {{ background: {ACCENT_DARK}; }}
QMenu::item:disabled {{ color: #5c6370; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; color: {MUTED}; }}
QGroupBox {{
    background: {PANEL}; border: 1px solid {BORDER}; border-radius: 6px;
    margin-top: 14px; padding: 10px 8px 8px 8px; font-weight: 600;
}}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {MUTED}; }}
QPushButton {{
    background: {PANEL_ALT}; border: 1px solid {BORDER}; border-radius: 5px; padding: 6px 14px;
}}
QPushButton:hover {{ border-color: {ACCENT}; }}
QPushButton:pressed {{ background: {BORDER}; }}
QPushButton:disabled {{ color: #5c6370; border-color: {PANEL_ALT}; }}
QPushButton:checked {{ background: {ACCENT_DARK}; border-color: {ACCENT}; }}
QPushButton#primary {{ background: {ACCENT_DARK}; border-color: {ACCENT}; font-weight: 600; }}
QPushButton#primary:hover {{ background: {ACCENT}; }}
QPushButton#primary:disabled {{ background: {PANEL_ALT}; border-color: {BORDER}; color: #5c6370; }}
QPushButton#danger:enabled {{ border-color: {DANGER}; color: #ffb4ae; }}
QPushButton#big {{ font-size: 12pt; padding: 12px 18px; text-align: left; }}
QComboBox, QSpinBox, QDoubleSpinBox, QLineEdit {{
    background: {PANEL_ALT}; border: 1px solid {BORDER}; border-radius: 4px; padding: 3px 6px;
}}
QComboBox QAbstractItemView {{ background: {PANEL}; selection-background-color: {ACCENT_DARK}; }}
QProgressBar {{
    background: {PANEL_ALT}; border: 1px solid {BORDER}; border-radius: 4px; text-align: center; height: 16px;
}}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QSlider::groove:horizontal {{ height: 4px; background: {BORDER}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {ACCENT}; border-radius: 2px; }}
QSlider::handle:horizontal {{
    background: {TEXT}; width: 14px; height: 14px; margin: -6px 0; border-radius: 7px;
}}
QTableWidget, QListWidget, QTextBrowser {{
    background: {PANEL}; border: 1px solid {BORDER}; border-radius: 4px;
    alternate-background-color: {PANEL_ALT}; gridline-color: {BORDER};
}}
QTableWidget::item:selected, QListWidget::item:selected {{ background: {ACCENT_DARK}; }}
QListWidget::item {{ padding: 6px; }}
QHeaderView::section {{ background: {PANEL_ALT}; color: {MUTED}; border: none; padding: 4px; }}
QLabel#title {{ font-size: 26pt; font-weight: 700; }}
QLabel#subtitle {{ color: {MUTED}; font-size: 11pt; }}
QLabel#muted {{ color: {MUTED}; }}
QLabel#metric {{ font-size: 15pt; font-weight: 600; }}
QLabel#metricName {{ color: {MUTED}; font-size: 9pt; }}
QLabel#panelTitle {{ color: {MUTED}; font-size: 9pt; font-weight: 600; letter-spacing: 1px; }}
QFrame#dropZone {{
    border: 2px dashed {BORDER}; border-radius: 12px; background: {PANEL};
}}
QFrame#dropZone[dragActive="true"] {{ border-color: {ACCENT}; background: #1b2740; }}
QFrame#card {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 8px; }}
QCheckBox#liver::indicator:checked {{ background: {hex_colour(Label.LIVER)}; border: 1px solid {TEXT}; }}
QCheckBox#tumour::indicator:checked {{ background: {hex_colour(Label.TUMOUR)}; border: 1px solid {TEXT}; }}
QCheckBox::indicator {{ width: 14px; height: 14px; border: 1px solid {MUTED}; border-radius: 3px; }}
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style, a dark palette and the studio's style sheet."""
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: PANEL,
        QPalette.ColorRole.AlternateBase: PANEL_ALT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: PANEL_ALT,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: ACCENT_DARK,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: PANEL_ALT,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: MUTED,
        QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5c6370"))
    app.setPalette(pal)
    app.setStyleSheet(STYLESHEET)
