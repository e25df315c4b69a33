"""A text progress bar for the CLI (stderr): done/total slices, slices/s, ETA.

On a terminal it redraws one line (at most ~10 times a second); otherwise
(logs, pipes, tests) it prints a line at every 25 % so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds != seconds or seconds == float("inf"):  # NaN / inf
        return "?"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class ProgressBar:
    """``progress(done, total)`` callable drawing a bar on ``stream``.

    Backends count in their own steps (batches, passes); with ``n_items`` the
    bar converts ``done / total`` into that many items (slices), so the rate
    and ETA are in slices/s whatever the backend counts.
    """

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        width: int = 28,
        unit: str = "slices",
        min_interval: float = 0.1,
        tty: bool | None = None,
        n_items: int | None = None,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.unit = unit
        self.min_interval = min_interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_quarter = -1
        self.n_items = n_items
        self.done = 0
        self.total = 0

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.done / elapsed if elapsed > 0 and self.done else 0.0

    def line(self) -> str:
        total = max(self.total, 1)
        frac = min(1.0, self.done / total)
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        return (
            f"{self.label} [{bar}] {self.done}/{self.total} {self.unit} "
            f"{rate:.1f} {self.unit}/s ETA {format_seconds(eta)}"
        )

    def __call__(self, done: int, total: int) -> None:
        done, total = int(done), int(total)
        if self.n_items is not None and total > 0:
            done, total = int(self.n_items * min(done, total) // total), self.n_items
        self.done, self.total = done, total
        now = time.perf_counter()
        if self.tty:
            if now - self._last_draw >= self.min_interval or self.done >= self.total:
                self._last_draw = now
                self.stream.write("\r" + self.line() + "\x1b[K")
                self.stream.flush()
        else:
            quarter = int(4 * self.done / max(self.total, 1))
            if quarter > self._last_quarter:
                self._last_quarter = quarter
                self.stream.write(self.line() + "\n")
                self.stream.flush()

    def close(self) -> None:
        """End the bar's line (on a terminal)."""
        if self.tty and self._last_draw:
            self.stream.write("\n")
            self.stream.flush()
