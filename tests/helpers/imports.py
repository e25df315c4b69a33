"""Run code in a fresh interpreter and check which heavy packages it imported."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable


def assert_imports_none_of(setup: str, heavy: Iterable[str]) -> None:
    """Run ``setup`` (Python source) in a fresh interpreter; fail if it imported any of ``heavy`` (top-level names)."""
    code = (
        "import sys\n"
        + setup
        + f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {tuple(heavy)!r})\n"
        + "print('HEAVY', heavy)\n"
        + "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HEAVY []" in r.stdout
