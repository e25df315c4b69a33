"""Every file of pydicom's own test corpus through ``liverseg info``: 0 tracebacks (issue 14).

pydicom ships ~180 test files (odd transfer syntaxes, broken headers, DICOMDIRs,
non-image objects, charsets...).  Each must end in exit 0 (a volume) or 2 (one
clear line); exit 1 would be an internal error.  In-process for speed (the
subprocess form of the same contract is tested in tests/cli).
"""

from __future__ import annotations

from pathlib import Path

import pydicom.data
import pytest

from liverseg_studio.cli import main

CORPUS = Path(pydicom.data.__file__).parent / "test_files"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file()) if CORPUS.is_dir() else []


@pytest.mark.skipif(not FILES, reason=f"pydicom's test files are not here: {CORPUS}")
def test_pydicom_corpus_gives_no_traceback(capsys):
    internal = []
    for path in FILES:
        rc = main(["info", str(path)])
        captured = capsys.readouterr()
        err_lines = [line for line in captured.err.splitlines() if line.strip()]
        if rc not in (0, 2) or "Traceback" in captured.err or (rc == 2 and len(err_lines) != 1):
            internal.append(f"{path.relative_to(CORPUS)}: exit {rc}: {captured.err.strip()[-300:]}")
    assert not internal, f"{len(internal)} of {len(FILES)} files:\n" + "\n".join(internal)
