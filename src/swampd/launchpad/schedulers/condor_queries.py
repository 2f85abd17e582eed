"""What swampd asks a schedd, and how it reads the answers: constraints and observations.

Pure functions over ClassAds (or the dicts the double returns), so every
reading of JobStatus, hold and exit codes is tested without a pool.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from swampd.launchpad.jobs import JobObservation, JobStatus
from swampd.launchpad.submit_description import EPOCH_ATTR, KEY_ATTR, LAUNCH_ATTR, classad_string

#: HTCondor's JobStatus codes.
IDLE, RUNNING, REMOVED, COMPLETED, HELD, TRANSFERRING_OUTPUT, SUSPENDED = 1, 2, 3, 4, 5, 6, 7
#: Statuses in which a starter runs the job (a remove then has it vacate first).
RUNNING_STATUSES = frozenset({RUNNING, TRANSFERRING_OUTPUT, SUSPENDED})
#: The attributes observation reads, and nothing more (the projection).
PROJECTION = [
    "ClusterId", "ProcId", "JobStatus", "EnteredCurrentStatus", "QDate", "JobCurrentStartDate",
    "HoldReason", "HoldReasonCode", "HoldReasonSubCode", "RemoveReason", "ExitCode",
    "RemoteHost", "JobRunCount", "NumJobStarts", "LastVacateTime", "Owner", KEY_ATTR, LAUNCH_ATTR, EPOCH_ATTR,
]
#: Every swampd job, and only those.
ALL_JOBS = f"{KEY_ATTR} =!= undefined && {LAUNCH_ATTR} =!= undefined"
REF_RE = re.compile(r"(\d+)\.(\d+)")
#: How a schedd stores the reason of a user's remove or hold: "<reason> (by user <user>)".
BY_USER_RE = re.compile(r"(?s)(?P<text>.*?)\s*\(by user (?P<user>[^()]*)\)")


def launch_constraint(launch_id: str, key: str) -> str:
    """Jobs of one launch of one key; the values are quoted, so they cannot change the expression."""
    return f"{LAUNCH_ATTR} == {classad_string(launch_id)} && {KEY_ATTR} == {classad_string(key)}"


def key_constraint(key: str) -> str:
    return f"{KEY_ATTR} == {classad_string(key)}"


def refs_constraint(refs: list[str]) -> str:
    """Jobs by ``cluster.proc`` (each ref is checked to be two integers)."""
    parts = []
    for ref in refs:
        match = REF_RE.fullmatch(ref)
        if match is None:
            raise ValueError(f"job reference {ref!r} is not cluster.proc")
        parts.append(f"(ClusterId == {int(match[1])} && ProcId == {int(match[2])})")
    return f"({ALL_JOBS}) && ({' || '.join(parts)})"


def job_ref(ad: Mapping[str, Any]) -> str:
    return f"{int(ad['ClusterId'])}.{int(ad['ProcId'])}"


def user_reason(ad: Any, attribute: str, default: str) -> str:
    """A reason given to a schedd (``RemoveReason``, ``HoldReason``), as swampd shows it.

    A schedd appends ``(by user <user>)`` to the reason of every remove and
    hold a user asks for (``(by user condor)`` for root and the pool's own
    tools).  When that user is the job's owner, it was swampd itself, and
    the reason is swampd's own text, the same on every pool; an action by
    anyone else keeps the schedd's words, naming who.  Reasons of the
    schedd's own policies carry no suffix and are kept as they are.
    """
    value = ad_get(ad, attribute)
    if not isinstance(value, str) or not value:
        return default
    match = BY_USER_RE.fullmatch(value)
    owner = ad_get(ad, "Owner")
    if match is not None and isinstance(owner, str) and match["user"] == owner:
        return match["text"] or default
    return value


def ad_get(ad: Any, name: str, default: Any = None) -> Any:
    try:
        value = ad.get(name, default)
    except Exception:  # a projection may leave an attribute out; an expression may not evaluate
        return default
    return default if value is None else value


def observation_from_ad(ad: Any, from_history: bool = False) -> JobObservation:
    """What one job ad (queue or history) says, in the scheduler protocol's terms."""
    common: dict[str, Any] = {
        "launch_id": str(ad_get(ad, LAUNCH_ATTR, "")),
        "key": str(ad_get(ad, KEY_ATTR, "")),
        # JobRunCount: the schedd counts a start when it starts the shadow.  NumJobStarts comes
        # with the shadow's next queue update (SHADOW_QUEUE_UPDATE_INTERVAL, 15 min by default).
        "starts": _number(ad_get(ad, "JobRunCount"), _number(ad_get(ad, "NumJobStarts"), 0)),
        "last_vacate": float(_number(ad_get(ad, "LastVacateTime"), 0)),
    }
    status = int(ad_get(ad, "JobStatus", 0))
    if status == HELD:
        code = ad_get(ad, "HoldReasonCode")
        return JobObservation(status=JobStatus.HELD, reason=user_reason(ad, "HoldReason", "held"),
                              hold_code=int(code) if code is not None else None, **common)
    if status == COMPLETED:
        exit_code = ad_get(ad, "ExitCode")
        exit_code = int(exit_code) if isinstance(exit_code, (int, float)) else None
        return JobObservation(status=JobStatus.COMPLETED, exit_code=exit_code,
                              reason=f"job completed with exit code {exit_code}", **common)
    if status == REMOVED:
        reason = user_reason(ad, "RemoveReason", "removed")
        if from_history:
            return JobObservation(status=JobStatus.REMOVED, reason=reason, **common)
        # Still in the queue: removal asked for, the job is shutting down (up to job_max_vacate_time).
        started = ad_get(ad, "JobCurrentStartDate") is not None
        return JobObservation(status=JobStatus.RUNNING if started else JobStatus.IDLE,
                              reason=f"being removed: {reason}", leaving=True,
                              leaving_since=float(_number(ad_get(ad, "EnteredCurrentStatus"), 0)), **common)
    if status in RUNNING_STATUSES:
        return JobObservation(status=JobStatus.RUNNING, reason=str(ad_get(ad, "RemoteHost", "")), **common)
    if status == IDLE:
        return JobObservation(status=JobStatus.IDLE, **common)
    if from_history:
        return JobObservation(status=JobStatus.COMPLETED, reason=f"left the queue with JobStatus {status}",
                              **common)
    return JobObservation(status=JobStatus.IDLE, reason=f"JobStatus {status}", **common)


def _number(value: Any, default: float) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def ref_order(ad: Any) -> tuple[int, int]:
    return (int(ad_get(ad, "ClusterId", 0)), int(ad_get(ad, "ProcId", 0)))
