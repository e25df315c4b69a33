"""Frozen entry point of the ``liverseg`` CLI (PyInstaller; see liverseg_studio.spec).

``liverseg --self-test [--backend NAME] [--model DIR]`` runs
:mod:`liverseg_studio.selftest`; ``$LIVERSEG_NETGUARD_LOG`` (set by ``make package-test``) installs a guard that
blocks and logs internet sockets.  Anything else is the normal CLI, except the commands the bundle leaves out on purpose
(:data:`LEFT_OUT`: training and model export need PyTorch, ``cohort`` needs Dask), which stop
with one line saying so and exit 2.
"""

import multiprocessing
import os
import sys

#: sub-command -> why the offline bundle does not have it (packaging/README.md, parity list)
LEFT_OUT = {
    "train": "training needs PyTorch and fastai, which the offline bundle leaves out",
    "export": "exporting a trained model to ONNX needs PyTorch, which the offline bundle leaves out",
    "cohort": "cohorts run on Dask (the 'cluster' extra), which the offline bundle leaves out",
}


def left_out(argv: list) -> str | None:
    """The one-line error for a left-out sub-command in ``argv`` (its first word), else None."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in LEFT_OUT or any(a in ("-h", "--help", "--version") for a in argv[: argv.index(command)]):
        return None
    return (f"liverseg {command}: error: not in the offline bundle: {LEFT_OUT[command]}; "
            f"run it from a pip install (pip install 'liverseg-studio[train,cluster]')")


if __name__ == "__main__":
    multiprocessing.freeze_support()
    if os.environ.get("LIVERSEG_NETGUARD_LOG"):  # make package-test: block and log any network use
        from liverseg_studio.selftest import install_network_guard_from_env

        install_network_guard_from_env()
    argv = sys.argv[1:]
    if "--self-test" in argv:
        from liverseg_studio.selftest import main as selftest_main

        sys.exit(selftest_main([a for a in argv if a != "--self-test"], prog="liverseg --self-test"))
    why = left_out(argv)
    if why is not None:
        print(why, file=sys.stderr)
        sys.exit(2)
    from liverseg_studio.cli import main

    sys.exit(main(argv))
