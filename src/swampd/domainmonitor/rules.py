"""When a viewer domain is an orphan, and when an orphan may be reaped: pure rules, no I/O.

Why these rules (seed 000: "in the event vruntask dies and the VM is still
running, DomainMonitor will trash the VM as soon as it can and let
AgentMonitor know"): a domain is reaped only when it is provably swampd's
(name prefix *and* metadata), and either its vruntask is gone (its liveness
lock is free) or the AgentMonitor says the launch it belongs to is over or
superseded.  Unknown is not gone (DESIGN invariant 3): an AgentMonitor that
does not answer, or a lock that cannot be probed, never makes an orphan.
An orphan must stay one for a grace period before it is reaped, so a
vruntask restarting, or a report in flight, is not raced.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from swampd.states import ENDED, ViewerState, state_name


class Action(str, Enum):
    IGNORE = "ignore"  #: not ours: never touched
    KEEP = "keep"      #: ours and wanted
    WAIT = "wait"      #: an orphan inside its grace period
    REAP = "reap"      #: destroy (if running) and undefine


@dataclass(frozen=True)
class DomainFacts:
    name: str
    owned: bool
    active: bool
    execrunid: str = ""
    epoch: int = 0
    #: True: the lock is held; False: free or its file is gone; None: cannot tell.
    vruntask_alive: bool | None = None
    #: True: the AgentMonitor wants this launch; False: it does not; None: unknown.
    wanted: bool | None = None
    wanted_reason: str = ""


@dataclass(frozen=True)
class Decision:
    name: str
    action: Action
    reason: str = ""


def wanted_by(record: dict[str, object] | None, epoch: int) -> tuple[bool | None, str]:
    """Does the AgentMonitor's record (``getViewer``) still want launch ``epoch``?"""
    if record is None:
        return None, "AgentMonitor did not answer"
    try:
        current = int(record.get("epoch", 0))  # type: ignore[call-overload]
        state = int(record.get("state", 0))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None, "AgentMonitor answer unreadable"
    if current != epoch:
        return False, f"launch {epoch} was superseded by launch {current}"
    if state in {int(s) for s in ENDED}:
        return False, f"the viewer is {state_name(state)}"
    return True, f"the viewer is {ViewerState(state).name}"


def orphan_reason(facts: DomainFacts) -> str | None:
    if facts.vruntask_alive is False:
        return "its vruntask is gone"
    if facts.wanted is False:
        return f"the AgentMonitor no longer wants it: {facts.wanted_reason}"
    return None


def decide(facts: DomainFacts, orphan_since: float | None, now: float, grace: float) -> Decision:
    """What to do with one domain, given since when it has been an orphan (None: not before)."""
    if not facts.owned:
        return Decision(facts.name, Action.IGNORE, "not a swampd domain")
    reason = orphan_reason(facts)
    if reason is None:
        return Decision(facts.name, Action.KEEP)
    since = now if orphan_since is None else orphan_since
    if now - since < grace:
        return Decision(facts.name, Action.WAIT, f"{reason} (reaped after {grace:g}s)")
    return Decision(facts.name, Action.REAP, reason)
