"""Frozen entry point of the ``liverseg`` CLI (PyInstaller; see liverseg_studio.spec).

``liverseg --self-test [--backend NAME] [--model DIR]`` runs
:mod:`liverseg_studio.selftest`; anything else is the normal CLI.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    argv = sys.argv[1:]
    if "--self-test" in argv:
        from liverseg_studio.selftest import main as selftest_main

        sys.exit(selftest_main([a for a in argv if a != "--self-test"], prog="liverseg --self-test"))
    from liverseg_studio.cli import main

    sys.exit(main(argv))
