"""The reconciler in-process, around the real local scheduler with injected faults.

Faults are injected by wrapping the real LocalScheduler (no double): while
"down", its calls raise SchedulerUnavailable as an unreachable scheduler would.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from swampd.agentmonitor.reconciler import Reconciler, backoff
from swampd.agentmonitor.service import LaunchRequest, ViewerService
from swampd.config import AgentMonitorConfig, Config, SchedulerConfig, ViewerConfig
from swampd.launchpad.jobs import SchedulerUnavailable
from swampd.launchpad.launchpad import LaunchPad
from swampd.launchpad.schedulers.local import LocalScheduler
from swampd.states import ViewerState
from swampd.store import Store


class Unreachable(LocalScheduler):
    """The real local scheduler, with a switch that makes it not answer."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.down = False
        self.submit_failures = 0

    def observe(self):
        if self.down:
            raise SchedulerUnavailable("scheduler not answering (injected)")
        return super().observe()

    def submit(self, spec):
        if self.submit_failures:
            self.submit_failures -= 1
            raise SchedulerUnavailable("scheduler not answering (injected)")
        return super().submit(spec)


@pytest.fixture
def world(tmp_path: Path):
    config = Config(AgentMonitorConfig(state_dir=tmp_path, workers=1),
                    SchedulerConfig(stop_grace=2),
                    {"CodeDX": ViewerConfig("CodeDX", command=("{python}", "-c", "import time; time.sleep(60)"),
                                            ready_timeout=5)})
    store = Store(tmp_path / "registry.sqlite3")
    scheduler = Unreachable(tmp_path / "jobs", 2)
    reconciler = Reconciler(store, LaunchPad(scheduler, tmp_path / "jobs", "http://127.0.0.1:9/"), config)
    service = ViewerService(store, reconciler, config)
    yield store, scheduler, reconciler, service
    for launch_id in list(scheduler.observe()):
        scheduler.remove(launch_id, "test over")


def run_id(store: Store, project: str = "p") -> int:
    record = store.get_viewer(project, "CodeDX")
    assert record is not None
    return record.id


def test_submit_is_retried_with_backoff_until_the_scheduler_answers(world):
    store, scheduler, reconciler, service = world
    scheduler.submit_failures = 2
    service.launch(LaunchRequest("p", "CodeDX"))
    reconciler.process(run_id(store))
    (item,) = store.pending_outbox()
    assert item.effect == "submit" and item.attempts == 1 and "not answering" in item.last_error
    for _ in range(2):
        with store.transaction() as tx:
            tx.retry_later(item.id, item.last_error, 0)  # due now, instead of waiting out the backoff
        reconciler.process(run_id(store))
    assert store.pending_outbox() == []
    record = store.get_viewer("p", "CodeDX")
    assert record.job_ref == record.launch_id and record.state == 1


def test_unknown_is_not_gone(world):
    store, scheduler, reconciler, service = world
    service.launch(LaunchRequest("p", "CodeDX"))
    reconciler.process(run_id(store))
    scheduler.down = True
    for _ in range(3):
        reconciler.resync()
        reconciler.process(run_id(store))
    record = store.get_viewer("p", "CodeDX")
    assert record.state == 1 and record.epoch == 1
    assert service.get("p", "CodeDX")["stale"] is True
    assert len(list((Path(store.path).parent / "jobs").iterdir())) == 1  # nothing resubmitted
    scheduler.down = False
    reconciler.resync()
    reconciler.process(run_id(store))
    seen = service.get("p", "CodeDX")
    assert seen["stale"] is False and seen["job"] == "running"


def test_job_that_vanishes_ends_the_launch_once_the_scheduler_says_so(world):
    store, scheduler, reconciler, service = world
    service.launch(LaunchRequest("p", "CodeDX"))
    reconciler.process(run_id(store))
    record = store.get_viewer("p", "CodeDX")
    scheduler.remove(record.launch_id, "killed behind swampd's back")
    time.sleep(0.01)
    reconciler.resync()
    reconciler.process(run_id(store))
    record = store.get_viewer("p", "CodeDX")
    assert record.state == -5 and "removed" in record.status


def test_backoff_grows_and_is_capped():
    assert backoff(0) < backoff(3) < backoff(6)
    assert all(backoff(n) <= 60 * 1.2 for n in range(50))


def test_a_failing_side_effect_holds_back_its_own_lane_only(world):
    store, scheduler, reconciler, service = world
    calls: list[int] = []

    def flaky(item) -> None:
        calls.append(item.id)
        raise ConnectionError("collector down (injected)")

    reconciler.register_handler("advertise", flaky)
    service.launch(LaunchRequest("p", "CodeDX"))
    record = store.get_viewer("p", "CodeDX")
    with store.transaction() as tx:
        first = tx.enqueue(record, "advertise")
        tx.enqueue(record, "advertise")
    reconciler.process(run_id(store))
    wait_until(lambda: not reconciler.effects.busy(), 10)  # ads run on their own workers
    record = store.get_viewer("p", "CodeDX")
    assert record.job_ref == record.launch_id  # the launch went ahead
    assert calls == [first]  # the second ad waits behind the first, in order
    pending = store.pending_outbox()
    assert [i.effect for i in pending] == ["advertise", "advertise"] and pending[0].attempts == 1


