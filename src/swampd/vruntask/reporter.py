"""The execute node's line to the AgentMonitor: this launch's reports, each delivered or refused.

A ``Reporter`` speaks for one launch (run id, epoch, token); every call goes
through ``delivery.deliver``, so a report is retried until delivered, and a
refusal as stale, unauthorised or unknown raises ``Fenced``: the launch has
been superseded and the caller must stop its machine.
"""
from __future__ import annotations

from typing import Any, Callable

from swampd.clients.rpc import connect
from swampd.vruntask.delivery import deliver
from swampd.vruntask.job import ReportTarget


def _never() -> bool:
    return False


class Reporter:
    def __init__(self, url: str, execrunid: str, epoch: int, token: str, timeout: float = 10.0,
                 cafile: str | None = None, status_method: str = "viewerStatus") -> None:
        """``status_method``: the AgentMonitor method that takes this kind of run's states and events."""
        self.url = url
        self.cafile = cafile
        self.execrunid = execrunid
        self.epoch = epoch
        self.status_method = status_method
        self._token = token
        self._timeout = timeout

    @classmethod
    def for_target(cls, target: ReportTarget, status_method: str = "viewerStatus") -> Reporter:
        """The reporter of the launch a job's BOG names."""
        return cls(target.url, target.execrunid, target.epoch, target.token, cafile=target.cafile,
                   status_method=status_method)

    def send(self, give_up: Callable[[], bool] = _never, **fields: Any) -> bool:
        """Deliver one state or event report; True once delivered, False if ``give_up()`` said stop."""
        what = f"report {fields.get('event') or fields.get('state')}"
        return self.call(self.status_method, fields, what, give_up)

    def call(self, method: str, fields: dict[str, Any], what: str, give_up: Callable[[], bool] = _never) -> bool:
        """``agentMonitor.<method>`` with this launch's identity and ``fields`` (empty values left out)."""
        body = {"execrunid": self.execrunid, "epoch": self.epoch, "token": self._token}
        body.update({k: v for k, v in fields.items() if v not in (None, "")})

        def once() -> object:
            proxy = connect(self.url, cafile=self.cafile, timeout=self._timeout).agentMonitor
            return getattr(proxy, method)(body)

        return deliver(once, what, give_up)
