"""What LaunchPad asks of a scheduler, and what a scheduler tells back.

A scheduler backend (local subprocesses, HTCondor) implements three things:
submit a job idempotently by launch id, observe all of swampd's jobs in one
bulk call, and remove a job.  Everything else about the lifecycle lives above
it, in the reconciler.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol


class JobStatus(str, Enum):
    IDLE = "idle"
    RUNNING = "running"
    HELD = "held"
    COMPLETED = "completed"
    REMOVED = "removed"


#: Statuses after which the job will never run again.
FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.REMOVED})


@dataclass(frozen=True)
class JobSpec:
    """One launch's job: where its files are and what to run there."""

    launch_id: str
    execrunid: str
    job_dir: Path
    argv: tuple[str, ...]
    platform: str
    #: Attributes a batch scheduler puts on the job (SWAMP_* and swampd's own).
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobObservation:
    """What the scheduler says about one job at one moment."""

    launch_id: str
    status: JobStatus
    exit_code: int | None = None
    reason: str = ""
    hold_code: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class SchedulerUnavailable(Exception):
    """The scheduler did not answer: what we know about its jobs is stale, not gone."""


class SchedulerError(Exception):
    """The scheduler answered but refused or failed the request."""


class Scheduler(Protocol):
    kind: str
    platforms: frozenset[str]

    def submit(self, spec: JobSpec) -> str:
        """Start the job unless a job with this launch id exists; return its job reference."""

    def observe(self) -> dict[str, JobObservation]:
        """Every job of swampd's the scheduler knows, by launch id (one bulk query)."""

    def remove(self, launch_id: str, reason: str) -> None:
        """Stop the job politely, escalating after the grace period; idempotent."""

    def forget(self, launch_id: str) -> None:
        """Drop what is kept of a finished job (its sandbox)."""
