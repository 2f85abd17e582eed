"""Connections to a real pool: the schedd (located lazily) and the collector.

The only code that builds ``htcondor2.Schedd``/``Collector`` objects; tests
inject doubles instead and never come here.
"""
from __future__ import annotations

from typing import Any

from swampd.config import HTCondorConfig


class LazySchedd:
    """The real schedd, located on first use and again after any failure.

    Locating asks the collector, which may be down when swampd starts; that
    must make observations stale, not stop the daemon.
    """

    def __init__(self, condor: HTCondorConfig) -> None:
        self.condor = condor
        self._schedd: Any = None

    def _target(self) -> Any:
        if self._schedd is None:
            self._schedd = make_schedd(self.condor)
        return self._schedd

    def _forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._target(), method)(*args, **kwargs)
        except Exception:
            self._schedd = None  # it may have moved: locate it again next time
            raise

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self._forward("query", *args, **kwargs)

    def history(self, *args: Any, **kwargs: Any) -> Any:
        return self._forward("history", *args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        return self._forward("submit", *args, **kwargs)

    def act(self, *args: Any, **kwargs: Any) -> Any:
        return self._forward("act", *args, **kwargs)


def make_schedd(condor: HTCondorConfig) -> Any:
    """The real schedd: named in the config, or the pool's default."""
    import htcondor2

    if not condor.schedd and not condor.pool:
        return htcondor2.Schedd()
    collector = htcondor2.Collector(condor.pool or None)
    if condor.schedd:
        location = collector.locate(htcondor2.DaemonType.Schedd, condor.schedd)
    else:
        location = collector.locate(htcondor2.DaemonType.Schedd)
    return htcondor2.Schedd(location)


def make_collector(condor: HTCondorConfig) -> Any:
    import htcondor2

    return htcondor2.Collector(condor.pool or None)
