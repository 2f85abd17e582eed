"""What the reconciler believes about the scheduler's jobs, and how fresh each belief is.

The world is the last bulk answer (one query per resync), plus single jobs
learnt since: a remove returns what its job looks like right after, and
that answer outranks a bulk answer that was asked for before it.  So the
step after a remove never rests on an observation older than the remove,
and a stop never needs a whole resync to see its own effect.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from swampd.launchpad.jobs import JobObservation, JobStatus
from swampd.lifecycle import JobFacts, JobView
from swampd.store import LaunchEntry, RunRecord


@dataclass(frozen=True)
class Seen:
    """One job's observation and when we asked (our clock)."""

    observation: JobObservation | None
    at: float


class ObservedWorld:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobObservation] = {}
        #: Single-job answers newer than the bulk answer.
        self._fresh: dict[str, Seen] = {}
        self.answered = False
        #: When the last bulk answer was asked for (answered or not).
        self.at = 0.0
        #: When the scheduler last answered.
        self.last_answer_at = 0.0

    def install(self, jobs: dict[str, JobObservation] | None, asked_at: float) -> set[str]:
        """A bulk answer asked for at ``asked_at`` (None: the scheduler did not answer).

        Returns the launch ids whose job looks different from the last answer
        (new, changed or gone): the runs worth looking at now.
        """
        with self._lock:
            self.at = asked_at
            self.answered = jobs is not None
            if jobs is None:
                return set()
            old = self._jobs
            changed = {lid for lid, obs in jobs.items() if old.get(lid) != obs}
            changed.update(lid for lid in old if lid not in jobs)
            self._jobs = jobs
            self.last_answer_at = asked_at
            self._fresh = {lid: seen for lid, seen in self._fresh.items() if seen.at > asked_at}
            return changed

    def learn(self, launch_id: str, observation: JobObservation | None, at: float) -> None:
        """One job as the scheduler described it at ``at`` (None: it has no such job)."""
        with self._lock:
            self._fresh[launch_id] = Seen(observation, at)

    def get(self, launch_id: str) -> Seen | None:
        """The newest thing known about one job, or None when the scheduler did not answer."""
        with self._lock:
            fresh = self._fresh.get(launch_id)
            if fresh is not None:
                return fresh
            if not self.answered:
                return None
            return Seen(self._jobs.get(launch_id), self.at)

    def live_launch_ids(self) -> set[str]:
        with self._lock:
            live = {lid for lid, obs in self._jobs.items() if not obs.finished} if self.answered else set()
            for lid, seen in self._fresh.items():
                if seen.observation is not None and not seen.observation.finished:
                    live.add(lid)
            return live

    def size(self) -> int:
        with self._lock:
            return len(self._jobs)

    # -- reductions the lifecycle reads ------------------------------------------
    def job_facts(self, record: RunRecord) -> JobFacts:
        """The scheduler's answer about ``record``'s current job, reduced to a JobView."""
        if not record.job_ref:
            return JobFacts(JobView.NOT_SUBMITTED)
        seen = self.get(record.launch_id)
        if seen is None:
            return JobFacts(JobView.UNKNOWN)
        obs = seen.observation
        if obs is None:
            if seen.at <= record.submitted_at:
                return JobFacts(JobView.PENDING, "submitted after the last observation")
            return JobFacts(JobView.MISSING, "the scheduler has no record of the job")
        view = {
            JobStatus.IDLE: JobView.PENDING,
            JobStatus.RUNNING: JobView.RUNNING,
            JobStatus.HELD: JobView.HELD,
            JobStatus.COMPLETED: JobView.FINISHED,
            JobStatus.REMOVED: JobView.FINISHED,
        }[obs.status]
        if obs.status is JobStatus.COMPLETED and obs.exit_code != 0:
            view = JobView.FAILED
        detail = obs.reason
        if obs.hold_code is not None:
            detail = f"{obs.reason} (HoldReasonCode {obs.hold_code})"
        return JobFacts(view, detail, obs.leaving, obs.leaving_since, obs.starts, obs.last_vacate)

    def may_be_alive(self, launch: LaunchEntry) -> bool:
        """False only when the scheduler answered, after the launch's job was submitted, that it is gone.

        A launch with no job recorded was never submitted, unless a crash came between the
        scheduler's start and the record (a local start is answered before its reports): then the
        scheduler still shows its job, and it is alive while it does.
        """
        seen = self.get(launch.launch_id)
        if not launch.job_ref:
            return seen is not None and seen.observation is not None and not seen.observation.finished
        if seen is None:
            return True
        if seen.observation is None:
            return seen.at <= launch.submitted_at
        return not seen.observation.finished
