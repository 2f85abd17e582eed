"""The host agent's reports travel in batches (vruntask.reportbatch) and are applied entry by entry
in one registry transaction (agentmonitor.hostreports, ViewerService.report_batch)."""
from __future__ import annotations

import threading
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from swampd.agentmonitor.dispatch import Dispatcher
from swampd.agentmonitor.hostreports import HostReports
from swampd.agentmonitor.reconciler import Reconciler
from swampd.agentmonitor.service import LaunchRequest, ViewerService
from swampd.config import AgentMonitorConfig, Config, SchedulerConfig, ViewerConfig
from swampd.launchpad.launchpad import LaunchPad
from swampd.launchpad.schedulers.local import LocalScheduler
from swampd.store import Store
from swampd.vruntask.reportbatch import ReportBatcher


# -- the agent's side ----------------------------------------------------------------
def test_reports_made_while_a_batch_is_out_go_together_in_order() -> None:
    sent: list[list[list[object]]] = []
    first_out, release = threading.Event(), threading.Event()

    def send(entries: list[list[object]]) -> list[object]:
        sent.append(entries)
        if len(sent) == 1:
            first_out.set()
            release.wait(10)
        return [f"ok {entry[1][0]['n']}" for entry in entries]

    batcher = ReportBatcher(send)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher.call, "viewerStatus", [{"n": 0}])
        assert first_out.wait(10)
        later = [pool.submit(batcher.call, "viewerStatus", [{"n": n}]) for n in range(1, 6)]
        while sum(len(batch) for batch in sent) + len(batcher._queue) < 6:  # all five queued
            threading.Event().wait(0.01)
        release.set()
        assert first.result(10) == "ok 0"
        assert [f.result(10) for f in later] == [f"ok {n}" for n in range(1, 6)]
    assert [len(batch) for batch in sent] == [1, 5]
    assert [entry[1][0]["n"] for entry in sent[1]] == [1, 2, 3, 4, 5]
    batcher.close()


def test_a_fault_reaches_its_own_caller_only() -> None:
    batcher = ReportBatcher(lambda entries: [{"fault": 3, "msg": "stale launch"} if e[1][0]["n"] == 1 else True
                                             for e in entries])
    assert batcher.call("viewerStatus", [{"n": 0}]) is True
    with pytest.raises(xmlrpc.client.Fault) as caught:
        batcher.call("viewerStatus", [{"n": 1}])
    assert (caught.value.faultCode, caught.value.faultString) == (3, "stale launch")
    batcher.close()


def test_a_lost_message_fails_every_caller_in_it_and_the_next_one_goes() -> None:
    calls = iter([ConnectionError("link down"), None])

    def send(entries: list[list[object]]) -> list[object]:
        failure = next(calls)
        if failure is not None:
            raise failure
        return [True] * len(entries)

    batcher = ReportBatcher(send)
    with pytest.raises(ConnectionError, match="link down"):
        batcher.call("viewerStatus", [{"n": 0}])
    assert batcher.call("viewerStatus", [{"n": 1}]) is True
    bad = ReportBatcher(lambda entries: [True, True])  # an answer that does not match the entries
    with pytest.raises(ConnectionError, match="answered 1 reports"):
        bad.call("viewerStatus", [{"n": 0}])
    for b in (batcher, bad):
        b.close()
    with pytest.raises(ConnectionError):
        batcher.call("viewerStatus", [{"n": 2}])


# -- the daemon's side ------------------------------------------------------------------
@pytest.fixture
def service(tmp_path: Path):
    config = Config(AgentMonitorConfig(state_dir=tmp_path, workers=1), SchedulerConfig(stop_grace=2),
                    {"CodeDX": ViewerConfig("CodeDX", command=("true",), ready_timeout=5)})
    store = Store(tmp_path / "registry.sqlite3")
    reconciler = Reconciler(store, LaunchPad(LocalScheduler(tmp_path / "jobs", 2), tmp_path / "jobs",
                                             "http://127.0.0.1:9/"), config)
    return ViewerService(store, reconciler, config)


def report(service: ViewerService, project: str, **fields: object) -> dict[str, object]:
    record = service.store.get_viewer(project, "CodeDX")
    return {"execrunid": record.execrunid, "epoch": record.epoch, "token": record.token, **fields}


def test_a_batch_applies_every_launch_and_refuses_one_alone(service: ViewerService) -> None:
    for project in ("a", "b", "c"):
        service.launch(LaunchRequest(project, "CodeDX"))
    statements: list[str] = []
    service.store._write_conn.set_trace_callback(statements.append)
    outcomes = HostReports(Dispatcher(), service).apply([
        ["viewerStatus", [report(service, "a", event="RUNSHSTART"),
                          report(service, "a", event="WROTEIPADDR", vmip="127.0.0.1:4001"),
                          report(service, "a", event="VIEWERUP")]],
        ["viewerStatus", [report(service, "b", event="VIEWERUP", token="forged")]],
        ["viewerStatus", [report(service, "c", event="VIEWERUP", epoch=9)]],
        ["viewerStatus", [{"execrunid": "x"}]],
        "not an entry",
    ])
    service.store._write_conn.set_trace_callback(None)
    assert outcomes[0] is True
    assert outcomes[1]["fault"] == 4 and outcomes[2]["fault"] == 3  # wrong token; stale launch
    assert outcomes[3]["fault"] == 1 and outcomes[4]["fault"] == 1  # malformed: refused before the registry
    assert sum(s == "COMMIT" for s in statements) == 1  # one transaction for the batch
    a, b, c = (service.store.get_viewer(p, "CodeDX") for p in ("a", "b", "c"))
    assert (a.state, a.vmip) == (2, "127.0.0.1:4001")
    assert b.state == 1 and c.state == 1
    assert [h.status for h in service.store.history(b.id)] == ["Launching viewer"]


def test_report_all_still_raises_for_its_launch(service: ViewerService) -> None:
    from swampd.agentmonitor.api import viewer_report
    from swampd.errors import SwampdError

    service.launch(LaunchRequest("a", "CodeDX"))
    with pytest.raises(SwampdError):
        service.report_all([viewer_report(report(service, "a", event="VIEWERUP", token="forged"))])
    assert service.report_all([viewer_report(report(service, "a", event="RUNSHSTART"))]) is True


def test_a_reconciler_turn_follows_a_new_state_or_new_side_effects_only(service: ViewerService,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    turns: list[int] = []
    monkeypatch.setattr(service.reconciler, "enqueue", turns.append)
    service.launch(LaunchRequest("a", "CodeDX"))
    record = service.store.get_viewer("a", "CodeDX")
    turns.clear()
    batch = HostReports(Dispatcher(), service)
    batch.apply([["viewerStatus", [report(service, "a", event="RUNSHSTART"),
                                   report(service, "a", event="WROTEIPADDR", vmip="127.0.0.1:4001")]]])
    assert turns == []  # the steps of a start: a new status, the same state, nothing to do
    batch.apply([["viewerStatus", [report(service, "a", event="VIEWERUP")]]])
    assert turns == [record.id]
    service.store.change_effects = {"vrun": ("advertise",)}  # a status that must reach the outside
    service.launch(LaunchRequest("b", "CodeDX"))
    turns.clear()
    batch.apply([["viewerStatus", [report(service, "b", event="RUNSHSTART")]]])
    assert turns == [service.store.get_viewer("b", "CodeDX").id]
