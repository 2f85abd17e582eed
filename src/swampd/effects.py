"""The side effects: every kind of outbox item, its lane, what triggers it, and how it runs.

This is the one list.  An effect is an outbox row written in the same
transaction as the state change that needs it, and performed afterwards by
the reconciler with retries until it is done.  Three properties decide how:

* ``lane``: items of one lane of one run are performed strictly in order
  (the ``job`` lane: an old job goes before a new one is submitted, and a
  saved database is checked before the job that restores it).  A failing or
  waiting item holds back its own lane only.
* ``slow``: the effect talks to something that can hang or take minutes (a
  database, Code Dx, a collector, a file a caller named).  It runs on a
  worker pool of its own kind, so that eight uploads hanging on an
  unresponsive Code Dx never keep a launch from reaching its submit.
* ``trigger``: what enqueues it, for people and for the wiring.  Effects
  whose trigger is ``CHANGE`` ride along with every state change of their
  run kinds when they are enabled (``change_effects``).

The handlers themselves live in the rooms that own the services they talk
to; the daemon registers them under these names.
"""
from __future__ import annotations

from dataclasses import dataclass

#: The trigger of effects enqueued with every state change of a run.
CHANGE = "every state change"


class Waiting(Exception):
    """An effect cannot happen yet and is not failing (an earlier job is still leaving):
    it is tried again at the next resync (or after ``after`` seconds), without counting an attempt."""

    def __init__(self, message: str, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


@dataclass(frozen=True)
class Effect:
    name: str
    lane: str
    trigger: str
    slow: bool = False
    #: Concurrent items of this effect across all runs (slow effects only).
    workers: int = 2
    #: Run kinds whose state changes enqueue it (CHANGE trigger only).
    kinds: tuple[str, ...] = ()


EFFECTS: dict[str, Effect] = {effect.name: effect for effect in (
    Effect("restore", lane="job", slow=True, workers=2,
           trigger="a viewer launch that restores a saved database: once the previous job has left, "
                   "pick the latest snapshot and check its checksum"),
    Effect("submit", lane="job", trigger="a launch is claimed"),
    Effect("remove", lane="job", trigger="a stop, a deadline, an ended launch whose job still runs"),
    Effect("forget", lane="job", trigger="a relaunch: the previous launch's sandbox is dropped"),
    Effect("advertise", lane="advertise", slow=True, workers=2, trigger=CHANGE, kinds=("vrun",)),
    Effect("upload", lane="upload", slow=True, workers=4, trigger=CHANGE, kinds=("vrun",)),
    Effect("launch_history", lane="launch_history", slow=True, workers=2, trigger=CHANGE, kinds=("vrun",)),
    Effect("store_viewer", lane="store_viewer", slow=True, workers=2,
           trigger="a saved viewer database is reported"),
    Effect("prepare", lane="job", slow=True, workers=2,
           trigger="an assessment run is accepted: its BOG from the database, its archives checked"),
    Effect("store_results", lane="results", slow=True, workers=2,
           trigger="an execute node delivered an assessment's results"),
    Effect("run_status", lane="database", slow=True, workers=2, trigger=CHANGE, kinds=("arun", "mrun")),
    Effect("db_results", lane="database", slow=True, workers=2, trigger="an assessment's results were stored"),
    Effect("vm_fields", lane="database", slow=True, workers=2,
           trigger="an assessment's machine reported its address (WROTEIPADDR)"),
    Effect("notify", lane="notify", slow=True, workers=1, trigger="a run that asked for it has its final status"),
)}


def effect(name: str) -> Effect:
    """The named effect; an unknown name (an outbox row from a newer release) runs in a lane of its own."""
    return EFFECTS.get(name) or Effect(name, lane=name, trigger="unknown")


def change_effects(enabled: set[str] | frozenset[str]) -> dict[str, tuple[str, ...]]:
    """Run kind -> the enabled effects that ride along with every state change of that kind."""
    by_kind: dict[str, list[str]] = {}
    for spec in EFFECTS.values():
        if spec.trigger == CHANGE and spec.name in enabled:
            for kind in spec.kinds:
                by_kind.setdefault(kind, []).append(spec.name)
    return {kind: tuple(names) for kind, names in by_kind.items()}
