"""Frozen entry point of the ``liverseg`` CLI (PyInstaller; see liverseg_studio.spec).

``liverseg --self-test [--backend NAME] [--model DIR]`` runs
:mod:`liverseg_studio.selftest`; ``$LIVERSEG_NETGUARD_LOG`` (set by ``make package-test``) installs a guard that
blocks and logs internet sockets.  Anything else is the normal CLI.
"""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    if os.environ.get("LIVERSEG_NETGUARD_LOG"):  # make package-test: block and log any network use
        from liverseg_studio.selftest import install_network_guard_from_env

        install_network_guard_from_env()
    argv = sys.argv[1:]
    if "--self-test" in argv:
        from liverseg_studio.selftest import main as selftest_main

        sys.exit(selftest_main([a for a in argv if a != "--self-test"], prog="liverseg --self-test"))
    from liverseg_studio.cli import main

    sys.exit(main(argv))
