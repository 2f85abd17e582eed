"""/metrics (issue 13 part 2): every metric moves when it should.

A real daemon for what a launch moves (runs by state, transitions,
launch-to-ready, run duration, calls by method and fault, latency,
resyncs); the reconciler and the registry in-process for what needs a fault
injected (outbox rows pending and their age, retries and failures by
effect, a scheduler that does not answer).  The metrics are process-wide,
so in-process checks compare before and after.
"""
from __future__ import annotations

import time
import urllib.request
import xmlrpc.client
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from support.daemon import fault_code, wait_for
from swampd import metrics
from swampd.agentmonitor.observe.collector import RegistryCollector
from swampd.agentmonitor.reconciler import Reconciler
from swampd.agentmonitor.service import LaunchRequest, ViewerService
from swampd.config import AgentMonitorConfig, Config, SchedulerConfig, ViewerConfig
from swampd.launchpad.jobs import SchedulerUnavailable
from swampd.launchpad.launchpad import LaunchPad
from swampd.launchpad.schedulers.local import LocalScheduler
from swampd.store import Store


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url + "metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return samples(response.read().decode())


def local() -> dict:
    return samples(generate_latest(metrics.REGISTRY).decode())


def test_a_launch_moves_runs_transitions_durations_and_calls(daemon):
    before = scrape(daemon.url)
    assert value(before, "swampd_runs", kind="vrun", state="READY") == 0
    daemon.api.launchViewer({"projectid": "p-met", "viewer": "CodeDX"})
    wait_for(lambda: daemon.api.getViewer("p-met", "CodeDX")["state"] == 2, 60, what="READY")
    up = scrape(daemon.url)
    assert value(up, "swampd_runs", kind="vrun", state="READY") == 1
    assert value(up, "swampd_transitions_total", kind="vrun", from_state="", to_state="LAUNCHING") == 1
    assert value(up, "swampd_transitions_total", kind="vrun", from_state="LAUNCHING", to_state="READY") == 1
    assert value(up, "swampd_launch_to_ready_seconds_count", kind="vrun") == 1
    assert 0 < value(up, "swampd_launch_to_ready_seconds_sum", kind="vrun") < 60
    assert value(up, "swampd_run_duration_seconds_count", kind="vrun", state="TERMINATED") == 0
    assert value(up, "swampd_rpc_calls_total", method="agentMonitor.launchViewer", fault="0") == 1
    # The node's reports: the start's three made at one instant (one call), then "up".
    assert value(up, "swampd_rpc_calls_total", method="agentMonitor.viewerStatus", fault="0") == 2
    assert value(up, "swampd_rpc_call_seconds_count", method="agentMonitor.getViewer") >= 1
    assert value(up, "swampd_resyncs_total", outcome="answered") >= 1
    assert value(up, "swampd_resync_stale") == 0
    assert 0 <= value(up, "swampd_scheduler_last_answer_age_seconds") < 10

    daemon.api.stopViewer("p-met", "CodeDX")
    wait_for(lambda: daemon.api.getViewer("p-met", "CodeDX")["state"] == -7, 60, what="TERMINATED")
    down = scrape(daemon.url)
    assert value(down, "swampd_runs", kind="vrun", state="READY") == 0
    assert value(down, "swampd_runs", kind="vrun", state="TERMINATED") == 1
    assert value(down, "swampd_transitions_total", kind="vrun", from_state="READY", to_state="TERMINATING") == 1
    assert value(down, "swampd_run_duration_seconds_count", kind="vrun", state="TERMINATED") == 1

    # calls by method and fault code: a bad argument, an unknown method (bounded label), a fenced report
    assert fault_code(lambda: daemon.api.getViewer("'; rm -rf /", "CodeDX")) == 1
    assert fault_code(lambda: daemon.rpc().agentMonitor.noSuchMethod()) == 2
    assert fault_code(lambda: daemon.api.viewerStatus({"execrunid": "vrun_p-met_CodeDX", "epoch": 0,
                                                       "token": "x", "event": "VIEWERUP"})) == 3
    faults = scrape(daemon.url)
    assert value(faults, "swampd_rpc_calls_total", method="agentMonitor.getViewer", fault="1") == 1
    assert value(faults, "swampd_rpc_calls_total", method="unknown", fault="2") == 1
    assert value(faults, "swampd_rpc_calls_total", method="agentMonitor.viewerStatus", fault="3") == 1
    assert not [k for k in faults if k[0] == "swampd_rpc_calls_total" and ("method", "agentMonitor.noSuchMethod") in k[1]]


