"""The runs as operators see them: one row per run of any kind, its history and pending effects.

Read-only and kind-agnostic: every field comes from the generic run record,
the run's lifecycle (state names, the deadline it waits for, which states
are trouble), what the scheduler last said about its job, and the outbox.
A new kind of run shows up here, on the dashboard and in ``/metrics``
without a change to this module.

What a row carries is an allowlist, never ``asdict(record)``: a record holds
the launch's report token and a viewer's API key, and neither may leave the
daemon (invariant 7).
"""
from __future__ import annotations

import time
from typing import Any

from swampd.lifecycle import LIFECYCLES, JobView, lifecycle_of
from swampd.store import RunRecord, Store

#: Rows one answer carries at most; past it the answer says it was cut (filter to see the rest).
MAX_ROWS = 5000
#: History rows and pending effects shown for one run.
MAX_HISTORY = 200
MAX_PENDING = 200
#: A deadline this many resync intervals in the past means the reconciler did not act on it.
OVERDUE_RESYNCS = 3


class RunsView:
    """Rows for the dashboard, from the registry and the reconciler's view of the jobs."""

    def __init__(self, store: Store, reconciler: Any, config: Any) -> None:
        self.store = store
        self.reconciler = reconciler
        self.config = config

    # -- the table ----------------------------------------------------------------------
    def rows(self, run_ids: set[int] | None = None, kind: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """Rows of every run (or of ``run_ids``), and how many there were before the cut to MAX_ROWS."""
        if run_ids is not None:
            records = [r for r in (self.store.get_run_by_id(i) for i in sorted(run_ids)[:MAX_ROWS]) if r]
            total = len(run_ids)
        else:
            records = [r for r in self.store.list_runs(kind) if r.kind in LIFECYCLES]
            total = len(records)
            records = records[:MAX_ROWS]
        since = self.store.state_since()
        pending = self.store.pending_by_run()
        now = time.time()
        leave_time = self.reconciler.scheduler.leave_time()
        return [self._row(r, since.get(r.id, r.updated_at), pending.get(r.id, (0, 0)), now, leave_time)
                for r in records], total

    def _row(self, record: RunRecord, state_since: float, pending: tuple[int, int], now: float,
             leave_time: float) -> dict[str, Any]:
        lifecycle = lifecycle_of(record.kind)
        name = lifecycle.state_name(record.state)
        job = self.reconciler.world.job_facts(record) if record.epoch else None
        active = record.state in lifecycle.active
        deadline = None
        if active and job is not None:
            deadline = lifecycle.wake_at(record, job, lifecycle.timing(record, self.config, leave_time))
        overdue_after = OVERDUE_RESYNCS * self.config.agentmonitor.resync_interval
        problems = []
        if record.state == lifecycle.failed or "ERROR" in name or "FAIL" in name:
            problems.append("error")
        if job is not None and job.view is JobView.HELD:
            problems.append("held")
        if active and job is not None and job.view is JobView.UNKNOWN:
            problems.append("stale")
        if deadline is not None and now > deadline + overdue_after:
            problems.append("overdue")
        if pending[1]:
            problems.append("retrying")
        return {
            "id": record.id,
            "kind": record.kind,
            "key": record.key,
            "projectid": record.projectid,
            "state": record.state,
            "state_name": name,
            "status": record.status,
            "epoch": record.epoch,
            "desired": record.desired,
            "job_ref": record.job_ref,
            "job": job.view.value if job is not None else "",
            "job_detail": job.detail if job is not None else "",
            "attempts": record.attempts,
            "launched_at": record.launched_at,
            "updated_at": record.updated_at,
            "state_since": state_since,
            "deadline": deadline if deadline is not None and deadline != float("inf") else None,
            "pending": pending[0],
            "active": active,
            "problems": problems,
        }

    def counts(self) -> list[dict[str, Any]]:
        """Runs by kind and state, for every state some run is in."""
        out = []
        for kind, state, number in self.store.run_counts():
            lifecycle = LIFECYCLES.get(kind)
            if lifecycle is not None:
                out.append({"kind": kind, "state": state, "state_name": lifecycle.state_name(state),
                            "count": number})
        return out

    def scheduler(self) -> dict[str, Any]:
        """Whether the scheduler answered the last resync, and when it last did."""
        world = self.reconciler.world
        return {"kind": self.reconciler.scheduler.kind, "answered": world.answered, "asked_at": world.at,
                "last_answer_at": world.last_answer_at}

    # -- one run -------------------------------------------------------------------------
    def detail(self, run_id: int) -> dict[str, Any] | None:
        """One run's row, its launch id, its history (every transition with reason and source) and its
        pending side effects with their attempts and last errors; None when there is no such run."""
        record = self.store.get_run_by_id(run_id)
        if record is None or record.kind not in LIFECYCLES:
            return None
        (row,), _ = self.rows({run_id})
        name = lifecycle_of(record.kind).state_name
        history = []
        for h in self.store.history(run_id, MAX_HISTORY):
            history.append({"at": h.at, "epoch": h.epoch, "from_state": h.from_state,
                            "from_state_name": name(h.from_state) if h.from_state is not None else "",
                            "state": h.state, "state_name": name(h.state), "status": h.status,
                            "source": h.source, "reason": h.reason})
        effects = [{"id": item.id, "effect": item.effect, "epoch": item.epoch, "attempts": item.attempts,
                    "next_at": item.next_at, "created_at": created, "last_error": item.last_error}
                   for item, created in self.store.pending_items(run_id, MAX_PENDING)]
        return {"run": row, "launch_id": record.launch_id, "history": history, "pending": effects}
