"""What the reconciler does next for one viewer: a pure decision.

Given the record's state and times, what the scheduler last said about the
job, and the clock, ``next_step`` returns the one step to take (a new state
with its reason, and whether the job must go), or None.  It does no I/O so
every rule is tested directly.  Two principles shape it:

* Unknown is not gone: when the scheduler did not answer (``JobView.UNKNOWN``)
  no rule that depends on the job fires.  Deadlines run on our own clock and
  still apply.
* Every launch ends: LAUNCHING has a ready deadline, READY has idle and
  lifetime limits, and going down has a stop deadline.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from swampd.states import ENDED, ViewerState


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
class Deadlines:
    ready_timeout: float
    idle_timeout: float
    max_lifetime: float
    stop_timeout: float


@dataclass(frozen=True)
class Facts:
    """What the decision may look at for one viewer."""

    state: ViewerState
    launched_at: float
    ready_at: float
    last_request_at: float
    stop_requested_at: float
    job: JobView
    job_detail: str = ""


@dataclass(frozen=True)
class Step:
    """One move: a new state and status (None keeps the state), and/or removing the job."""

    state: ViewerState | None
    status: str
    remove_job: bool = False


def next_step(facts: Facts, deadlines: Deadlines, now: float, remove_held: bool = True) -> Step | None:
    """The step to take now, or None when the viewer is where it should be.

    ``remove_held``: a held job ends its launch in ERROR either way (with the
    hold reason); False leaves the job held for an operator to look at
    instead of removing it.
    """
    state, job = facts.state, facts.job
    detail = f": {facts.job_detail}" if facts.job_detail else ""

    if state is ViewerState.LAUNCHING:
        if job is JobView.HELD:
            return Step(ViewerState.ERROR, f"Viewer job held{detail}", remove_job=remove_held)
        if job in GONE:
            return Step(ViewerState.ERROR, f"Viewer job ended before the viewer was up{detail}")
        if now - facts.launched_at > deadlines.ready_timeout:
            return Step(
                ViewerState.ERROR,
                f"Viewer was not ready within {deadlines.ready_timeout:g}s",
                remove_job=job is not JobView.NOT_SUBMITTED,
            )
        return None

    if state is ViewerState.READY:
        if job is JobView.HELD:
            return Step(ViewerState.ERROR, f"Viewer job held{detail}", remove_job=remove_held)
        if job is JobView.FAILED:
            return Step(ViewerState.ERROR, f"Viewer job failed{detail}")
        if job in GONE:
            return Step(ViewerState.SHUTDOWN, f"Viewer job ended{detail}")
        if now - facts.launched_at > deadlines.max_lifetime:
            return Step(
                ViewerState.STOPPING,
                f"Viewer reached its maximum lifetime of {deadlines.max_lifetime:g}s",
                remove_job=True,
            )
        last_active = max(facts.ready_at, facts.last_request_at)
        if now - last_active > deadlines.idle_timeout:
            return Step(
                ViewerState.STOPPING,
                f"Viewer idle for more than {deadlines.idle_timeout:g}s",
                remove_job=True,
            )
        return None

    if state is ViewerState.STOPPING:
        if job in GONE or job is JobView.NOT_SUBMITTED:
            return Step(ViewerState.SHUTDOWN, "Viewer shutdown completed")
        if facts.stop_requested_at and now - facts.stop_requested_at > deadlines.stop_timeout and job in ALIVE:
            return Step(None, "", remove_job=True)
        return None

    if state is ViewerState.TERMINATING:
        if job in GONE or job is JobView.NOT_SUBMITTED:
            return Step(ViewerState.TERMINATED, "Terminated")
        if now - facts.stop_requested_at > deadlines.stop_timeout and job in ALIVE:
            return Step(
                ViewerState.TERMINATE_FAILED,
                f"Terminate Failed: job still {job.value} {deadlines.stop_timeout:g}s after the stop",
                remove_job=True,
            )
        return None

    if state is ViewerState.TERMINATE_FAILED and job in GONE:
        return Step(ViewerState.TERMINATED, "Terminated")

    if state in ENDED and job in ALIVE and (remove_held or job is not JobView.HELD):
        # An ended launch whose job still runs (a guest that ignored its end,
        # or a remove that failed): keep asking for it to go.
        return Step(None, "", remove_job=True)
    return None
