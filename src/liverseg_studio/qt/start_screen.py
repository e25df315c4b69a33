"""The start screen: open a file or folder, drop one, reopen a recent case, or the sample case."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)


#: (keys, what they do) shown on the start screen
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Ctrl+O", "open an image, volume or DICOM file"),
    ("Ctrl+R", "run the segmentation (again)"),
    ("Esc", "cancel a running segmentation"),
    ("Ctrl+E", "export mask, DICOM SEG, PNG or report"),
    ("Wheel · PgUp/PgDn · arrows", "previous / next slice"),
    ("Ctrl+wheel · right drag", "zoom (all panels together)"),
    ("Left drag", "pan"),
    ("Middle drag · Shift+drag", "window / level"),
    ("B · E · F · L", "correct: brush, eraser, fill, lasso (Esc leaves the tool)"),
    ("1 · 2  ·  [ · ]", "correct liver / tumour · smaller / larger brush"),
    ("Ctrl+Z · Ctrl+Shift+Z / Ctrl+Y", "undo / redo a correction"),
    ("Ctrl+W", "go back to this screen"),
    ("F1", "contact, licence and model card"),
)


class StartScreen(QWidget):
    """What the studio shows before a case is open (and after "Go back")."""

    open_file_requested = Signal()
    open_folder_requested = Signal()
    open_sample_requested = Signal()
    #: a recent file was activated
    open_path_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("startScreen")
        # everything in a scroll area: below 1024 x 640 the start screen scrolls instead of collapsing
        scroll = QScrollArea()
        scroll.setObjectName("startScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        content = QWidget()
        content.setObjectName("startContent")
        scroll.setWidget(content)
        wrapper = QVBoxLayout(self)
        wrapper.setContentsMargins(0, 0, 0, 0)
        wrapper.addWidget(scroll)
        outer = QVBoxLayout(content)
        outer.setContentsMargins(48, 36, 48, 36)
        outer.addStretch(1)

        title = QLabel("LiverSeg Studio")
        title.setObjectName("title")
        subtitle = QLabel(
            "Liver and liver-tumour segmentation of abdominal CT — offline, on this computer's CPU."
        )
        subtitle.setObjectName("subtitle")
        subtitle.setWordWrap(True)
        outer.addWidget(title)
        outer.addWidget(subtitle)
        outer.addSpacing(24)

        row = QHBoxLayout()
        row.setSpacing(24)
        outer.addLayout(row, 4)

        # -- left: the drop zone with the open buttons ------------------------
        self.drop_zone = QFrame()
        self.drop_zone.setObjectName("dropZone")
        self.drop_zone.setProperty("dragActive", False)
        self.drop_zone.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        dz = QVBoxLayout(self.drop_zone)
        dz.setContentsMargins(32, 28, 32, 28)
        dz.setSpacing(12)
        hint = QLabel("Drop a CT image, volume or DICOM folder here")
        hint.setStyleSheet("font-size: 13pt; font-weight: 600;")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setWordWrap(True)  # never clipped in a narrow window
        formats = QLabel("")
        formats.setObjectName("muted")
        formats.setWordWrap(True)
        formats.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.formats_label = formats
        dz.addStretch(1)
        dz.addWidget(hint)
        dz.addWidget(formats)
        dz.addSpacing(16)

        self.open_button = QPushButton("Open image or volume…    Ctrl+O")
        self.open_button.setObjectName("primary")
        self.open_folder_button = QPushButton("Open DICOM folder…")
        self.sample_button = QPushButton("Open sample case (LiTS case 117)")
        for b in (self.open_button, self.open_folder_button, self.sample_button):
            b.setMinimumHeight(40)
            b.setCursor(Qt.CursorShape.PointingHandCursor)
            dz.addWidget(b)
        dz.addStretch(1)
        self.open_button.clicked.connect(self.open_file_requested)
        self.open_folder_button.clicked.connect(self.open_folder_requested)
        self.sample_button.clicked.connect(self.open_sample_requested)
        row.addWidget(self.drop_zone, 3)

        # -- right: recent files ------------------------------------------------
        recent_card = QFrame()
        recent_card.setObjectName("card")
        rc = QVBoxLayout(recent_card)
        rc.setContentsMargins(16, 14, 16, 14)
        head = QLabel("RECENT")
        head.setObjectName("panelTitle")
        rc.addWidget(head)
        self.recent_list = QListWidget()
        self.recent_list.setObjectName("recentList")
        self.recent_list.itemActivated.connect(self._activated)
        rc.addWidget(self.recent_list, 1)
        self.recent_empty = QLabel("Files you open appear here.")
        self.recent_empty.setObjectName("muted")
        rc.addWidget(self.recent_empty)
        keys_card = QFrame()
        keys_card.setObjectName("card")
        kc = QVBoxLayout(keys_card)
        kc.setContentsMargins(16, 14, 16, 14)
        khead = QLabel("KEYBOARD AND MOUSE")
        khead.setObjectName("panelTitle")
        kc.addWidget(khead)
        keys = QLabel(
            "<table cellspacing='3'>"
            + "".join(
                f"<tr><td style='color:#e6e9ef;padding-right:14px'><b>{k}</b></td><td style='color:#9aa3b2'>{v}</td></tr>"
                for k, v in SHORTCUTS
            )
            + "</table>"
        )
        keys.setTextFormat(Qt.TextFormat.RichText)
        kc.addWidget(keys)
        right = QVBoxLayout()
        right.setSpacing(16)
        right.addWidget(recent_card, 1)
        right.addWidget(keys_card, 0)
        row.addLayout(right, 2)

        outer.addSpacing(18)
        notice = QLabel(
            "Research software, not a medical device: every segmentation must be reviewed by a qualified reader."
        )
        notice.setObjectName("muted")
        notice.setWordWrap(True)
        outer.addWidget(notice)
        outer.addStretch(1)

    def set_formats(self, descriptions: list[str]) -> None:
        """Show the formats the registered loaders read."""
        self.formats_label.setText(("Reads " + ", ".join(descriptions)) if descriptions else "")

    def set_recent_files(self, paths: list[str]) -> None:
        self.recent_list.clear()
        for p in paths:
            path = Path(p)
            item = QListWidgetItem(f"{path.name}\n{path.parent}")
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(p)
            if not path.exists():
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setText(f"{path.name}  (missing)\n{path.parent}")
            self.recent_list.addItem(item)
        self.recent_empty.setVisible(not paths)
        self.recent_list.setVisible(bool(paths))

    def set_drag_active(self, active: bool) -> None:
        self.drop_zone.setProperty("dragActive", bool(active))
        self.drop_zone.style().unpolish(self.drop_zone)
        self.drop_zone.style().polish(self.drop_zone)

    def _activated(self, item: QListWidgetItem) -> None:
        path = item.data(Qt.ItemDataRole.UserRole)
        if path:
            self.open_path_requested.emit(str(path))
