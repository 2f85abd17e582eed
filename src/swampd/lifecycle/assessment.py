"""The assessment run's lifecycle (ARuns and MRuns): states, and what the reconciler does next (pure).

An assessment runs to completion, once, with retries as new launches:

    QUEUED -> SUBMITTED -> RUNNING -> COLLECTING -> FINISHED
       ^                                   |
       +------ a retry (status.out) -------+        any -> TERMINATING -> TERMINATED
    (deadlines, no job, no results) -> FAILED

QUEUED runs wait for their inputs (the BOG read from the database, the
archives' checksums) and for a slot (``Timing.admitted``: the concurrency
limits, SWAMP being off); admission submits the job.  The node's reports
move a run to RUNNING and COLLECTING; storing the results ends it (or
queues the next attempt).  Every stage has a deadline, and a job asked to
leave gets its scheduler's own time, as for viewers.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from swampd.lifecycle.base import ALIVE, GONE, JobFacts, JobView, Step, removal

STOP_MARGIN = 60.0


class AssessmentState(IntEnum):
    NO_RECORD = 0
    QUEUED = 1
    SUBMITTED = 2
    RUNNING = 3
    COLLECTING = 4
    FINISHED = 5
    FAILED = -5
    TERMINATING = -6
    TERMINATED = -7
    TERMINATE_FAILED = -8


S = AssessmentState
ENDED = frozenset({S.NO_RECORD, S.FINISHED, S.FAILED, S.TERMINATED, S.TERMINATE_FAILED})
ACTIVE = frozenset({S.QUEUED, S.SUBMITTED, S.RUNNING, S.COLLECTING, S.TERMINATING})
#: States that hold one of the concurrency slots.
OCCUPYING = frozenset({S.SUBMITTED, S.RUNNING, S.COLLECTING})
#: The final status words of SWAMP (their "errors"/"warnings" is what the web looks for).
FINISHED_WITH_ERRORS = "Finished with Errors"


def retry_suffix(epoch: int, max_retries: int) -> str:
    """SWAMP's `` retry(N/R)`` on the statuses of a later attempt (N = earlier starts)."""
    return f" retry({epoch - 1}/{max_retries})" if epoch > 1 else ""


@dataclass(frozen=True)
class Timing:
    queue_timeout: float
    run_timeout: float
    collect_timeout: float
    stop_timeout: float
    leave_time: float
    #: The run may take a slot now (its inputs are ready, a slot is free, SWAMP is on).
    admitted: bool = False
    remove_held: bool = True
    suffix: str = ""


@dataclass(frozen=True)
class Facts:
    state: AssessmentState
    submitted_at: float
    started_at: float
    collecting_at: float
    stop_requested_at: float
    job: JobFacts
    #: When the run's results (or the node's failure) ended it; 0 when something else ended it.
    finished_at: float = 0.0


def finishing_on_its_own(facts: Facts, timing: Timing, now: float) -> bool:
    """The node ended the run (results stored, or its own failure) and its job is still exiting:
    on HTCondor the results arrive before ``vruntask`` has cleaned up and exited.  Nobody asked
    it to stop, so it gets the scheduler's leave time to complete (and show as completed in the
    history) before it is asked to go."""
    job = facts.job
    return (facts.state in (S.FINISHED, S.FAILED) and bool(facts.finished_at) and not facts.stop_requested_at
            and job.view in ALIVE and job.view is not JobView.HELD and not job.leaving
            and now - facts.finished_at <= timing.leave_time)


def next_step(facts: Facts, timing: Timing, now: float) -> Step | None:
    state, job = facts.state, facts.job
    view = job.view
    detail = f": {job.detail}" if job.detail else ""

    if state is S.QUEUED:
        if timing.admitted:
            return Step(S.SUBMITTED, "Submitting" + timing.suffix, submit=True)
        return None

    if state is S.SUBMITTED:
        if view is JobView.HELD:
            return Step(S.FAILED, _errors(f"the job was held{detail}"), remove_job=timing.remove_held)
        if view in GONE:
            return Step(S.FAILED, _errors(f"the job ended before it ran{detail}"))
        if facts.submitted_at and now - facts.submitted_at > timing.queue_timeout and view is not JobView.RUNNING:
            return Step(S.FAILED, _errors(f"not started within {timing.queue_timeout:g}s"),
                        remove_job=view is not JobView.NOT_SUBMITTED)
        return None

    if state is S.RUNNING:
        if view is JobView.HELD:
            return Step(S.FAILED, _errors(f"the job was held{detail}"), remove_job=timing.remove_held)
        if view in GONE:
            return Step(S.FAILED, _errors(f"the job ended without results{detail}"))
        if view is JobView.PENDING and job.starts and job.last_vacate:
            return Step(S.SUBMITTED, "Preempted - Waiting in HTCondor Queue" + timing.suffix)
        if facts.started_at and now - facts.started_at > timing.run_timeout:
            return Step(S.FAILED, _errors(f"the assessment did not end within {timing.run_timeout:g}s"),
                        remove_job=True)
        return None

    if state is S.COLLECTING:
        if facts.collecting_at and now - facts.collecting_at > timing.collect_timeout:
            return Step(S.FAILED, _errors(f"the results were not stored within {timing.collect_timeout:g}s"),
                        remove_job=view in ALIVE)
        return None

    if state is S.TERMINATING:
        if view in GONE or view is JobView.NOT_SUBMITTED:
            return Step(S.TERMINATED, "Terminated")
        if now - facts.stop_requested_at > timing.stop_timeout and view in ALIVE:
            return Step(S.TERMINATE_FAILED, "Terminate Failed", remove_job=True, force=True)
        return removal(job, now, timing.leave_time)

    if state is S.TERMINATE_FAILED and view in GONE:
        return Step(S.TERMINATED, "Terminated")

    if state in ENDED and view in ALIVE and (timing.remove_held or view is not JobView.HELD):
        if finishing_on_its_own(facts, timing, now):
            return None
        return removal(job, now, timing.leave_time)
    return None


