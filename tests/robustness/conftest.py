"""Fixtures of the robustness suite: a per-session report of fuzz case counts.

The counts are printed in pytest's terminal summary ("fuzz cases per loader")
so CI logs show how many inputs each loader survived.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fuzz_report(request) -> dict:
    """``{loader: {"cases": n, "volumes": n, "errors": n, "slowest_s": s}}`` shared by the fuzz tests."""
    report = getattr(request.config, "_liverseg_fuzz_report", None)
    if report is None:
        report = {}
        request.config._liverseg_fuzz_report = report
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    report = getattr(config, "_liverseg_fuzz_report", None)
    if not report:
        return
    terminalreporter.section("fuzz cases per loader")
    for name in sorted(report):
        r = report[name]
        terminalreporter.write_line(
            f"{name:14s} {r['cases']:7d} cases  {r['volumes']:6d} volumes  {r['errors']:6d} LoaderErrors  "
            f"slowest {r['slowest_s']:.2f} s  peak RSS growth {r.get('rss_growth_mb', 0):.0f} MB"
        )
