"""The host agent's reports, every job's together: one link message per turn, not one per report.

Each local launch makes two reports (its start, then "up"), and a stop or
an end a few more; sent one by one, each is a link message, a thread of
the daemon, a registry transaction and a thread here waiting for the
answer.  In a burst of 500 launches that is a thousand round trips, and the
prober, which reports "up", waited out each one before it could look at the
next program.

So every report goes into one queue, and one thread sends whatever has
gathered while the previous message was out, as one ``report_batch`` call;
the daemon applies a batch in one transaction and answers each entry on its
own.  Nothing waits for company: a report alone goes at once.  The order
of one job's reports is kept (one queue, one sender).  A caller still
waits for its own entry's answer, so ``deliver`` works as before: a fault
comes back as ``xmlrpc.client.Fault`` (fenced or to retry), a lost link as
the exception that lost it.
"""
from __future__ import annotations

import logging
import threading
import xmlrpc.client
from concurrent.futures import Future
from typing import Any, Callable

log = logging.getLogger(__name__)

#: ``send(entries)``: one message of ``[method, bodies]`` entries; its answer has one outcome per entry.
SendBatch = Callable[[list[list[Any]]], list[Any]]
#: Entries in one message at most (a report is a few hundred bytes; the link takes 1 MiB).
MAX_ENTRIES = 256


class ReportBatcher:
    def __init__(self, send: SendBatch) -> None:
        self._send = send
        self._queue: list[tuple[list[Any], Future[Any]]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="host-reports", daemon=True)
        self._thread.start()

    def call(self, method: str, bodies: list[dict[str, Any]]) -> Any:
        """Send ``bodies`` (one launch's reports, in order) with the next message; the daemon's answer
        for them, or the exception that stands for it."""
        future: Future[Any] = Future()
        with self._cond:
            if self._closed:
                raise ConnectionError("the host agent is closing")
            self._queue.append(([method, bodies], future))
            self._cond.notify()
        return future.result()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    pending, self._queue = self._queue, []
                    for _, future in pending:
                        future.set_exception(ConnectionError("the host agent is closing"))
                    return
                batch, self._queue = self._queue[:MAX_ENTRIES], self._queue[MAX_ENTRIES:]
            self._deliver(batch)

    def _deliver(self, batch: list[tuple[list[Any], Future[Any]]]) -> None:
        try:
            outcomes = self._send([entry for entry, _ in batch])
            if not isinstance(outcomes, list) or len(outcomes) != len(batch):
                raise ConnectionError(f"the daemon answered {len(batch)} reports with {outcomes!r:.200}")
        except Exception as exc:  # the whole message: each caller decides (deliver retries a lost link)
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes):
            if isinstance(outcome, dict) and "fault" in outcome:
                future.set_exception(xmlrpc.client.Fault(int(outcome["fault"]), str(outcome.get("msg", ""))))
            else:
                future.set_result(outcome)
