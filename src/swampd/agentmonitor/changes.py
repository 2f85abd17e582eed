"""The change feed: answers whoever waits on a run the moment its committed state changes.

Every transaction that changes a run's state reports the run's id here
after it commits.  A client that waits for a viewer to come up
(``waitViewer``, ``launchviewer --wait``) gets a ``Deferred``: no thread
waits for it.  The feed re-checks the waiter after each change of its run
and resolves it when the answer is there, or when its time is up; the
transport then sends the answer.  So a waiting client costs a small object,
not a worker, and learns of a change within the time of one registry read.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import logging
import threading
import time
from typing import Any, Callable, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")
#: Waiters at once; past this a wait answers at once with what is known (the client asks again).
MAX_WATCHERS = 10_000
#: Versions remembered with the runs they changed (the dashboard asks "what changed since V").
JOURNAL = 4096


class Deferred(Generic[T]):
    """An answer that is not ready yet; ``then`` callbacks run once it is (first ``resolve`` wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._value: Any = None
        self._callbacks: list[Callable[[T], None]] = []

    @classmethod
    def of(cls, value: T) -> "Deferred[T]":
        deferred: Deferred[T] = cls()
        deferred.resolve(value)
        return deferred

    def resolve(self, value: T) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done, self._value = True, value
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _run(callback, value)
        return True

    def then(self, callback: Callable[[T], None]) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
            value = self._value
        _run(callback, value)

    def map(self, fn: Callable[[T], U]) -> "Deferred[U]":
        mapped: Deferred[U] = Deferred()
        self.then(lambda value: mapped.resolve(fn(value)))
        return mapped

    @property
    def done(self) -> bool:
        with self._lock:
            return self._done


def _run(callback: Callable[[Any], None], value: Any) -> None:
    try:
        callback(value)
    except Exception:  # one waiter's failure is its own; the feed goes on
        log.exception("a change-feed callback failed")


class _Watcher:
    def __init__(self, run_id: int | None, check: Callable[[], Any], deferred: Deferred[Any]) -> None:
        self.run_id = run_id
        self.check = check
        self.deferred = deferred


class ChangeFeed:
    def __init__(self) -> None:
        lock = threading.Lock()
        #: Wakes those waiting for a new version (``wait_version``), on every change.
        self._cond = threading.Condition(lock)
        #: Wakes the timer, only when a wait ends earlier than every other (not on every change:
        #: in a burst of launches that was a wake-up of the timer thread per commit, for nothing).
        self._earlier = threading.Condition(lock)
        #: Counts every change of every run (the dashboard waits on this).
        self.version = 0
        #: (version, runs that change changed), the last JOURNAL of them.
        self._journal: collections.deque[tuple[int, frozenset[int]]] = collections.deque(maxlen=JOURNAL)
        self._watchers: dict[int | None, set[_Watcher]] = {}
        self._count = 0
        self._deadlines: list[tuple[float, int, _Watcher]] = []
        self._ids = itertools.count()
        self._timer: threading.Thread | None = None

    def publish(self, run_ids: set[int]) -> None:
        """Runs whose state a committed transaction changed: re-check their waiters."""
        if not run_ids:
            return
        with self._cond:
            self.version += 1
            self._journal.append((self.version, frozenset(run_ids)))
            self._cond.notify_all()
            due = [w for key in (*run_ids, None) for w in self._watchers.get(key, ())]
        for watcher in due:
            answer = watcher.check()
            if answer is not None:
                self._finish(watcher, answer)

    def watch(self, run_id: int | None, check: Callable[[], T | None], timeout: float,
              checked: tuple[int, T | None] | None = None) -> Deferred[T | None]:
        """``check()`` now and after every change of ``run_id`` (of any run when None); resolved with
        its first answer that is not None, or with None once ``timeout`` seconds have passed.
        ``checked``: the caller checked already, with ``version`` as it was before its read, and got
        this answer (one read fewer)."""
        if checked is not None:
            seen, answer = checked
        else:
            seen = self.version  # before the check reads anything
            answer = check()
        if answer is not None or timeout <= 0:
            return Deferred.of(answer)
        deferred: Deferred[T | None] = Deferred()
        watcher = _Watcher(run_id, check, deferred)
        with self._cond:
            if self._count >= MAX_WATCHERS:
                return Deferred.of(None)
            self._watchers.setdefault(run_id, set()).add(watcher)
            self._count += 1
            due = time.monotonic() + timeout
            if not self._deadlines or due < self._deadlines[0][0]:
                self._earlier.notify()
            heapq.heappush(self._deadlines, (due, next(self._ids), watcher))
            self._ensure_timer()
            missed = self.version != seen
        # A change published between the first check and the registration is not missed (one
        # published later finds the watcher); with none, the first check's answer stands.
        if missed:
            answer = check()
            if answer is not None:
                self._finish(watcher, answer)
        return deferred

    def changed_since(self, seen: int) -> tuple[int, set[int] | None]:
        """The version now and the runs changed after version ``seen``; None when the journal no
        longer reaches back that far (the caller reads everything again)."""
        with self._cond:
            now = self.version
            if seen >= now:
                return now, set()
            if seen < 0 or not self._journal or self._journal[0][0] > seen + 1:
                return now, None
            return now, {run for version, runs in self._journal if version > seen for run in runs}

    def waiting(self) -> int:
        with self._cond:
            return self._count

    def _finish(self, watcher: _Watcher, answer: Any) -> None:
        with self._cond:
            group = self._watchers.get(watcher.run_id)
            if group is None or watcher not in group:
                return
            group.discard(watcher)
            if not group:
                del self._watchers[watcher.run_id]
            self._count -= 1
        watcher.deferred.resolve(answer)

    def _ensure_timer(self) -> None:
        if self._timer is None:
            self._timer = threading.Thread(target=self._expire, name="change-feed-timer", daemon=True)
            self._timer.start()

    def _expire(self) -> None:
        """Resolve waiters whose time is up with None."""
        while True:
            with self._cond:
                while not self._deadlines or self._deadlines[0][0] > time.monotonic():
                    self._earlier.wait(self._deadlines[0][0] - time.monotonic() if self._deadlines else None)
                _, _, watcher = heapq.heappop(self._deadlines)
            self._finish(watcher, None)

    def wait_version(self, seen: int, timeout: float) -> int:
        """Block until any run changed after version ``seen`` (or ``timeout``); the version now."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.version == seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self.version
