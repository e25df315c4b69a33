"""Correcting a segmentation in the studio: brush, eraser, flood fill, lasso, undo/redo.

* :mod:`.controller` — :class:`EditController`: mouse -> voxels, tool state,
  undo stack (changed boxes only), live volumetry in a worker.
* :mod:`.panel` — the "Correct" box of the side panel (widgets only).
* :mod:`.studio` — :class:`StudioEditing`: actions, shortcuts, Edit menu and
  what the main window asks (result to export, discard edits?, open a mask).
* :mod:`.masks` — Qt-free: open a mask onto the image, the edited result.

The voxel logic itself is Qt-free: :mod:`liverseg_studio.core.editing`.
"""

from liverseg_studio.qt.editing.controller import TOOLS, EditController

__all__ = ["TOOLS", "EditController"]
