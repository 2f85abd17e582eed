"""The rows of the registry as typed records."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from swampd.states import ViewerState


@dataclass
class ViewerRecord:
    """One viewer key (project, viewer) and its current launch.

    ``epoch`` counts launches of the key; ``launch_id``, ``token``, ``apikey``
    and ``url_uuid`` belong to the current launch only.  ``desired`` is what
    the API asked for ("running" or "stopped"); ``state`` is what we last
    learned.  Times are seconds since the epoch.
    """

    projectid: str
    viewer: str
    execrunid: str
    epoch: int = 0
    launch_id: str = ""
    token: str = ""
    apikey: str = ""
    url_uuid: str = ""
    state: int = int(ViewerState.NO_RECORD)
    status: str = ""
    desired: str = "stopped"
    userid: str = ""
    viewer_uuid: str = ""
    db_path: str = ""
    db_checksum: str = ""
    vmip: str = ""
    url: str = ""
    job_ref: str = ""
    #: When the job was handed to the scheduler (observations older than this say nothing about it).
    submitted_at: float = 0.0
    launched_at: float = 0.0
    ready_at: float = 0.0
    last_request_at: float = 0.0
    stop_requested_at: float = 0.0
    updated_at: float = 0.0
    #: The last distinct thing the scheduler said about the job (for people).
    observation: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.projectid, self.viewer)

    @property
    def viewer_state(self) -> ViewerState:
        return ViewerState(self.state)


VIEWER_COLUMNS: tuple[str, ...] = tuple(ViewerRecord.__dataclass_fields__)


def record_from_row(row: Any) -> ViewerRecord:
    return ViewerRecord(**dict(zip(VIEWER_COLUMNS, row)))


def record_to_row(record: ViewerRecord) -> tuple[Any, ...]:
    values = asdict(record)
    return tuple(values[c] for c in VIEWER_COLUMNS)


@dataclass
class OutboxItem:
    """A side effect that must happen because of a committed state change."""

    id: int
    projectid: str
    viewer: str
    epoch: int
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    next_at: float = 0.0
    last_error: str = ""

    @classmethod
    def from_row(cls, row: Any) -> "OutboxItem":
        id_, projectid, viewer, epoch, kind, payload, attempts, next_at, last_error = row
        return cls(id_, projectid, viewer, epoch, kind, json.loads(payload), attempts, next_at, last_error or "")


@dataclass
class HistoryEntry:
    at: float
    epoch: int
    state: int
    status: str
    source: str
