"""The levels ``/metrics`` reads from the registry at scrape time: runs by kind and state, outbox rows.

Counted events (transitions, retries, calls) are moved by hooks where they
happen (``swampd.metrics``); levels are read here, from the registry itself,
at each scrape: two grouped queries, whatever the number of runs, so a
scrape stays cheap at 10,000 runs and can never disagree with the registry.
"""
from __future__ import annotations

import time
from typing import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from swampd.lifecycle import LIFECYCLES
from swampd.store import Store


class RegistryCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> list:
        return []  # levels are only known at scrape time

    def collect(self) -> Iterator[GaugeMetricFamily]:
        runs = GaugeMetricFamily("swampd_runs", "Runs in the registry, by kind and state.",
                                 labels=["kind", "state"])
        for kind, state, number in self.store.run_counts():
            lifecycle = LIFECYCLES.get(kind)
            runs.add_metric([kind, lifecycle.state_name(state) if lifecycle else str(state)], number)
        yield runs
        pending = GaugeMetricFamily("swampd_outbox_pending", "Outbox rows not yet done, by effect.",
                                    labels=["effect"])
        oldest = GaugeMetricFamily("swampd_outbox_oldest_age_seconds",
                                   "Age of the oldest outbox row not yet done, by effect.", labels=["effect"])
        now = time.time()
        for effect, number, created in self.store.outbox_summary():
            pending.add_metric([effect], number)
            oldest.add_metric([effect], max(0.0, now - created))
        yield pending
        yield oldest