def next_deadline(facts: Facts, timing: Timing) -> float | None:
    times = []
    if facts.job.leaving:
        times.append(facts.job.leaving_since + timing.leave_time)
    if facts.state is S.SUBMITTED and facts.submitted_at:
        times.append(facts.submitted_at + timing.queue_timeout)
    elif facts.state is S.RUNNING and facts.started_at:
        times.append(facts.started_at + timing.run_timeout)
    elif facts.state is S.COLLECTING and facts.collecting_at:
        times.append(facts.collecting_at + timing.collect_timeout)
    elif facts.state is S.TERMINATING and facts.stop_requested_at:
        times.append(facts.stop_requested_at + timing.stop_timeout)
    elif finishing_on_its_own(facts, timing, facts.finished_at):
        times.append(facts.finished_at + timing.leave_time)  # its job's time to end on its own
    return min(times) if times else None


def _errors(reason: str) -> str:
    """A failed run's status: SWAMP's final words (the web keys off "errors"), then why."""
    return f"{FINISHED_WITH_ERRORS} - {reason}"[:128]


def state_name(code: int) -> str:
    try:
        return AssessmentState(code).name
    except ValueError:
        return f"UNKNOWN({code})"


class AssessmentLifecycle:
    """ARuns (and, with ``kind`` "mrun", MRuns) behind the ``Lifecycle`` interface."""

    may_launch_from = frozenset({int(S.NO_RECORD)})
    ended = frozenset(int(s) for s in ENDED)
    active = frozenset(int(s) for s in ACTIVE)
    going_down = frozenset({int(S.TERMINATING)})
    submittable = frozenset({int(S.SUBMITTED)})
    occupying = frozenset(int(s) for s in OCCUPYING)
    failed = int(S.FAILED)
    #: Set by the daemon's wiring: ``admits(record) -> bool`` (slots, SWAMP on or off).
    admission: Any = None
    #: SWAMP's R of the retry suffix (``[assessments] max_retries``), set by the wiring.
    max_retries = 3

    def __init__(self, kind: str) -> None:
        self.kind = kind

    @staticmethod
    def state_name(code: int) -> str:
        return state_name(code)

    def submitted_status(self, record: Any) -> str:
        return "Waiting in HTCondor Queue" + retry_suffix(record.epoch, self.max_retries)

    def timing(self, record: Any, config: Any, leave_time: float) -> Timing:
        runs = config.assessments
        tool = config.tools.get(record.tool)
        run_timeout = (tool.run_timeout if tool else 3600.0) + runs.run_margin
        admitted = (record.state == S.QUEUED and bool(record.bog) and self.admission is not None
                    and self.admission.admits(record))
        return Timing(runs.queue_timeout, run_timeout, runs.collect_timeout, leave_time + STOP_MARGIN, leave_time,
                      admitted=admitted, remove_held=config.htcondor.on_hold != "leave",
                      suffix=retry_suffix(record.epoch, runs.max_retries))

    @staticmethod
    def _facts(record: Any, job: JobFacts) -> Facts:
        return Facts(AssessmentState(record.state), record.submitted_at, record.started_at, record.collecting_at,
                     record.stop_requested_at, job, record.finished_at)

    def next_step(self, record: Any, job: JobFacts, now: float, timing: Timing) -> Step | None:
        return next_step(self._facts(record, job), timing, now)

    def confirm(self, tx: Any, record: Any, step: Step) -> bool:
        """A run takes its slot in the same transaction that checks the slot is free."""
        return not step.submit or (self.admission is not None and self.admission.admits(record, reader=tx))

    def wake_at(self, record: Any, job: JobFacts, timing: Timing) -> float | None:
        return next_deadline(self._facts(record, job), timing)


ARUN = AssessmentLifecycle("arun")
MRUN = AssessmentLifecycle("mrun")
