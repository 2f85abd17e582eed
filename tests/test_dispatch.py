"""The dispatcher's in-process methods: the host agent's reports of one instant, never a client's."""
from __future__ import annotations

import xmlrpc.client

import pytest

from swampd.agentmonitor.dispatch import Dispatcher
from swampd.errors import Fault, SwampdError


def test_an_in_process_method_is_not_reachable_by_a_call_and_not_listed() -> None:
    d = Dispatcher()
    d.register("agentMonitor.viewerStatus", lambda struct: "public")
    d.register_in_process("agentMonitor.viewerStatus", lambda structs: f"together: {len(structs)}")
    assert d.call("agentMonitor.viewerStatus", ({"a": 1},)) == "public"
    assert d.call_in_process("agentMonitor.viewerStatus", ([{}, {}, {}],)) == "together: 3"
    assert d.list_methods().count("agentMonitor.viewerStatus") == 1
    d.register_in_process("agentMonitor.onlyHere", lambda: None)
    with pytest.raises(xmlrpc.client.Fault) as unknown:
        d.call("agentMonitor.onlyHere", ())
    assert unknown.value.faultCode == int(Fault.UNKNOWN)
    assert "agentMonitor.onlyHere" not in d.list_methods()


def test_an_in_process_methods_errors_become_faults_as_any_calls_do() -> None:
    d = Dispatcher()

    def fenced(structs: list[dict[str, object]]) -> bool:
        raise SwampdError(Fault.STALE, "report for launch 1; current launch is 2")

    d.register_in_process("agentMonitor.viewerStatus", fenced)
    with pytest.raises(xmlrpc.client.Fault) as stale:
        d.call_in_process("agentMonitor.viewerStatus", ([{}],))
    assert stale.value.faultCode == int(Fault.STALE)
