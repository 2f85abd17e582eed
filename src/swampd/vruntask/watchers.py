"""One thread that learns the end of every hosted job's command without polling.

``ExitWatcher`` holds a pidfd per running command in one epoll set: the
kernel wakes it the moment a command ends, so a thousand idle viewers cost
one thread blocked in ``select`` and no CPU.  (Readiness is ``prober``'s.)
"""
from __future__ import annotations

import logging
import os
import selectors
import threading
from typing import Callable

from swampd.wakeup import Wakeup

log = logging.getLogger(__name__)


def exit_code_of(status: int) -> int:
    """A wait status as a shell shows it: the exit status, or -signal for a killed process."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class ExitWatcher:
    """Calls ``on_exit(code)`` once when a watched process ends (``code`` None if not our child)."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wakeup = Wakeup()
        self._selector.register(self._wakeup.reader, selectors.EVENT_READ, None)
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
        self._wakeup.wake()
        return True

    def close(self) -> None:
        self._closed = True
        self._wakeup.wake()

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
        self._wakeup.drain()
        with self._lock:
            pending, self._pending = self._pending, []
        for pidfd, pid, child, on_exit in pending:
            self._selector.register(pidfd, selectors.EVENT_READ, (pidfd, pid, child, on_exit))
