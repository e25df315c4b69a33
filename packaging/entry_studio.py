"""Frozen entry point of the ``liverseg-studio`` desktop app (PyInstaller; see liverseg_studio.spec).

``liverseg-studio --self-test [--backend NAME] [--model DIR] [--no-gui]`` runs
:mod:`liverseg_studio.selftest` including an offscreen studio window (Qt,
pyqtgraph); anything else starts the studio.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    argv = sys.argv[1:]
    if "--self-test" in argv:
        from liverseg_studio.selftest import main as selftest_main

        sys.exit(selftest_main([a for a in argv if a != "--self-test"], prog="liverseg-studio --self-test", gui=True))
    from liverseg_studio.qt.app import main

    sys.exit(main(argv))
