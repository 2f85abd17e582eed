"""Which queued assessments may take a slot now: the concurrency limits, and SWAMP on or off.

SWAMP ran at most as many assessments as it had slots, ran licensed tools
at most ``concurrency_limits`` at a time, ran metric runs after assessment
runs, and queued everything while ``SWAMPState`` was off.  Here a queued run
is admitted when SWAMP is on, the run is among the first queued (ARuns
before MRuns, first come first served) that fit the free slots, and its
tool has a slot of its own left.  Admission is asked by the assessment
lifecycle (``timing``) for each queued run the reconciler looks at; when a
slot frees, ``on_commit`` hands the next queued runs to the reconciler at
once, so a queue drains without waiting for a resync.

Viewers never wait here: they take no slot.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from swampd.config import Config
from swampd.lifecycle.assessment import OCCUPYING, AssessmentState
from swampd.store import Store

log = logging.getLogger(__name__)

KINDS = ("arun", "mrun")
PAUSED = "paused"


class Admission:
    def __init__(self, store: Store, config: Config, enqueue: Callable[[int], None]) -> None:
        self.store = store
        self.config = config
        self.enqueue = enqueue

    @property
    def paused(self) -> bool:
        return self.store.meta(PAUSED) == "1"

    def set_paused(self, paused: bool) -> None:
        """SWAMP off (runs queue with "SWAMP off - Queued") or on again; kept across restarts."""
        with self.store.transaction() as tx:
            tx.set_meta(PAUSED, "1" if paused else "0")
        log.info("assessments %s", "paused: new runs queue" if paused else "resumed")
        if not paused:
            self.wake()

    def _limit(self) -> int:
        return self.config.assessments.max_concurrent

    def admits(self, record: object, reader: Any = None) -> bool:
        """Whether ``record`` may take a slot now.  Asked again with ``reader`` (the transaction that
        takes the slot), so that two runs never take the last slot at once."""
        reader = reader or self.store
        if self.paused:
            return False
        limit = self._limit()
        if limit:
            running = reader.count_runs(KINDS, OCCUPYING)
            free = limit - running
            if free <= 0 or getattr(record, "id", 0) not in reader.queued_assessments(AssessmentState.QUEUED, free):
                return False
        tool = self.config.tools.get(getattr(record, "tool", ""))
        if tool is not None and tool.max_concurrent:
            if reader.count_runs(KINDS, OCCUPYING, tool=tool.name) >= tool.max_concurrent:
                return False
        return True

    def wake(self) -> None:
        """Hand the queued runs that could take a slot now to the reconciler."""
        if self.paused:
            return
        limit = self._limit()
        free = (limit - self.store.count_runs(KINDS, OCCUPYING)) if limit else 1000
        if free > 0:
            for run_id in self.store.queued_assessments(AssessmentState.QUEUED, free):
                self.enqueue(run_id)

    def on_commit(self, run_ids: Iterable[int]) -> None:
        """After a commit: if an assessment left its slot (or became ready), the queue moves on."""
        for run_id in run_ids:
            if self.store.kind_of(run_id) not in KINDS:
                continue  # viewers take no slot: no registry read for them
            record = self.store.get_run_by_id(run_id)
            if record is not None and record.kind in KINDS and record.state not in {int(s) for s in OCCUPYING}:
                self.wake()
                return
