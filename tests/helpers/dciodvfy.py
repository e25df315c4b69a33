"""dciodvfy (David Clunie's dicom3tools, Debian package ``dicom3tools``): the DICOM validator
the DICOM SEG tests check against.

``make setup`` installs it where it can (root or ``sudo -n``).  Use::

    from helpers.dciodvfy import requires_dciodvfy, run_dciodvfy

    @requires_dciodvfy
    def test_seg_is_valid(tmp_path):
        n_errors, output = run_dciodvfy(path)
        assert n_errors == 0, output
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DCIODVFY = shutil.which("dciodvfy")

#: Skip marker with the reason (and the install command) when dciodvfy is absent.
requires_dciodvfy = pytest.mark.skipif(
    DCIODVFY is None,
    reason="dciodvfy not installed (Debian: apt-get install dicom3tools; make setup does it where it can)",
)


def error_lines(output: str) -> list[str]:
    """The lines dciodvfy reports as errors (it prefixes them with ``Error``)."""
    return [line for line in output.splitlines() if line.lstrip().startswith("Error")]


def run_dciodvfy(path: str | Path, *, timeout: float = 120.0) -> tuple[int, str]:
    """Validate one DICOM file with dciodvfy: ``(number of errors, full output)``.

    The output holds stdout and stderr together (dciodvfy writes its findings on stderr).
    Skips the calling test (with the reason) when dciodvfy is not installed.
    """
    if DCIODVFY is None:
        pytest.skip("dciodvfy not installed (Debian: apt-get install dicom3tools)")
    proc = subprocess.run(
        [DCIODVFY, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    output = proc.stdout
    return len(error_lines(output)), output
