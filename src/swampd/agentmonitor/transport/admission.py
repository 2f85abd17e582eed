"""Who gets in, and who waits: the connection cap and the large-body slots.

At the cap (or when ``accept`` meets ``EMFILE``) the loop closes the
connection that has been quiet the longest — idle between requests, or a
request trickling in — so that a newcomer, such as an execute node's report,
always gets in; one that sent its request whole is dispatched the moment it
is read and is then no longer a candidate.  Large bodies take one of a few
slots while they are read and answered; the others wait unread, which the
kernel's buffers turn into back-pressure on their senders.
"""
from __future__ import annotations

import collections
import logging
import time

from swampd.agentmonitor.transport.connection import Connection, Phase

log = logging.getLogger(__name__)

#: Seconds between two warnings of the same kind (a flood must not flood the log).
WARN_EVERY = 10.0


class Admission:
    """The connections that may be closed to make room, quietest first."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._quiet: collections.OrderedDict[Connection, None] = collections.OrderedDict()
        self._evicted = 0
        self._evicted_logged_at = 0.0
        self._stuck_logged_at = 0.0

    def track(self, conn: Connection) -> None:
        """``conn`` has nothing in a worker: it may be closed to make room (last, for now)."""
        self._quiet[conn] = None
        self._quiet.move_to_end(conn)

    def touch(self, conn: Connection) -> None:
        """``conn`` made progress: it moves to the back of the line."""
        if conn in self._quiet:
            self._quiet.move_to_end(conn)

    def untrack(self, conn: Connection) -> None:
        self._quiet.pop(conn, None)

    def quietest(self) -> Connection | None:
        return next(iter(self._quiet), None)

    def evicted(self, why: str, still_open: int) -> None:
        self._evicted += 1
        now = time.monotonic()
        if now - self._evicted_logged_at > WARN_EVERY:
            log.warning("at %s: closed %d quiet connection(s) to make room (%d open)", why, self._evicted,
                        still_open)
            self._evicted, self._evicted_logged_at = 0, now

    def stuck(self, exc: OSError, pause: float) -> None:
        now = time.monotonic()
        if now - self._stuck_logged_at > WARN_EVERY:
            self._stuck_logged_at = now
            log.warning("cannot accept connections (%s); pausing %.1fs at a time", exc.strerror or exc, pause)


class LargeBodies:
    """At most ``limit`` large requests read or in a worker at once; the rest wait their turn."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._waiting: collections.deque[Connection] = collections.deque()

    def take(self, conn: Connection) -> bool:
        """A slot for ``conn`` now (True), or it waits in line (False)."""
        conn.large = True
        if self.in_flight < self.limit:
            self.in_flight += 1
            return True
        self._waiting.append(conn)
        return False

    def give_back(self, conn: Connection) -> list[Connection]:
        """``conn`` is done with its slot (if it had one); the waiting connections that now get one."""
        if not conn.large:
            return []
        conn.large = False
        if conn.phase is Phase.WAIT_SLOT:
            return []  # it never had one; the line skips it
        self.in_flight -= 1
        granted = []
        while self._waiting and self.in_flight < self.limit:
            waiting = self._waiting.popleft()
            if waiting.phase is Phase.WAIT_SLOT and waiting.large:
                self.in_flight += 1
                granted.append(waiting)
        return granted
