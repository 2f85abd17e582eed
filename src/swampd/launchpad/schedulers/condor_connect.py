"""Connections to a real pool: the schedd (located lazily) and the collector.

The only code that builds ``htcondor2.Schedd``/``Collector`` objects; tests
inject doubles instead and never come here.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from swampd.config import HTCondorConfig

log = logging.getLogger(__name__)


class LazySchedd:
    """The real schedd, located on first use and again after any failure.

    Locating asks the collector (or, for the local schedd, its address
    file), which may be down when swampd starts; that must make
    observations stale, not stop the daemon.  A schedd that restarts comes
    back on a new port unless the pool uses a shared port or a fixed
    ``SCHEDD_ARGS = -p <port>``, and an ``htcondor2.Schedd`` made before
    keeps dialling the old one: so a failed call drops the object, and the
    next call locates the schedd again.
    """

    def __init__(self, condor: HTCondorConfig,
                 connect: Callable[[HTCondorConfig], Any] | None = None) -> None:
        self.condor = condor
        self._connect = connect or make_schedd
        self._schedd: Any = None
        self._lock = threading.Lock()
        #: Times the schedd was located (the first time, and after each failure).
        self.located = 0

    def _target(self) -> Any:
        with self._lock:
            if self._schedd is None:
                self._schedd = self._connect(self.condor)
                self.located += 1
                if self.located > 1:
                    log.info("located the schedd again (%s)", _address(self._schedd))
            return self._schedd

    def _forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        target = self._target()
        try:
            return getattr(target, method)(*args, **kwargs)
        except Exception:
            with self._lock:
                if self._schedd is target:
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


def _address(schedd: Any) -> str:
    return str(getattr(schedd, "_addr", "") or "address unknown")


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
