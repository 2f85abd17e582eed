"""Named crash points for testing recovery: ``SWAMPD_FAILPOINTS=name[,name]``.

When a named point is reached and listed in the environment variable, the
process kills itself with SIGKILL, exactly as ``kill -9`` would, so tests can
crash the daemon between two steps of a launch and check that a restart
recovers.  Unset (production), a failpoint is one dictionary lookup.
"""
from __future__ import annotations

import os
import signal

_ARMED = frozenset(filter(None, os.environ.get("SWAMPD_FAILPOINTS", "").split(",")))


def failpoint(name: str) -> None:
    """Die here, with SIGKILL, if ``name`` is armed."""
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
