"""What operators see: the dashboard, its JSON, and ``/metrics`` (issue 13).

- ``runs``       one row per run of any kind, a run's history and pending effects (read-only)
- ``collector``  the registry's levels for ``/metrics`` (runs by kind and state, outbox rows)
- ``session``    the login cookie made from the API token
- ``web``        the HTTP routes the transport hands GET requests to
- ``static/``    the page, its CSS and JavaScript (package data; nothing from a CDN)

The metric definitions and the hooks that move them are ``swampd.metrics``.
"""
from __future__ import annotations

from typing import Any

from swampd import metrics
from swampd.agentmonitor.changes import ChangeFeed
from swampd.agentmonitor.observe.collector import RegistryCollector
from swampd.agentmonitor.observe.runs import RunsView
from swampd.agentmonitor.observe.web import ObserveWeb
from swampd.store import Store


class Observe:
    """The dashboard and /metrics of one daemon; ``close`` takes its collector off the registry."""

    def __init__(self, store: Store, reconciler: Any, config: Any, changes: ChangeFeed, token: str | None,
                 tls: bool) -> None:
        self.runs = RunsView(store, reconciler, config)
        self.web = ObserveWeb(self.runs, changes, token, tls)
        self._collector = RegistryCollector(store)
        metrics.REGISTRY.register(self._collector)

    def close(self) -> None:
        try:
            metrics.REGISTRY.unregister(self._collector)
        except KeyError:
            pass


__all__ = ["Observe", "ObserveWeb", "RunsView", "RegistryCollector"]
