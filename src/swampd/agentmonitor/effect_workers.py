"""Worker pools for slow side effects, one pool per effect.

A slow effect (``effects.Effect.slow``) talks to something that may hang:
Code Dx, MariaDB, a collector, a file a caller named.  The reconciler never
performs one on its own threads; it hands the item here and goes on with
other runs.  Each effect has its own small pool, so a service that hangs
ties up only the workers of the effects that use it: eight uploads stuck on
an unresponsive Code Dx leave every launch's submit alone.

When an item's handler returns, the item is completed; when it raises, it
is scheduled again with backoff.  Either way the run is handed back to the
reconciler, which goes on with that run's lane.
"""
from __future__ import annotations

import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from swampd.effects import effect
from swampd.store import OutboxItem

log = logging.getLogger(__name__)

Handler = Callable[[OutboxItem], None]
#: Called with the item and the exception it raised (None when it succeeded).
Finished = Callable[[OutboxItem, BaseException | None], None]


class EffectWorkers:
    def __init__(self, finished: Finished) -> None:
        self._finished = finished
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._closed = False
        #: Items handed over so far (their handlers may still run).
        self.dispatched = 0

    def in_flight(self, item_id: int) -> bool:
        with self._lock:
            return item_id in self._in_flight

    def busy(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def dispatch(self, item: OutboxItem, handler: Handler) -> bool:
        """Run ``handler(item)`` on its effect's pool unless it already runs; True when handed over."""
        with self._lock:
            if self._closed or item.id in self._in_flight:
                return False
            pool = self._pools.get(item.effect)
            if pool is None:
                spec = effect(item.effect)
                pool = self._pools[item.effect] = ThreadPoolExecutor(
                    max_workers=max(1, spec.workers), thread_name_prefix=f"effect-{item.effect}")
            self._in_flight.add(item.id)
            self.dispatched += 1
        # In the dispatcher's context: the handler's log lines name the run it works for.
        pool.submit(contextvars.copy_context().run, self._run, item, handler)
        return True

    def _run(self, item: OutboxItem, handler: Handler) -> None:
        error: BaseException | None = None
        try:
            handler(item)
        except Exception as exc:  # handed to the reconciler: retried with backoff
            error = exc
        try:
            self._finished(item, error)
        except Exception:
            log.exception("recording the outcome of %s item %d failed", item.effect, item.id)
        finally:
            with self._lock:
                self._in_flight.discard(item.id)

    def close(self, wait: bool = False) -> None:
        """Stop taking items; running handlers are abandoned (their items are retried after a restart)."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=True)
