"""The monitor: turns the events and IP files into reports to the AgentMonitor.

The same code serves every platform: a process viewer and a VM guest both
write SWAMP events to ``out/job_events.log`` and the address to
``out/job_ip_address.txt``; the monitor follows them and reports each new
event once, in order, with the address attached to ``WROTEIPADDR``.  Direct
state reports from the runner (a viewer that failed to start) go through the
same ordered channel, after the events written before them.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from swampd.vruntask.events import EVENTS_FILE, IP_FILE, LineFollower, clean_event, read_address
from swampd.vruntask.reporter import Fenced, Reporter

log = logging.getLogger(__name__)


class Monitor:
    def __init__(self, out_dir: Path, reporter: Reporter, poll: float = 0.2,
                 address_wait: float = 10.0) -> None:
        self.out_dir = Path(out_dir)
        self.reporter = reporter
        self.poll = poll
        self.address_wait = address_wait
        self.follower = LineFollower(self.out_dir / EVENTS_FILE)
        self.seen: set[str] = set()
        self.fenced = threading.Event()
        self.viewer_down = threading.Event()
        self._direct: queue.Queue[dict[str, Any]] = queue.Queue()
        self._finish = threading.Event()
        self._give_up_at: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()

    def ensure_running(self) -> None:
        """Restart the follower thread if it died of an unexpected error (its place in the files is kept)."""
        if self._thread is not None and not self._thread.is_alive() and not (
                self.fenced.is_set() or self._finish.is_set()):
            log.error("the monitor thread died; restarting it")
            self.start()

    def report_state(self, state: int, status: str) -> None:
        """Queue a direct state report, delivered after the events already written."""
        self._direct.put({"state": state, "status": status})

    def flush(self, seconds: float) -> bool:
        """Wait until the queued direct reports are delivered; True if they were."""
        deadline = time.monotonic() + seconds
        while not self._direct.empty() and not self.fenced.is_set():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return self._direct.empty()

    def finish(self, drain_seconds: float) -> bool:
        """Deliver what is pending, for at most ``drain_seconds``; True if all was delivered."""
        self._give_up_at = time.monotonic() + drain_seconds
        self._finish.set()
        if self._thread is not None:
            self._thread.join(drain_seconds + 5.0)
            return not self._thread.is_alive() and self._direct.empty()
        return True

    def _giving_up(self) -> bool:
        return self._give_up_at is not None and time.monotonic() > self._give_up_at

    def _run(self) -> None:
        try:
            while True:
                finishing = self._finish.is_set()
                self._pass()
                if finishing or self._giving_up():
                    return
                time.sleep(self.poll)
        except Fenced as exc:
            log.error("the AgentMonitor refused our report: %s; this launch is over", exc)
            self.fenced.set()
        except Exception:
            log.exception("monitor pass failed")  # ensure_running() starts it again

    def _pass(self) -> None:
        for line in self.follower.read_new_lines():
            event = clean_event(line)
            if not event or event in self.seen:
                continue
            self.seen.add(event)
            fields: dict[str, Any] = {"event": event}
            if event == "WROTEIPADDR":
                address = self._wait_address()
                if address:
                    fields["vmip"] = address
                else:
                    log.error("WROTEIPADDR but no valid address in %s", self.out_dir / IP_FILE)
            if not self.reporter.send(self._giving_up, **fields):
                return
            if event == "VIEWERDOWN" and "RUNSHSTART" in self.seen:
                self.viewer_down.set()
        while not self._direct.empty():
            if not self.reporter.send(self._giving_up, **self._direct.queue[0]):
                return
            self._direct.get()

    def _wait_address(self) -> str | None:
        """The IP file is written just before WROTEIPADDR; allow it a moment to land."""
        deadline = time.monotonic() + self.address_wait
        while True:
            address = read_address(self.out_dir / IP_FILE)
            if address or time.monotonic() > deadline:
                return address
            time.sleep(0.2)
