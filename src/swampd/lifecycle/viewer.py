"""The viewer's lifecycle: what the reconciler does next for one viewer (pure).

Given the record's state and times, what the scheduler last said about the
job, and the clock, ``next_step`` returns the one step to take (a new state
with its reason, and whether the job must go), or None.  It does no I/O so
every rule is tested directly.  Every launch ends: LAUNCHING has a ready
deadline, READY has idle and lifetime limits, and going down has a stop
deadline, which is the time the scheduler gives a removed job to leave plus
a margin (a vm job on HTCondor may take ``job_max_vacate_time`` to shut
down and save its database; a local process a few seconds).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swampd.lifecycle.base import ALIVE, GONE, JobFacts, JobView, Step, removal
from swampd.states import ACTIVE, ENDED, GOING_DOWN, MAY_LAUNCH_FROM, ViewerState, state_name, viewer_state

#: Seconds a stop may take beyond the scheduler's own leave time before it is reported failed.
STOP_MARGIN = 60.0


@dataclass(frozen=True)
class Deadlines:
    ready_timeout: float
    idle_timeout: float
    max_lifetime: float
    stop_timeout: float
    #: Seconds the scheduler gives a removed job to leave before it is forced out.
    leave_time: float = 0.0


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
    leaving: bool = False
    leaving_since: float = 0.0
    #: When the record last changed; for an ended launch, about when it ended.
    ended_at: float = 0.0

    @property
    def job_facts(self) -> JobFacts:
        return JobFacts(self.job, self.job_detail, self.leaving, self.leaving_since)


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
        if facts.leaving or (facts.stop_requested_at and now - facts.stop_requested_at > deadlines.stop_timeout):
            return removal(facts.job_facts, now, deadlines.leave_time)
        return None

    if state is ViewerState.TERMINATING:
        if job in GONE or job is JobView.NOT_SUBMITTED:
            return Step(ViewerState.TERMINATED, "Terminated")
        if now - facts.stop_requested_at > deadlines.stop_timeout and job in ALIVE:
            return Step(
                ViewerState.TERMINATE_FAILED,
                f"Terminate Failed: job still {job.value} {deadlines.stop_timeout:g}s after the stop",
                remove_job=True, force=True,
            )
        return removal(facts.job_facts, now, deadlines.leave_time)

    if state is ViewerState.TERMINATE_FAILED and job in GONE:
        return Step(ViewerState.TERMINATED, "Terminated")

    if state is ViewerState.SHUTDOWN and job is JobView.HELD and not facts.stop_requested_at:
        # A hold vacates a running job first: the machine shut down, and its node said so,
        # before the scheduler showed the hold.  Nobody asked it to stop: the hold is why
        # this launch ended, and it is what the user and the operator must see.
        return Step(ViewerState.ERROR, f"Viewer job held{detail}", remove_job=remove_held)

    if state in ENDED and job in ALIVE and (remove_held or job is not JobView.HELD):
        if (state is ViewerState.SHUTDOWN and job is not JobView.HELD and not facts.stop_requested_at
                and not facts.leaving and now - facts.ended_at <= deadlines.leave_time):
            # The machine shut itself down and said so; its job is finishing (powering
            # off, saving the database, or being held, which vacates it first).  It gets
            # the scheduler's leave time to end on its own before it is asked to go.
            return None
        # An ended launch whose job still runs (a guest that ignored its end,
        # or a remove that failed): ask it to go, and again by force once its
        # scheduler's leave time is over.
        return removal(facts.job_facts, now, deadlines.leave_time)
    return None


def next_deadline(facts: Facts, deadlines: Deadlines) -> float | None:
    """The moment the next deadline of ``next_step`` falls due, or None when none runs."""
    state = facts.state
    times: list[float] = []
    if facts.leaving:
        times.append(facts.leaving_since + deadlines.leave_time)
    if state is ViewerState.LAUNCHING:
        times.append(facts.launched_at + deadlines.ready_timeout)
    elif state is ViewerState.READY:
        times.append(facts.launched_at + deadlines.max_lifetime)
        times.append(max(facts.ready_at, facts.last_request_at) + deadlines.idle_timeout)
    elif state in (ViewerState.STOPPING, ViewerState.TERMINATING) and facts.stop_requested_at:
        times.append(facts.stop_requested_at + deadlines.stop_timeout)
    elif (state is ViewerState.SHUTDOWN and facts.job in ALIVE and not facts.stop_requested_at
          and not facts.leaving):
        times.append(facts.ended_at + deadlines.leave_time)  # its job's time to end on its own
    finite = [t for t in times if t != float("inf")]
    return min(finite) if finite else None


class ViewerLifecycle:
    """The viewer kind behind the ``Lifecycle`` interface."""

    kind = "vrun"
    may_launch_from = frozenset(int(s) for s in MAY_LAUNCH_FROM)
    ended = frozenset(int(s) for s in ENDED)
    active = frozenset(int(s) for s in ACTIVE)
    going_down = frozenset(int(s) for s in GOING_DOWN)
    #: States in which the run is up (launch-to-ready is measured to the first of them).
    up = frozenset({int(ViewerState.READY)})
    submittable = frozenset({int(ViewerState.LAUNCHING)})
    failed = int(ViewerState.ERROR)

    @staticmethod
    def submitted_status(record: Any) -> str:
        return "Waiting for the viewer machine"

    @staticmethod
    def state_name(code: int) -> str:
        return state_name(code)

    @staticmethod
    def timing(record: Any, config: Any, leave_time: float) -> tuple[Deadlines, bool]:
        """The viewer's deadlines (its ``[viewers.NAME]`` table), and whether held jobs are removed."""
        viewer = config.viewers.get(record.viewer)
        if viewer is None:  # a viewer taken out of the configuration: only our stop deadline applies
            never = float("inf")
            deadlines = Deadlines(never, never, never, leave_time + STOP_MARGIN, leave_time)
        else:
            deadlines = Deadlines(viewer.ready_timeout, viewer.idle_timeout, viewer.max_lifetime,
                                  stop_timeout=leave_time + STOP_MARGIN, leave_time=leave_time)
        return deadlines, config.htcondor.on_hold != "leave"

    @staticmethod
    def _facts(record: Any, job: JobFacts) -> Facts:
        return Facts(viewer_state(record.state), record.launched_at, record.ready_at, record.last_request_at,
                     record.stop_requested_at, job.view, job.detail, job.leaving, job.leaving_since,
                     ended_at=record.updated_at)

    def next_step(self, record: Any, job: JobFacts, now: float, timing: tuple[Deadlines, bool]) -> Step | None:
        deadlines, remove_held = timing
        return next_step(self._facts(record, job), deadlines, now, remove_held)

    @staticmethod
    def confirm(tx: Any, record: Any, step: Step) -> bool:
        return True

    def wake_at(self, record: Any, job: JobFacts, timing: tuple[Deadlines, bool]) -> float | None:
        return next_deadline(self._facts(record, job), timing[0])


VIEWER = ViewerLifecycle()
