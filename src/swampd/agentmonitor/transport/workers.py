"""A fixed pool of worker threads: the only threads that run API methods.

Fixed, so that no number of connections or requests makes more threads; a
request waits in the pool's queue instead.  The queue needs no bound of its
own: a connection has at most one request in a pool at a time, so the
connection cap bounds it.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Generic, TypeVar

log = logging.getLogger(__name__)

Job = TypeVar("Job")


class WorkerPool(Generic[Job]):
    def __init__(self, name: str, threads: int, handle: Callable[[Job], None]) -> None:
        self.name = name
        self._handle = handle
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{n}", daemon=True)
                         for n in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        self._queue.put(job)

    @property
    def waiting(self) -> int:
        """Jobs queued and not yet taken by a thread."""
        return self._queue.qsize()

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._handle(job)
            except Exception:  # a handler must answer; this keeps the thread if it did not
                log.exception("%s: unhandled error", self.name)
            del job
