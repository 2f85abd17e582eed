"""Every Prometheus metric swampd exports, defined once, and the one-line hooks that move them.

Why one module: the hooks sit where things happen (a committed state change
in the store, a retried side effect and a resync in the reconciler, an
XML-RPC call in the dispatcher), and each should stay a line; the names,
labels and buckets live here so that ``/metrics`` reads as one list.  Levels
that the registry already knows (runs by kind and state, outbox rows
pending) are not counted here but read from the registry at scrape time by
``agentmonitor.observe.collector``, so they can never drift from the truth.

The metrics live on a registry of their own (``REGISTRY``), not the
library's global one: no process or platform metrics appear unless asked for,
and a test that imports swampd twice does not register anything twice.
Labels are bounded: run kinds and state names come from the lifecycles,
effects from ``effects.EFFECTS`` (an unknown one is ``other``), methods from
the registered set (an unknown one is ``unknown``), fault codes from the
contract.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

#: No ``*_created`` series: they double the page and say only when the daemon started.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)

#: Seconds from a launch to its run being up (a viewer READY): boots take seconds to minutes.
LAUNCH_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, float("inf"))
#: Seconds from a launch to its end: viewers live for hours, assessments minutes to hours.
RUN_BUCKETS = (10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, float("inf"))
#: Seconds one XML-RPC call takes inside the daemon (not counting the network).
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"))

TRANSITIONS = Counter(
    "swampd_transitions", "Committed state changes of runs, by kind and from/to state.",
    ["kind", "from_state", "to_state"], registry=REGISTRY)
LAUNCH_TO_READY = Histogram(
    "swampd_launch_to_ready_seconds", "Seconds from a launch to its run being up (a viewer READY).",
    ["kind"], buckets=LAUNCH_BUCKETS, registry=REGISTRY)
RUN_DURATION = Histogram(
    "swampd_run_duration_seconds", "Seconds from a launch to the end of that launch, by kind and final state.",
    ["kind", "state"], buckets=RUN_BUCKETS, registry=REGISTRY)
EFFECT_RETRIES = Counter(
    "swampd_effect_retries", "Outbox items scheduled again, by effect and why (failed, waiting).",
    ["effect", "reason"], registry=REGISTRY)
EFFECT_FAILURES = Counter(
    "swampd_effect_failures", "Side-effect attempts that failed, by effect.", ["effect"], registry=REGISTRY)
RESYNCS = Counter("swampd_resyncs", "Bulk scheduler observations, by outcome (answered, stale).",
                  ["outcome"], registry=REGISTRY)
RESYNC_STALE = Gauge("swampd_resync_stale", "1 when the scheduler did not answer the last resync.",
                     registry=REGISTRY)
SCHEDULER_ANSWERED_AT = Gauge(
    "swampd_scheduler_last_answer_timestamp_seconds", "When the scheduler last answered a resync (Unix time).",
    registry=REGISTRY)
AD_PUBLICATIONS = Counter(
    "swampd_collector_ad_publications", "Attempts to publish collector ads, by outcome (published; refused: "
    "the collector answered but did not take them; unreachable; skipped: held back while failing).",
    ["outcome"], registry=REGISTRY)
RPC_CALLS = Counter("swampd_rpc_calls", "XML-RPC calls, by method and fault code (0: no fault).",
                    ["method", "fault"], registry=REGISTRY)
HOST_AGENT_STARTS = Counter(
    "swampd_host_agent_starts", "Host agent processes started, by why (first: with the daemon; replaced: "
    "the one before died or hung).", ["why"], registry=REGISTRY)
RPC_LATENCY = Histogram("swampd_rpc_call_seconds", "Seconds the daemon spent on one XML-RPC call, by method.",
                        ["method"], buckets=CALL_BUCKETS, registry=REGISTRY)


_last_answer = 0.0


def _scheduler_age() -> float:
    return time.time() - _last_answer if _last_answer else float("nan")


SCHEDULER_AGE = Gauge("swampd_scheduler_last_answer_age_seconds",
                      "Seconds since the scheduler last answered a resync (NaN: never).", registry=REGISTRY)
SCHEDULER_AGE.set_function(_scheduler_age)

#: Method names that are labels as themselves; anything else is "unknown" (callers choose names).
_known_methods: frozenset[str] = frozenset()
#: The labelled children of the hot metrics, by metric and label values: ``labels()`` checks and locks
#: at every call, and these move at every call and commit.  Bounded as the labels are.
_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children.setdefault(key, metric.labels(*labels))
    return child


# -- hooks -------------------------------------------------------------------------
def committed(changes: Iterable[tuple[str, int | None, int, float, float]]) -> None:
    """State changes a transaction committed: (kind, from state, to state, launched_at, at)."""
    from swampd.lifecycle import LIFECYCLES

    for kind, from_state, to_state, launched_at, at in changes:
        lifecycle = LIFECYCLES.get(kind)
        if lifecycle is None:
            continue
        name = lifecycle.state_name
        _child(TRANSITIONS, kind, name(from_state) if from_state is not None else "", name(to_state)).inc()
        if from_state == to_state or not launched_at:
            continue
        if to_state in getattr(lifecycle, "up", ()) and from_state not in getattr(lifecycle, "up", ()):
            LAUNCH_TO_READY.labels(kind).observe(max(0.0, at - launched_at))
        if to_state in lifecycle.ended and (from_state is None or from_state not in lifecycle.ended):
            RUN_DURATION.labels(kind, name(to_state)).observe(max(0.0, at - launched_at))


def effect_retried(effect: str, waiting: bool) -> None:
    """An outbox item will be tried again: it failed (counted as a failure too) or it waits."""
    label = _effect_label(effect)
    EFFECT_RETRIES.labels(label, "waiting" if waiting else "failed").inc()
    if not waiting:
        EFFECT_FAILURES.labels(label).inc()


def effect_failed(effect: str) -> None:
    """An effect failed for good (a refused submit ends its launch instead of being retried)."""
    EFFECT_FAILURES.labels(_effect_label(effect)).inc()


def resynced(answered: bool, asked_at: float) -> None:
    global _last_answer
    RESYNCS.labels("answered" if answered else "stale").inc()
    RESYNC_STALE.set(0 if answered else 1)
    if answered:
        _last_answer = asked_at
        SCHEDULER_ANSWERED_AT.set(asked_at)


def host_agent_started(replaced: bool) -> None:
    """A host agent process started: the daemon's first, or one replacing an agent that died."""
    HOST_AGENT_STARTS.labels("replaced" if replaced else "first").inc()


def ad_publication(outcome: str) -> None:
    """One attempt to publish collector ads: published, refused, unreachable or skipped."""
    AD_PUBLICATIONS.labels(outcome).inc()


def know_methods(names: Iterable[str]) -> None:
    """The registered XML-RPC methods (everything else is counted as ``unknown``)."""
    global _known_methods
    _known_methods = frozenset(names)


def rpc_call(method: str, fault: int, seconds: float) -> None:
    label = method if method in _known_methods else "unknown"
    _child(RPC_CALLS, label, str(fault)).inc()
    _child(RPC_LATENCY, label).observe(seconds)


def _effect_label(effect: str) -> str:
    from swampd.effects import EFFECTS

    return effect if effect in EFFECTS else "other"


def timer() -> Callable[[], float]:
    """Seconds since this call, when called (for latency hooks)."""
    start = time.perf_counter()
    return lambda: time.perf_counter() - start