def test_rows_added_while_working_a_key_are_done_in_the_same_pass(world):
    store, scheduler, reconciler, service = world
    done: list[str] = []
    reconciler.register_handler("note", lambda item: done.append(item.payload["n"]))

    def chain(item) -> None:
        record = store.get_viewer("p", "CodeDX")
        with store.transaction() as tx:
            tx.enqueue(record, "note", {"n": "second"})
        done.append("first")

    reconciler.register_handler("chain", chain)
    service.launch(LaunchRequest("p", "CodeDX"))
    with store.transaction() as tx:
        tx.enqueue(store.get_viewer("p", "CodeDX"), "chain")
    reconciler.process(run_id(store))
    assert done == ["first", "second"]


def test_a_turn_that_did_every_item_leaves_the_outbox_known_empty(world):
    """The turn after a launch's submit (its READY, a resync's) asks SQLite nothing about its outbox;
    an item added later, or one a turn could not do, is still read."""
    store, scheduler, reconciler, service = world
    service.launch(LaunchRequest("p", "CodeDX"))
    rid = run_id(store)
    reconciler.process(rid)  # the submit, done
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        assert store.outbox_of(rid) == [] and not [s for s in statements if "outbox" in s]
        with store.transaction() as tx:  # an item no handler does yet: it stays, and is read again
            tx.enqueue(store.get_viewer("p", "CodeDX"), "later")
        reconciler.register_handler("later", lambda item: (_ for _ in ()).throw(ConnectionError("not yet")))
        reconciler.process(rid)
        statements.clear()
        assert [i.effect for i in store.outbox_of(rid)] == ["later"]
        assert [s for s in statements if "FROM outbox" in s]
    finally:
        store._conn.set_trace_callback(None)


def test_viewer_up_without_an_address_is_an_error_not_a_ready_nobody_can_reach(world):
    from swampd.agentmonitor.service import Report

    store, scheduler, reconciler, service = world
    service.launch(LaunchRequest("p", "CodeDX"))
    record = store.get_viewer("p", "CodeDX")
    assert service.report(Report(record.execrunid, record.epoch, record.token, event="VIEWERUP")) is True
    after = store.get_viewer("p", "CodeDX")
    assert after.state == -5 and "address" in after.status and after.url == ""
    assert any(i.effect == "remove" for i in store.pending_outbox())


def test_viewer_up_with_an_address_is_ready_with_its_url(world):
    from swampd.agentmonitor.service import Report

    store, scheduler, reconciler, service = world
    service.launch(LaunchRequest("p", "CodeDX"))
    record = store.get_viewer("p", "CodeDX")
    service.report(Report(record.execrunid, record.epoch, record.token, event="WROTEIPADDR", vmip="10.0.0.5:8443"))
    service.report(Report(record.execrunid, record.epoch, record.token, event="VIEWERUP"))
    after = service.get("p", "CodeDX")
    assert after["state"] == 2 and after["url"] == "http://10.0.0.5:8443/"


def test_reports_of_one_instant_apply_in_order_in_one_commit(world):
    """A hosted command's start: its three reports together, each its own transition and history row."""
    from swampd.agentmonitor.service import Report

    store, scheduler, reconciler, service = world
    service.launch(LaunchRequest("p", "CodeDX"))
    record = store.get_viewer("p", "CodeDX")
    commits: list[set[int]] = []
    store.on_commit = lambda ids: commits.append(set(ids))
    ident = (record.execrunid, record.epoch, record.token)
    assert service.report_all([Report(*ident, state=1, status="Starting viewer"),
                               Report(*ident, event="RUNSHSTART"),
                               Report(*ident, event="WROTEIPADDR", vmip="127.0.0.1:8443")]) is True
    assert commits == [{record.id}]
    statuses = [h.status for h in store.history(record.id)]
    assert statuses[-3:] == ["Starting viewer", "Starting viewer run script", "Wrote viewer ip address"]
    assert store.get_viewer("p", "CodeDX").vmip == "127.0.0.1:8443"
    # Sent again (a restarted daemon's replay): no news, nothing written.
    assert service.report_all([Report(*ident, event="RUNSHSTART"), Report(*ident, event="WROTEIPADDR")]) is False
    assert [h.status for h in store.history(record.id)] == statuses


def test_a_wrong_token_in_reports_of_one_instant_undoes_them_all(world):
    from swampd.agentmonitor.service import Report
    from swampd.errors import SwampdError

    store, scheduler, reconciler, service = world
    service.launch(LaunchRequest("p", "CodeDX"))
    record = store.get_viewer("p", "CodeDX")
    before = [h.status for h in store.history(record.id)]
    with pytest.raises(SwampdError) as refused:
        service.report_all([Report(record.execrunid, record.epoch, record.token, event="RUNSHSTART"),
                            Report(record.execrunid, record.epoch, "forged", event="WROTEIPADDR", vmip="1.2.3.4:1")])
    assert int(refused.value.code) == 4
    assert [h.status for h in store.history(record.id)] == before
    assert store.get_viewer("p", "CodeDX").vmip == ""


