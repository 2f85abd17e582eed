"""One thread that learns the end of every hosted job's command without polling.

``ExitWatcher`` holds a pidfd per running command in one epoll set: the
kernel wakes it the moment a command ends, so a thousand idle viewers cost
one thread blocked in ``epoll_wait`` and no CPU.  A new pidfd is added to
the set by the thread that starts watching it (epoll allows that while
another thread waits): the watcher is not woken for every start, only for
every end.  (Readiness is ``prober``'s.)
"""
from __future__ import annotations

import logging
import os
import select
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
        self._epoll = select.epoll()
        self._wakeup = Wakeup()  # only to stop the thread
        self._epoll.register(self._wakeup.reader.fileno(), select.EPOLLIN)
        self._lock = threading.Lock()
        #: pidfd -> (pid, our child?, on_exit), for every process watched.
        self._watched: dict[int, tuple[int, bool, Callable[[int | None], None]]] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="host-exits", daemon=True)
        self._thread.start()

    def watch(self, pid: int, on_exit: Callable[[int | None], None], child: bool) -> bool:
        """Watch ``pid``; False when it is already gone (then ``on_exit`` is not called)."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        with self._lock:  # known before the epoll set can report it
            self._watched[pidfd] = (pid, child, on_exit)
        self._epoll.register(pidfd, select.EPOLLIN)
        return True

    def close(self) -> None:
        self._closed = True
        self._wakeup.wake()

    def _run(self) -> None:
        stop = self._wakeup.reader.fileno()
        while not self._closed:
            for fd, _ in self._epoll.poll():
                if fd == stop:
                    self._wakeup.drain()
                    continue
                with self._lock:
                    watched = self._watched.pop(fd, None)
                if watched is None:
                    continue
                self._epoll.unregister(fd)
                os.close(fd)
                pid, child, on_exit = watched
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
