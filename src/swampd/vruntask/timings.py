"""Seconds from the start of ``vruntask run`` to each milestone, in ``out/timings.json``.

The boot benchmark (``bench/bench_vm_boot.py``) reads them; they are written
as they happen, so a run that is killed still shows how far it got.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

TIMINGS_FILE = "timings.json"


class Timings:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0 = time.monotonic()
        self.marks: dict[str, float] = {}
        self._lock = threading.Lock()  # the runner and the monitor thread both mark

    def mark(self, name: str) -> None:
        """Record ``name`` the first time it is reached."""
        with self._lock:
            if name not in self.marks:
                self.marks[name] = round(time.monotonic() - self.t0, 3)
                self.path.write_text(json.dumps(self.marks), encoding="utf-8")

    def on_event(self, event: str) -> None:
        """The monitor saw ``event``: the first event, and the address, are milestones."""
        self.mark("first_event")
        if event == "WROTEIPADDR":
            self.mark("address")
