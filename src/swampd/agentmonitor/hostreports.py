"""A batch of the host agent's reports (``vruntask.reportbatch``), answered entry by entry.

An entry is ``[method, bodies]``: one launch's reports, in order, for
``viewerStatus``, ``runStatus`` or ``viewerSnapshot``.  Viewer reports of the
whole batch are applied in one registry transaction (``ViewerService.
report_batch``): a launch whose reports are refused changes nothing, the
others stand.  Anything else goes through the dispatcher as the same call
from a remote node would.
Each entry is checked as a remote node's call is (``viewer_report``): the
agent is ours, but what it relays came partly from the job's files.

The answer has one outcome per entry: the method's result, or
``{"fault": code, "msg": text}``.  A registry that cannot be written fails
every viewer entry with the fault a client would get (unavailable), which
the agent retries.
"""
from __future__ import annotations

import logging
import sqlite3
import xmlrpc.client
from typing import Any

from swampd import metrics
from swampd.agentmonitor.api import viewer_report
from swampd.agentmonitor.dispatch import Dispatcher
from swampd.agentmonitor.service import Report, ViewerService
from swampd.errors import Fault, SwampdError

log = logging.getLogger(__name__)

#: The counted name of the viewer reports a batch applies (as a remote node's call is counted).
VIEWER_STATUS = "agentMonitor.viewerStatus"


class HostReports:
    def __init__(self, dispatcher: Dispatcher, service: ViewerService) -> None:
        self.dispatcher = dispatcher
        self.service = service

    def apply(self, entries: Any) -> list[Any]:
        if not isinstance(entries, list):
            raise ValueError("a report batch is a list of [method, bodies] entries")
        outcomes: list[Any] = [None] * len(entries)
        viewer_groups: list[tuple[int, list[Report]]] = []
        for i, entry in enumerate(entries):
            try:
                method, bodies = _entry(entry)
                if method == "viewerStatus":
                    viewer_groups.append((i, [viewer_report(body) for body in bodies]))
                elif method == "runStatus":
                    outcomes[i] = self.dispatcher.call_in_process("agentMonitor.runStatus", (bodies,))
                else:
                    for body in bodies:
                        outcomes[i] = self.dispatcher.call(f"agentMonitor.{method}", (body,))
            except xmlrpc.client.Fault as fault:
                outcomes[i] = _fault(fault.faultCode, fault.faultString)
            except SwampdError as exc:
                outcomes[i] = _fault(int(exc.code), exc.message)
        if viewer_groups:
            for (i, _), outcome in zip(viewer_groups, self._viewer_reports([g for _, g in viewer_groups])):
                outcomes[i] = outcome
        return outcomes

    def _viewer_reports(self, groups: list[list[Report]]) -> list[Any]:
        elapsed = metrics.timer()
        try:
            results: list[Any] = list(self.service.report_batch(groups))
        except sqlite3.OperationalError as exc:
            log.error("host agent reports: registry unavailable: %s", exc)
            results = [SwampdError(Fault.UNAVAILABLE, f"registry temporarily unavailable: {exc}")] * len(groups)
        seconds = elapsed()
        outcomes = []
        for result in results:
            code = int(result.code) if isinstance(result, SwampdError) else 0
            metrics.rpc_call(VIEWER_STATUS, code, seconds)
            outcomes.append(_fault(code, result.message) if isinstance(result, SwampdError) else result)
        return outcomes


def _entry(entry: Any) -> tuple[str, list[Any]]:
    if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str)
            or not isinstance(entry[1], list) or not entry[1]):
        raise SwampdError(Fault.BAD_ARGUMENT, "a report batch entry is [method, non-empty list of bodies]")
    return entry[0], entry[1]


def _fault(code: int, message: str) -> dict[str, Any]:
    return {"fault": code, "msg": message}
