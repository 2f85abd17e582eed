"""A de-duplicating work queue of keys: one worker at a time per key.

The same idea as Kubernetes' workqueue: a key added while it is queued is
not queued twice; a key added while a worker holds it is marked dirty and
handed out again once that worker is done, never to a second worker at the
same time.  ``add_after`` schedules a look later (a retry, a deadline); a key
is kept once in the schedule, at its earliest time.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        #: key -> the earliest time it is scheduled for (entries in _delayed at other times are stale).
        self._scheduled: dict[K, float] = {}
        self._counter = itertools.count()
        self._closed = False

    def add(self, key: K) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
        if self._closed:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        with self._cond:
            due = time.monotonic() + max(0.0, delay)
            if self._scheduled.get(key, float("inf")) <= due:
                return  # already scheduled, no later than this
            self._scheduled[key] = due
            entry = (due, next(self._counter), key)
            heapq.heappush(self._delayed, entry)
            if self._delayed[0] is entry:  # sooner than any waiter's wake-up: one must look again
                self._cond.notify()        # (a later one is seen when the earlier wakes it; most are hours away)

    def get(self) -> K | None:
        """The next key to work on (now yours alone), or None once closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                self._promote_due()
                if self._queue:
                    key = self._queue.popleft()
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                timeout = None
                if self._delayed:
                    timeout = max(0.0, self._delayed[0][0] - time.monotonic())
                self._cond.wait(timeout)

    def _promote_due(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._scheduled.get(key) != due:
                continue  # superseded by an earlier time, already handed out
            del self._scheduled[key]
            self._add_locked(key)

    def done(self, key: K) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._add_locked(key)

    def seen(self, key: K) -> None:
        """The worker holding ``key`` is about to read its state afresh: additions made so far are
        covered by that read, so they need no further turn (those made from now on still get one)."""
        with self._cond:
            if key in self._processing:
                self._dirty.discard(key)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)
