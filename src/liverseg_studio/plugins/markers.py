"""pluggy markers.  Plugins import ``hookimpl`` from ``liverseg_studio.plugins``."""

import pluggy

PROJECT_NAME = "liverseg"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
