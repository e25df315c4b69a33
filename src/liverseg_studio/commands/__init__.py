"""Sub-commands of the ``liverseg`` CLI, one module each (see ``liverseg_studio.cli``)."""