def test_a_ready_viewer_whose_job_is_killed_ends_in_error(world):
    from swampd.agentmonitor.service import Report

    store, scheduler, reconciler, service = world
    service.launch(LaunchRequest("p", "CodeDX"))
    reconciler.process(run_id(store))
    record = store.get_viewer("p", "CodeDX")
    service.report(Report(record.execrunid, 1, record.token, event="WROTEIPADDR", vmip="127.0.0.1:9"))
    service.report(Report(record.execrunid, 1, record.token, event="VIEWERUP"))
    spawned = Path(store.path).parent / "jobs" / record.launch_id / "spawned"
    pgid = json.loads(spawned.read_text())["pgid"]
    os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and store.get_viewer("p", "CodeDX").state == 2:
        reconciler.resync()
        reconciler.process(run_id(store))
        time.sleep(0.1)
    after = store.get_viewer("p", "CodeDX")
    assert after.state == -5 and "killed?" in after.status


def test_side_effects_hanging_on_a_dead_service_never_hold_up_a_launch(world, tmp_path):
    """Eight uploads stuck on an unresponsive Code Dx, and a launch that restores a database
    (a slow effect too) still reaches its submit: slow effects run on pools of their own."""
    import hashlib

    store, scheduler, reconciler, service = world
    hang = threading.Event()
    started: list[int] = []
    reconciler.register_handler("upload", lambda item: (started.append(item.id), hang.wait(60)))
    for n in range(8):
        service.launch(LaunchRequest(f"busy{n}", "CodeDX"))
        with store.transaction() as tx:
            tx.enqueue(store.get_viewer(f"busy{n}", "CodeDX"), "upload")
    saved = tmp_path / "SCAProjects" / "fresh" / "viewerdb.tar.gz"  # under the viewer store: allowed
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"a saved viewer database")
    from swampd.agentmonitor.daemon import register_database_effects

    register_database_effects(reconciler, service, store, reconciler.config, tmp_path)
    reconciler.register_handler("upload", lambda item: (started.append(item.id), hang.wait(60)))
    reconciler.start()
    try:
        wait_until(lambda: len(started) >= 2, 20)
        service.launch(LaunchRequest("fresh", "CodeDX", db_path=str(saved),
                                     db_checksum=hashlib.sha512(saved.read_bytes()).hexdigest()))
        wait_until(lambda: store.get_viewer("fresh", "CodeDX").job_ref, 20)
        record = store.get_viewer("fresh", "CodeDX")
        assert record.state == 1 and record.db_path == str(saved)
        assert not hang.is_set() and len(started) >= 2  # the uploads still hang
    finally:
        hang.set()
        reconciler.stop()


def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_job_that_died_carries_its_last_error_line_into_the_status(world, tmp_path):
    """A job killed by an exception leaves no exit status; the reason it died is the last
    error line of its log, and that reaches the viewer's status."""
    store, scheduler, reconciler, service = world
    job_dir = scheduler.jobs_root / ("f" * 32)
    job_dir.mkdir(parents=True)
    (job_dir / "spawned").write_text(json.dumps({"pid": 1, "pgid": 1}))
    (job_dir / "vruntask.log").write_text(
        "2026-11-30 04:00:00 vruntask[42] INFO restoring the viewer database\n"
        "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
        "TypeError: extractall() got an unexpected keyword argument 'filter'\n")
    observation = scheduler.observe()["f" * 32]
    assert observation.exit_code is None
    assert observation.reason.endswith("TypeError: extractall() got an unexpected keyword argument 'filter'")


def test_a_launch_that_times_out_unsubmitted_says_why_in_its_status(world):
    """A scheduler that refuses every submit (an authentication failure, say) used to end the viewer
    with "not ready within 5s" and nothing else: the refusals were only in the log."""
    store, scheduler, reconciler, service = world
    scheduler.submit_failures = 99
    service.launch(LaunchRequest("p", "CodeDX"))
    reconciler.process(run_id(store))
    reconciler.clock = lambda: time.time() + 60  # past the ready timeout
    reconciler.process(run_id(store))
    record = store.get_viewer("p", "CodeDX")
    assert record.state == ViewerState.ERROR, record
    assert record.status.startswith("Viewer was not ready within 5s: its job was never submitted ("), record.status
    assert " failed, the last: " in record.status
    assert "SchedulerUnavailable: scheduler not answering (injected)" in record.status
    # A launch that was submitted and then timed out says nothing of submits.
    scheduler.submit_failures = 0
    service.launch(LaunchRequest("q", "CodeDX"))
    reconciler.clock = time.time
    reconciler.process(run_id(store, "q"))
    reconciler.clock = lambda: time.time() + 60
    reconciler.process(run_id(store, "q"))
    assert store.get_viewer("q", "CodeDX").status == "Viewer was not ready within 5s"
