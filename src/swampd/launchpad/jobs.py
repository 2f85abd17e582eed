"""What LaunchPad asks of a scheduler, and what a scheduler tells back.

A scheduler backend (local processes, HTCondor) receives complete job
descriptions and nothing else: it never reads a viewer's configuration or a
BOG.  It submits a job idempotently by launch id, observes all of swampd's
jobs in one bulk call, removes a job (politely, or by force), and says how
long it gives a removed job to leave.  Everything else about the lifecycle
lives above it, in the reconciler.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol, Union

from swampd.bog import write_private

#: A job attribute's value: a string (quoted in ClassAds), an integer or a boolean.
AttributeValue = Union[str, int, bool]


class JobStatus(str, Enum):
    IDLE = "idle"
    RUNNING = "running"
    HELD = "held"
    COMPLETED = "completed"
    REMOVED = "removed"


#: Statuses after which the job will never run again.
FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.REMOVED})


@dataclass(frozen=True)
class JobDescription:
    """One launch's job, complete: what a scheduler needs to run it and nothing more.

    Made by a per-kind job builder (``launchpad.viewer_job``); the scheduler
    backends render it (a process on this host, an HTCondor submit
    description) without knowing what kind of run it belongs to.
    """

    kind: str
    #: The run's key (an execrunid); jobs of one run share it.
    key: str
    launch_id: str
    epoch: int
    #: The job directory: the BOG and the token file are there (HTCondor's initialdir).
    job_dir: Path
    bog_file: str
    token_file: str
    #: "process", "vm" or "docker": what runs the work.
    platform: str
    #: HTCondor universe ("vm", "docker", "vanilla").
    universe: str
    #: The execute-node agent's command in the job directory (local processes, vanilla jobs).
    argv: tuple[str, ...] = ()
    memory_mb: int = 1024
    cpus: int = 1
    #: Container image (docker).
    image: str = ""
    #: Attributes a batch scheduler puts on the job (SWAMP_* and swampd's own).
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    #: Seconds a job may wait to start before the scheduler itself removes it.
    queue_timeout: float = 600.0
    #: Seconds a job may run before the scheduler itself stops it (a backstop, beyond our own deadlines).
    max_runtime: float = 86400.0
    #: Accounting group and priority (batch schedulers).
    accounting_group: str = ""
    priority: int = 0
    #: HTCondor concurrency limits (licensed tools).
    concurrency_limits: str = ""
    #: The files the job reads from its directory (the BOG, the token): name -> text, written by the
    #: scheduler as it submits (``write_inputs``).  A local process job's are written by the host
    #: agent: creating files was a tenth of the daemon's work in a burst of launches.
    inputs: dict[str, str] = field(default_factory=dict)
    #: The job directory was made by this submit: nothing in it can be an earlier start's (a
    #: scheduler adopting a job it finds there need not look).
    new_dir: bool = False


def write_inputs(job: JobDescription) -> None:
    """Write the job's input files into its directory, each atomically and private (0600)."""
    for name, text in job.inputs.items():
        write_private(job.job_dir / name, text)


@dataclass(frozen=True)
class JobObservation:
    """What the scheduler says about one job at one moment."""

    launch_id: str
    status: JobStatus
    exit_code: int | None = None
    reason: str = ""
    hold_code: int | None = None
    #: The run the job belongs to (jobs of one run share it).
    key: str = ""
    #: A remove was asked for and the job has not left yet; since when.
    leaving: bool = False
    leaving_since: float = 0.0
    #: Times the job was started, and when it was last vacated (preemption).
    starts: int = 0
    last_vacate: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class SchedulerUnavailable(Exception):
    """The scheduler did not answer: what we know about its jobs is stale, not gone."""


class SchedulerError(Exception):
    """The scheduler answered but refused or failed the request."""


class EarlierJobAlive(Exception):
    """A new launch waits: a job of an earlier launch of the same run has not left yet.

    At most one job per run is alive at any moment, so the new job is
    submitted only once the old one (a guest still saving its database) is gone.
    """


class Scheduler(Protocol):
    kind: str
    platforms: frozenset[str]

    def submit(self, job: JobDescription) -> str:
        """Start the job unless a job with this launch id exists; return its job reference."""

    def observe(self) -> dict[str, JobObservation]:
        """Every job of swampd's the scheduler knows, by launch id (one bulk query)."""

    def remove(self, launch_id: str, reason: str, force: bool = False) -> JobObservation | None:
        """Ask the job to go (``force``: take it out now); idempotent.  Returns what the job
        looks like right after, or None when the scheduler has no such job."""

    def forget(self, launch_id: str) -> None:
        """Drop what is kept of a finished job (its sandbox)."""

    def leave_time(self) -> float:
        """Seconds this scheduler gives a removed job to leave before it is forced out."""

    def recover(self) -> None:
        """At start: take over what a previous daemon left running (jobs it supervised itself)."""

    def close(self) -> None:
        """The daemon stops; jobs keep running and are taken over by the next start."""
