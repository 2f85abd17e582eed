"""The rows of the registry as typed records.

Every run, whatever its kind, is a ``RunRecord``: the columns of the
``runs`` table, which the reconciler, the scheduler glue and the history
need (epoch, launch id, token, state, job reference, times).  A kind adds
what only it needs as a subclass whose extra fields live in a detail table
of their own (``viewer_runs`` for viewers).  ``RECORD_KINDS`` maps each kind
to its class, so the store reads and writes any run without knowing its
kind's name.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from swampd.identifiers import execrunid as viewer_execrunid


@dataclass(kw_only=True)
class RunRecord:
    """One run (a viewer key, an assessment) and its current launch.

    ``epoch`` counts launches of the run; ``launch_id`` and ``token`` belong
    to the current launch only (earlier ones stay in the ``launches`` table).
    ``desired`` is what the API asked for ("running" or "stopped"); ``state``
    is what we last learned, and only ``Transaction.transition`` changes it.
    Times are seconds since the epoch.
    """

    #: The run's kind ("vrun", "arun", "mrun"): set by each subclass.
    KIND: ClassVar[str] = ""
    #: The kind's own table and its columns (the subclass's own fields).
    DETAIL_TABLE: ClassVar[str] = ""

    id: int = 0
    epoch: int = 0
    launch_id: str = ""
    token: str = ""
    state: int = 0
    status: str = ""
    desired: str = "stopped"
    projectid: str = ""
    userid: str = ""
    job_ref: str = ""
    #: When the job was handed to the scheduler (observations older than this say nothing about it).
    submitted_at: float = 0.0
    launched_at: float = 0.0
    stop_requested_at: float = 0.0
    updated_at: float = 0.0
    #: Jobs started for the current launch (retries and preemptions count here).
    attempts: int = 0
    #: The last distinct thing the scheduler said about the job (for people).
    observation: str = ""

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def key(self) -> str:
        """The run's name within its kind (an execrunid); set by each subclass."""
        raise NotImplementedError

    @property
    def ref(self) -> tuple[str, str]:
        """(kind, key): how the API and the work queue name a run."""
        return (self.KIND, self.key)

    @classmethod
    @functools.cache
    def detail_columns(cls) -> tuple[str, ...]:
        """The kind's own columns; asked on every read and write of a run, so worked out once."""
        base = {f.name for f in fields(RunRecord)}
        return tuple(f.name for f in fields(cls) if f.name not in base)


@dataclass(kw_only=True)
class ViewerRecord(RunRecord):
    """A viewer key (project, viewer) and its current launch.

    ``apikey`` and ``url_uuid`` belong to the current launch; ``vmip`` and
    ``url`` are what its execute node reported.
    """

    KIND: ClassVar[str] = "vrun"
    DETAIL_TABLE: ClassVar[str] = "viewer_runs"

    viewer: str = ""
    execrunid: str = ""
    apikey: str = ""
    url_uuid: str = ""
    viewer_uuid: str = ""
    db_path: str = ""
    db_checksum: str = ""
    vmip: str = ""
    url: str = ""
    ready_at: float = 0.0
    last_request_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.execrunid:
            self.execrunid = viewer_execrunid(self.projectid, self.viewer)

    @property
    def key(self) -> str:
        return self.execrunid

    @property
    def viewer_state(self) -> Any:
        from swampd.states import viewer_state

        return viewer_state(self.state)


@dataclass(kw_only=True)
class AssessmentRecord(RunRecord):
    """An assessment run (ARun): a tool assesses a package once, retried as new launches.

    ``bog`` holds SWAMP's BOG keys of the run (from ``assessment.exec_run_view``,
    or made from ``swampd assess``'s arguments) as JSON; ``results`` what the
    execute node reported of the current launch (``runreports.RunResults``);
    ``result_uuid`` the id its stored results carry in the database (kept so
    that a save repeated after a crash is the same save).
    """

    KIND: ClassVar[str] = "arun"
    DETAIL_TABLE: ClassVar[str] = "assessment_runs"

    execrunid: str = ""
    #: "database" (execute_execution_record) or "cli" (swampd assess).
    source: str = "database"
    tool: str = ""
    package_path: str = ""
    package_sha512: str = ""
    tool_path: str = ""
    tool_sha512: str = ""
    #: SWAMP's BOG keys (JSON object); "" until read from the database.
    bog: str = ""
    notify: bool = False
    #: The node's runResults of the current launch (JSON), "" until they came.
    results: str = ""
    result_uuid: str = ""
    outcome: str = ""
    weaknesses: int = -1
    queued_at: float = 0.0
    started_at: float = 0.0
    collecting_at: float = 0.0
    finished_at: float = 0.0

    @property
    def key(self) -> str:
        return self.execrunid


@dataclass(kw_only=True)
class MetricRecord(AssessmentRecord):
    """A metric run (MRun, ``M-`` ids): an assessment whose results go to the metric tables."""

    KIND: ClassVar[str] = "mrun"


#: Every kind of run the registry holds, by kind.
RECORD_KINDS: dict[str, type[RunRecord]] = {cls.KIND: cls for cls in (ViewerRecord, AssessmentRecord, MetricRecord)}

#: The columns of ``runs`` (the base record's fields).
RUN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RunRecord))


def record_class(kind: str) -> type[RunRecord]:
    try:
        return RECORD_KINDS[kind]
    except KeyError:
        raise ValueError(f"no run kind {kind!r}") from None


def register_kind(cls: type[RunRecord]) -> type[RunRecord]:
    """Make a new kind of run storable (its detail table must be in the schema)."""
    RECORD_KINDS[cls.KIND] = cls
    return cls


@dataclass
class OutboxItem:
    """A side effect that must happen because of a committed state change."""

    id: int
    run_id: int
    epoch: int
    effect: str
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    next_at: float = 0.0
    last_error: str = ""

    @classmethod
    def from_row(cls, row: Any) -> "OutboxItem":
        id_, run_id, epoch, effect, payload, attempts, next_at, last_error = row
        return cls(id_, run_id, epoch, effect, json.loads(payload), attempts, next_at, last_error or "")


@dataclass
class HistoryEntry:
    """One state change: from where to where, why, and who said so."""

    at: float
    epoch: int
    from_state: int | None
    state: int
    status: str
    source: str
    reason: str = ""


@dataclass
class LaunchEntry:
    """One launch of a run: kept after the run moves on, so its job and token stay known."""

    epoch: int
    launch_id: str
    token: str
    job_ref: str
    submitted_at: float
    created_at: float
