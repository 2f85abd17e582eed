"""The one retry loop of the execute node: delayed, never dropped; refused as stale, never retried."""
from __future__ import annotations

import http.client
import xmlrpc.client

import pytest

from swampd.vruntask.delivery import Fenced, deliver


class Flaky:
    """Fails with each of ``failures`` in turn, then succeeds."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return True


def test_transient_failures_are_retried_with_growing_capped_delays() -> None:
    slept: list[float] = []
    call = Flaky(ConnectionRefusedError(), http.client.RemoteDisconnected(), http.client.BadStatusLine("x"),
                 xmlrpc.client.ProtocolError("u", 502, "Bad Gateway", {}), xmlrpc.client.Fault(5, "busy"),
                 *[TimeoutError()] * 5)
    assert deliver(call, "report", lambda: False, sleep=slept.append) is True
    assert call.calls == 11
    assert slept == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0, 10.0]


@pytest.mark.parametrize("code", [2, 3, 4])
def test_a_launch_refused_as_unknown_stale_or_unauthorised_is_fenced_at_once(code: int) -> None:
    call = Flaky(xmlrpc.client.Fault(code, "stale report"))
    with pytest.raises(Fenced, match="stale report"):
        deliver(call, "report", lambda: False, sleep=lambda s: None)
    assert call.calls == 1


def test_giving_up_ends_the_retries() -> None:
    call = Flaky(*[ConnectionRefusedError()] * 100)
    tries = iter([False, False, True])
    assert deliver(call, "report", lambda: next(tries), sleep=lambda s: None) is False
    assert call.calls == 3
