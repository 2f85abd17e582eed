"""What every run kind's lifecycle shares: the job as the reconciler sees it, and a step.

Pure: no I/O, no project module above the state model.  A lifecycle turns a
run's record, the scheduler's last word about its job and the clock into at
most one ``Step``.  Two principles hold for every kind:

* Unknown is not gone: when the scheduler did not answer (``JobView.UNKNOWN``)
  no rule that depends on the job fires.  Deadlines on our own clock still do.
* A job asked to leave is given the time its scheduler gives it
  (``leave_time``) before it is asked again, this time by force.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol


class JobView(str, Enum):
    """The scheduler's answer about one launch's job, reduced to what matters here."""

    UNKNOWN = "unknown"      # the scheduler did not answer
    NOT_SUBMITTED = "not_submitted"
    MISSING = "missing"      # submitted, but the scheduler has no trace of it
    PENDING = "pending"      # queued, not running yet
    RUNNING = "running"
    HELD = "held"
    FINISHED = "finished"    # completed cleanly, or removed
    FAILED = "failed"        # ended with a non-zero status, or killed without one


ALIVE = frozenset({JobView.PENDING, JobView.RUNNING, JobView.HELD})
GONE = frozenset({JobView.MISSING, JobView.FINISHED, JobView.FAILED})


@dataclass(frozen=True)
class JobFacts:
    """What the last observation says about the current launch's job."""

    view: JobView
    detail: str = ""
    #: A remove was asked for and the job has not left yet (it is shutting down).
    leaving: bool = False
    leaving_since: float = 0.0
    #: Times the job was started (a restart after a preemption counts).
    starts: int = 0
    #: When the job was last vacated (evicted or preempted); 0 for never.
    last_vacate: float = 0.0


@dataclass(frozen=True)
class Step:
    """One move: a new state and status (None keeps the state), and/or asking the job to go.

    ``force``: the job was asked to leave ``leave_time`` ago and is still
    there; take it out (HTCondor's RemoveX, a KILL).
    """

    state: Any | None
    status: str
    remove_job: bool = False
    force: bool = False
    #: Hand the current launch's job to the scheduler (a queued run admitted to a slot).
    submit: bool = False


def removal(job: JobFacts, now: float, leave_time: float) -> Step | None:
    """Ask a live job to go, unless it is already leaving and still within its scheduler's time."""
    if job.view not in ALIVE:
        return None
    if job.leaving:
        if now - job.leaving_since <= leave_time:
            return None
        return Step(None, "", remove_job=True, force=True)
    return Step(None, "", remove_job=True)


class Lifecycle(Protocol):
    """One run kind's rules, as the reconciler and the service use them."""

    kind: str
    #: States a new launch may be taken from.
    may_launch_from: frozenset[int]
    #: States in which the current launch is over.
    ended: frozenset[int]
    #: States the reconciler keeps working on.
    active: frozenset[int]
    #: States in which the run is being taken down (a stop deadline runs).
    going_down: frozenset[int]
    #: States in which the current launch's job may be submitted.
    submittable: frozenset[int]
    #: The state a launch ends in when its job cannot be started at all.
    failed: int

    def submitted_status(self, record: Any) -> str:
        """The status text once the scheduler has taken the job."""

    def state_name(self, code: int) -> str:
        """The kind's name for a state code."""

    def timing(self, record: Any, config: Any, leave_time: float) -> Any:
        """The deadlines that apply to ``record`` (from the kind's configuration and its scheduler)."""

    def next_step(self, record: Any, job: JobFacts, now: float, timing: Any) -> Step | None:
        """The one step to take now, or None when the run is where it should be."""

    def confirm(self, tx: Any, record: Any, step: Step) -> bool:
        """Inside the transaction that applies ``step``: may it still be taken (a slot still free)?"""

    def wake_at(self, record: Any, job: JobFacts, timing: Any) -> float | None:
        """When a deadline of this run next falls due (None: none runs), so the reconciler looks
        again then instead of on every resync."""
