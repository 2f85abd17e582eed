"""The change feed: wakes whoever waits on a run the moment its committed state changes.

Every transaction that changes a run's state reports the run's id here
after it commits.  Clients that wait for a viewer to come up (``waitViewer``,
``launchviewer --wait``) and the dashboard's live view block on the feed
instead of polling: they learn of a change within the time it takes to wake
a thread, and cost nothing while nothing changes.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")


class ChangeFeed:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        #: run id -> how many committed changes it has had (in this process).
        self._versions: dict[int, int] = {}
        #: Counts every change of every run (the dashboard waits on this).
        self.version = 0

    def publish(self, run_ids: Iterable[int]) -> None:
        ids = set(run_ids)
        if not ids:
            return
        with self._cond:
            for run_id in ids:
                self._versions[run_id] = self._versions.get(run_id, 0) + 1
            self.version += 1
            self._cond.notify_all()

    def run_version(self, run_id: int) -> int:
        with self._cond:
            return self._versions.get(run_id, 0)

    def wait_for(self, check: Callable[[], T | None], run_id: int | None, timeout: float) -> T | None:
        """Call ``check`` now and after every change of ``run_id`` (any run when None) until it
        returns something, or ``timeout`` seconds pass; returns its last answer."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self.version if run_id is None else self._versions.get(run_id, 0)
            answer = check()
            if answer is not None:
                return answer
            with self._cond:
                while (self.version if run_id is None else self._versions.get(run_id, 0)) == seen:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
