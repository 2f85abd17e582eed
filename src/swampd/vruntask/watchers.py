"""Two threads that watch every hosted job without polling the idle ones.

``ExitWatcher`` holds a pidfd per running command in one epoll set: the
kernel wakes it the moment a command ends, so a thousand idle viewers cost
one thread blocked in ``select`` and no CPU.  ``Prober`` asks starting
programs whether they answer yet, one probe at a time in due order, soon
after the start and then less often (the first probes come a few
milliseconds apart, so READY follows the first answer closely); it holds
nothing for programs that are up.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

#: Seconds between the first probes, how much each wait grows, and the longest wait.
FIRST_PROBE_GAP = 0.004
PROBE_GROWTH = 1.25
LONGEST_PROBE_GAP = 0.25


def exit_code_of(status: int) -> int:
    """A wait status as a shell shows it: the exit status, or -signal for a killed process."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class ExitWatcher:
    """Calls ``on_exit(code)`` once when a watched process ends (``code`` None if not our child)."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._pending: list[tuple[int, int, bool, Callable[[int | None], None]]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="host-exits", daemon=True)
        self._thread.start()

    def watch(self, pid: int, on_exit: Callable[[int | None], None], child: bool) -> bool:
        """Watch ``pid``; False when it is already gone (then ``on_exit`` is not called)."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        with self._lock:
            self._pending.append((pidfd, pid, child, on_exit))
        self._wake_w.send(b"\0")
        return True

    def close(self) -> None:
        self._closed = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _run(self) -> None:
        while not self._closed:
            for key, _ in self._selector.select():
                if key.data is None:
                    self._take_pending()
                    continue
                pidfd, pid, child, on_exit = key.data
                self._selector.unregister(pidfd)
                os.close(pidfd)
                code: int | None = None
                if child:
                    try:
                        _, status = os.waitpid(pid, os.WNOHANG)
                        code = exit_code_of(status)
                    except ChildProcessError:
                        code = None
                try:
                    on_exit(code)
                except Exception:  # one job's handler failing leaves the others watched
                    log.exception("handling the end of pid %d failed", pid)

    def _take_pending(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        with self._lock:
            pending, self._pending = self._pending, []
        for pidfd, pid, child, on_exit in pending:
            self._selector.register(pidfd, selectors.EVENT_READ, (pidfd, pid, child, on_exit))


class Prober:
    """Probes starting programs until each answers (``on_up``) or its deadline passes (dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, str]] = []
        self._entries: dict[str, tuple[Callable[[], bool], Callable[[], None], float, float]] = {}
        self._seq = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="host-probes", daemon=True)
        self._thread.start()

    def add(self, key: str, answers: Callable[[], bool], on_up: Callable[[], None], deadline: float) -> None:
        """Probe now, then again and again until ``answers()`` or ``deadline`` (monotonic)."""
        with self._cond:
            self._entries[key] = (answers, on_up, deadline, FIRST_PROBE_GAP)
            heapq.heappush(self._due, (time.monotonic(), next(self._seq), key))
            self._cond.notify()

    def cancel(self, key: str) -> None:
        with self._cond:
            self._entries.pop(key, None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._closed:
                    return
                _, _, key = heapq.heappop(self._due)
                entry = self._entries.get(key)
            if entry is None:
                continue  # cancelled
            answers, on_up, deadline, gap = entry
            try:
                up = answers()
            except Exception:
                log.exception("probing %s failed", key)
                up = False
            with self._cond:
                if self._entries.get(key) is not entry:
                    continue  # cancelled or replaced while probing
                if up or time.monotonic() > deadline:
                    del self._entries[key]
                else:
                    self._entries[key] = (answers, on_up, deadline, min(gap * PROBE_GROWTH, LONGEST_PROBE_GAP))
                    heapq.heappush(self._due, (time.monotonic() + gap, next(self._seq), key))
                    continue
            if up:
                try:
                    on_up()
                except Exception:
                    log.exception("reporting %s up failed", key)
