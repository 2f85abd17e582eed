"""Reports from the execute node to the AgentMonitor, retried until delivered.

A report that cannot be delivered (daemon restarting, network down) is
retried with backoff, never dropped.  A report the daemon refuses as stale,
unauthorised or unknown (faults 2, 3, 4) means this launch has been
superseded: the caller must stop its viewer.
"""
from __future__ import annotations

import logging
import time
import xmlrpc.client
from typing import Any, Callable

from swampd.clients.rpc import connect

log = logging.getLogger(__name__)
FENCED_CODES = frozenset({2, 3, 4})


class Fenced(Exception):
    """The daemon says this launch is no longer current."""


class Reporter:
    def __init__(self, url: str, execrunid: str, epoch: int, token: str, timeout: float = 10.0,
                 cafile: str | None = None) -> None:
        self.url = url
        self.cafile = cafile
        self.execrunid = execrunid
        self.epoch = epoch
        self._token = token
        self._timeout = timeout

    @classmethod
    def for_job(cls, bog: dict[str, str], token: str) -> "Reporter":
        """The reporter of the launch a BOG describes."""
        return cls(bog["swampd_agentmonitor_url"], bog["execrunid"], int(bog["swampd_epoch"]), token,
                   cafile=bog.get("swampd_agentmonitor_ca") or None)

    def send(self, give_up: Callable[[], bool] = lambda: False, **fields: Any) -> bool:
        """Deliver one report; True once delivered, False if ``give_up()`` said to stop trying."""
        body = {"execrunid": self.execrunid, "epoch": self.epoch, "token": self._token}
        body.update({k: v for k, v in fields.items() if v not in (None, "")})
        delay = 0.2
        while True:
            try:
                connect(self.url, cafile=self.cafile, timeout=self._timeout).agentMonitor.viewerStatus(body)
                return True
            except xmlrpc.client.Fault as fault:
                if fault.faultCode in FENCED_CODES:
                    raise Fenced(fault.faultString) from None
                log.warning("report %s refused (%s); retrying", _describe(fields), fault.faultString)
            except (OSError, xmlrpc.client.ProtocolError) as exc:
                log.warning("report %s not delivered (%s); retrying in %.1fs", _describe(fields), exc, delay)
            if give_up():
                return False
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _describe(fields: dict[str, Any]) -> str:
    return str(fields.get("event") or fields.get("state"))
