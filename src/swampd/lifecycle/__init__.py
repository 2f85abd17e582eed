"""Run lifecycles, one per kind, behind one interface (``base.Lifecycle``).

The reconciler asks ``lifecycle_of(record.kind)`` what to do next and never
names a kind itself; a new kind of run adds its module here and registers
it in ``LIFECYCLES``.
"""
from __future__ import annotations

from swampd.lifecycle.base import ALIVE, GONE, JobFacts, JobView, Lifecycle, Step
from swampd.lifecycle.assessment import ARUN, MRUN
from swampd.lifecycle.viewer import VIEWER

LIFECYCLES: dict[str, Lifecycle] = {lc.kind: lc for lc in (VIEWER, ARUN, MRUN)}


def lifecycle_of(kind: str) -> Lifecycle:
    try:
        return LIFECYCLES[kind]
    except KeyError:
        raise ValueError(f"no lifecycle for run kind {kind!r}") from None


def groups(name: str) -> dict[str, frozenset[int]]:
    """Kind -> the states of the named group ("active", "ended", "may_launch_from") of every kind."""
    return {kind: getattr(lifecycle, name) for kind, lifecycle in LIFECYCLES.items()}


__all__ = ["ALIVE", "GONE", "JobFacts", "JobView", "Lifecycle", "Step", "LIFECYCLES", "lifecycle_of", "groups"]
