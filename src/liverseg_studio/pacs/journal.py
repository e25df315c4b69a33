"""The journal of ``liverseg listen``: one JSON line per series event, appended and fsynced.

Events: ``received`` (first instance of a series), ``started`` (segmentation began), ``done`` (the SEG
was written and sent), ``skipped`` (not a CT series, or refused input: never retried), ``failed``
(an error while segmenting or sending: retried at the next start).  On start the journal is folded
into the last state per series: ``done`` and ``skipped`` series are never processed again;
``received``, ``started`` and ``failed`` ones are picked up from the spool.  A torn last line (the
process killed while writing it) is ignored.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

FINAL = ("done", "skipped")


class Journal:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.state: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and rec.get("series"):
                    self._apply(rec)

    def _apply(self, rec: dict[str, Any]) -> None:
        self.events.append(rec)
        cur = self.state.setdefault(rec["series"], {})
        cur.update({k: v for k, v in rec.items() if k not in ("t",)})

    def record(self, series: str, event: str, **fields: Any) -> None:
        rec = {"t": round(time.time(), 3), "series": series, "event": event, **fields}
        line = json.dumps(rec, sort_keys=True) + "\n"
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self._apply(rec)

    def status(self, series: str) -> str | None:
        with self._lock:
            return self.state.get(series, {}).get("event")

    def is_final(self, series: str) -> bool:
        return self.status(series) in FINAL

    def count(self, series: str, event: str) -> int:
        with self._lock:
            return sum(1 for e in self.events if e["series"] == series and e["event"] == event)

    def open_series(self) -> dict[str, dict[str, Any]]:
        """Series seen but not final: series uid -> its last known fields."""
        with self._lock:
            return {uid: dict(s) for uid, s in self.state.items() if s.get("event") not in FINAL}
