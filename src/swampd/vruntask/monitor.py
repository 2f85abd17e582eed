"""The monitor: turns the events and IP files into reports to the AgentMonitor.

The same code serves every platform: a local process and a VM guest both
write SWAMP events to ``out/job_events.log`` and the address to
``out/job_ip_address.txt``; the monitor follows them and reports each new
event once, in order, with the address attached to ``WROTEIPADDR``.

Direct reports from the runner (a launch that failed, a machine being shut
down) go through the same channel, in the order things happened: each
remembers how far the events file reached when it was made, and is
delivered after the events written before that and before the ones written
after.  So a failure is never overtaken by the shutdown events that follow
it, and "report the end unless the machine said so itself" needs no sleep.
"""
from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from swampd.vruntask.delivery import Fenced
from swampd.vruntask.events import EVENTS_FILE, IP_FILE, LineFollower, clean_event, read_address
from swampd.vruntask.reporter import Reporter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DirectReport:
    fields: dict[str, Any]
    #: Dropped when this event was seen by the time the report's turn came.
    unless_seen: str
    #: The events file's generation and size when the report was made: its place among the events.
    generation: int
    mark: int


class Monitor:
    def __init__(self, out_dir: Path, reporter: Reporter, poll: float = 0.2, address_wait: float = 10.0,
                 down_event: str = "VIEWERDOWN", on_event: Callable[[str], None] | None = None) -> None:
        """``down_event`` after ``RUNSHSTART`` means the machine has ended; ``on_event`` sees each new event."""
        self.out_dir = Path(out_dir)
        self.reporter = reporter
        self.poll = poll
        self.address_wait = address_wait
        self.down_event = down_event
        self.on_event = on_event
        self.follower = LineFollower(self.out_dir / EVENTS_FILE)
        self.seen: set[str] = set()
        self.fenced = threading.Event()
        self.down = threading.Event()
        self._direct: queue.Queue[DirectReport] = queue.Queue()
        self._finish = threading.Event()
        self._give_up_at: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()

    def report(self, fields: dict[str, Any], unless_seen: str = "") -> None:
        """Queue a direct report, delivered after the events already written and before later ones."""
        self._direct.put(DirectReport(dict(fields), unless_seen, self.follower.generation, self.follower.size()))

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
        while True:
            finishing = self._finish.is_set()
            try:
                self._pass()
            except Fenced as exc:
                log.error("the AgentMonitor refused our report: %s; this launch is over", exc)
                self.fenced.set()
                return
            except Exception:
                # The follower keeps its place in the files; the next pass carries on from there.
                log.exception("monitor pass failed")
            if finishing or self._giving_up():
                return
            time.sleep(self.poll)

    def _pass(self) -> None:
        lines = self.follower.read_new()
        read_to = self.follower.position
        queued = [self._direct.queue[i] for i in range(self._direct.qsize())]
        done = 0
        for item in queued:
            limit: float = item.mark
            if item.generation != self.follower.generation:
                limit = float("inf")  # made before the file was replaced: after every line read
            elif item.mark > read_to and not self._finish.is_set():
                break  # made after lines this pass did not read yet: its turn comes after them, next pass
            while done < len(lines) and lines[done][1] <= limit:
                if not self._event(lines[done][0]):
                    return
                done += 1
            if not (item.unless_seen and item.unless_seen in self.seen):
                if not self.reporter.send(self._giving_up, **item.fields):
                    return
            self._direct.get()
        for line, _ in lines[done:]:
            if not self._event(line):
                return

    def _event(self, line: str) -> bool:
        """Report one events-file line if it is a new event; False if we are giving up."""
        event = clean_event(line)
        if not event or event in self.seen:
            return True
        self.seen.add(event)
        if self.on_event is not None:
            self.on_event(event)
        fields: dict[str, Any] = {"event": event}
        if event == "WROTEIPADDR":
            address = self._wait_address()
            if address:
                fields["vmip"] = address
                fields["node"] = socket.gethostname()  # SWAMP's execute_node_architecture_id
            else:
                log.error("WROTEIPADDR but no valid address in %s", self.out_dir / IP_FILE)
        if not self.reporter.send(self._giving_up, **fields):
            return False
        if event == self.down_event and "RUNSHSTART" in self.seen:
            self.down.set()
        return True

    def _wait_address(self) -> str | None:
        """The IP file is written just before WROTEIPADDR; allow it a moment to land."""
        deadline = time.monotonic() + self.address_wait
        while True:
            address = read_address(self.out_dir / IP_FILE)
            if address or time.monotonic() > deadline:
                return address
            time.sleep(0.2)
