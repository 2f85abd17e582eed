"""Delivering a call to the AgentMonitor: retried with backoff until it lands, is refused, or we give up.

Every message an execute node sends (a state report, an event, a saved
viewer database) goes through ``deliver``: a daemon that is restarting or a
network that is down delays a message, it never drops it.  A fault that
says this launch is no longer current (unknown, stale or unauthorised:
codes 2, 3, 4) is not retried: it raises ``Fenced``, and the caller stops
its machine.
"""
from __future__ import annotations

import http.client
import logging
import time
import xmlrpc.client
from typing import Callable

log = logging.getLogger(__name__)

#: Faults that mean the launch has been superseded (unknown, stale or fenced, not authorised).
FENCED_CODES = frozenset({2, 3, 4})
#: Failures that say nothing about the message: the daemon or the path to it is not there yet.
TRANSIENT = (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError, xmlrpc.client.ResponseError)
FIRST_DELAY = 0.2
MAX_DELAY = 10.0


class Fenced(Exception):
    """The daemon says this launch is no longer current."""


def deliver(call: Callable[[], object], what: str, give_up: Callable[[], bool],
            sleep: Callable[[float], None] = time.sleep) -> bool:
    """Run ``call`` until it returns: True once delivered, False if ``give_up()`` said to stop.

    Raises Fenced when the daemon refuses the launch itself.
    """
    delay = FIRST_DELAY
    while True:
        try:
            call()
            return True
        except xmlrpc.client.Fault as fault:
            if fault.faultCode in FENCED_CODES:
                raise Fenced(fault.faultString) from None
            log.warning("%s refused (%s); retrying in %.1fs", what, fault.faultString, delay)
        except TRANSIENT as exc:
            log.warning("%s not delivered (%s); retrying in %.1fs", what, exc, delay)
        if give_up():
            return False
        sleep(delay)
        delay = min(delay * 2, MAX_DELAY)


def give_up_after(seconds: float) -> Callable[[], bool]:
    """A ``give_up`` that says stop once ``seconds`` have passed from now."""
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() > deadline