class Flaky(LocalScheduler):
    """The real local scheduler with a switch that makes it not answer."""

    down = False

    def observe(self):
        if self.down:
            raise SchedulerUnavailable("not answering (injected)")
        return super().observe()


def in_process(tmp_path: Path) -> tuple[Store, Flaky, Reconciler, ViewerService]:
    config = Config(AgentMonitorConfig(state_dir=tmp_path, workers=1), SchedulerConfig(stop_grace=2),
                    {"CodeDX": ViewerConfig("CodeDX", command=("{python}", "-c", "import time; time.sleep(60)"))})
    store = Store(tmp_path / "registry.sqlite3")
    scheduler = Flaky(tmp_path / "jobs", 2)
    reconciler = Reconciler(store, LaunchPad(scheduler, tmp_path / "jobs", "http://127.0.0.1:9/"), config)
    return store, scheduler, reconciler, ViewerService(store, reconciler, config)


def test_outbox_rows_pending_and_the_oldest_age_are_read_from_the_registry(tmp_path):
    store, _, _, service = in_process(tmp_path)
    collector = RegistryCollector(store)
    read = lambda: samples(generate_latest(_single(collector)).decode())  # noqa: E731
    assert value(read(), "swampd_outbox_pending", effect="submit") == 0
    service.launch(LaunchRequest("p1", "CodeDX"))
    service.launch(LaunchRequest("p2", "CodeDX"))
    time.sleep(0.3)
    found = read()
    assert value(found, "swampd_outbox_pending", effect="submit") == 2
    assert 0.3 <= value(found, "swampd_outbox_oldest_age_seconds", effect="submit") < 30
    assert value(found, "swampd_runs", kind="vrun", state="LAUNCHING") == 2
    with store.transaction() as tx:
        for item in store.pending_outbox():
            tx.complete(item.id)
    found = read()
    assert ("swampd_outbox_pending", (("effect", "submit"),)) not in found


def _single(collector):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def test_retries_and_failures_are_counted_by_effect(tmp_path):
    store, _, reconciler, service = in_process(tmp_path)
    before = local()
    calls = []

    def failing(item):
        calls.append(item)
        raise OSError("the collector is not answering (injected)")

    reconciler.register_handler("forget", failing)
    record = service.launch(LaunchRequest("p1", "CodeDX"))
    run = store.get_viewer("p1", "CodeDX")
    with store.transaction() as tx:
        tx.enqueue(run, "forget", {"launch_id": "old"})
    reconciler.process(run.id)
    after = local()
    assert calls and record["launched"]
    assert value(after, "swampd_effect_failures_total", effect="forget") - value(
        before, "swampd_effect_failures_total", effect="forget") == 1
    assert value(after, "swampd_effect_retries_total", effect="forget", reason="failed") - value(
        before, "swampd_effect_retries_total", effect="forget", reason="failed") == 1
    for launch_id in list(reconciler.scheduler.observe()):
        reconciler.scheduler.remove(launch_id, "test over", force=True)


def test_a_scheduler_that_does_not_answer_marks_the_resync_stale(tmp_path):
    _, scheduler, reconciler, _ = in_process(tmp_path)
    reconciler.resync()
    answered = local()
    assert value(answered, "swampd_resync_stale") == 0
    assert value(answered, "swampd_scheduler_last_answer_age_seconds") < 5
    scheduler.down = True
    time.sleep(1.1)
    reconciler.resync()
    stale = local()
    assert value(stale, "swampd_resync_stale") == 1
    assert value(stale, "swampd_resyncs_total", outcome="stale") - value(answered, "swampd_resyncs_total",
                                                                        outcome="stale") == 1
    assert value(stale, "swampd_scheduler_last_answer_age_seconds") >= 1.0  # the last answer is getting old
    scheduler.down = False
    reconciler.resync()
    assert value(local(), "swampd_resync_stale") == 0


def test_metric_labels_stay_bounded():
    before = local()
    metrics.rpc_call("agentMonitor.<anything a caller sends>", 2, 0.001)
    metrics.effect_retried("an-effect-from-a-newer-release", waiting=True)
    after = local()
    assert value(after, "swampd_rpc_calls_total", method="unknown", fault="2") - value(
        before, "swampd_rpc_calls_total", method="unknown", fault="2") == 1
    assert value(after, "swampd_effect_retries_total", effect="other", reason="waiting") - value(
        before, "swampd_effect_retries_total", effect="other", reason="waiting") == 1
