"""The PySide6 + pyqtgraph studio.  Only this package imports Qt.

Modules:

* ``app`` – entry point (``liverseg-studio``, ``python -m liverseg_studio``): QApplication, theme, window.
* ``main_window`` – start screen / viewer page, segmentation runs, results, export, Go back, close.
* ``start_screen`` – open (dialog, drop, recent, sample case); no pyqtgraph, so start-up is fast.
* ``viewer`` – three linked pyqtgraph panels (model input, anatomy, segmentation overlay),
  window/level, radiological display transform, cursor readout (imports pyqtgraph).
* ``results`` / ``about`` / ``settings_dialog`` – side panels and dialogs.
* ``worker`` – QThreadPool worker shaped like superqt's (request ids, cooperative cancel).
* ``tasks`` – the Qt-free jobs the workers run (load a case, load a backend and segment).
* ``settings`` – QSettings (``LIVERSEG_SETTINGS`` = an INI file, as the tests use).
* ``screenshots`` – ``make screenshots``.

Start-up never imports torch or onnxruntime (the backend's ``load`` does, in the
worker, on the first segmentation) and imports pyqtgraph only when a case opens.
"""
