"""The PySide6 + pyqtgraph studio.  Only this package imports Qt."""
