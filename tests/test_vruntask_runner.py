"""The one runner: the same reports, failure path, stop and exit status on every platform, for every payload.

The first tests run ``vruntask run`` as the local scheduler does (its own
process, SIGTERM to stop) on the process platform, against a stand-in
AgentMonitor that records what arrives.  The last ones drive the runner
with a platform and a payload written here, shaped like an assessment
(other events, another status method, a results file to collect): the
runner needs nothing viewer- or process-specific.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from support.daemon import SRC, free_port, wait_for
from support.report_sink import ReportSink
from swampd.bog import format_bog, write_private
from swampd.vruntask import runner
from swampd.vruntask.job import Job
from swampd.vruntask.monitor import Monitor
from swampd.vruntask.payloads.base import Milestone, Payload
from swampd.vruntask.platforms.base import Platform
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.sandbox import MachineOutput, MachineView, Sandbox

HTTP_SERVER = ["{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]


@pytest.fixture
def sink() -> Iterator[ReportSink]:
    s = ReportSink(free_port()).start()
    yield s
    s.stop()


def bog(sink: ReportSink, command: list[str], **changes: str) -> dict[str, str]:
    values = {"execrunid": "vrun_p1_CodeDX", "projectid": "p1", "viewer": "CodeDX", "viewer_uuid": "vi1",
              "urluuid": "proxy-1", "apikey": "k" * 32, "swampd_platform": "process", "swampd_epoch": "1",
              "swampd_agentmonitor_url": sink.url, "swampd_ready_timeout": "20",
              "swampd_viewer_command": json.dumps(command)}
    values.update(changes)
    return values


def start_vruntask(job_dir: Path, values: dict[str, str]) -> subprocess.Popen[str]:
    job_dir.mkdir(parents=True, exist_ok=True)
    write_private(job_dir / "job.bog", format_bog(values))
    write_private(job_dir / "token", "t" * 32 + "\n")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.Popen([sys.executable, "-m", "swampd.cli.vruntask_main", "run", "--job-dir", str(job_dir),
                             "--bog", "job.bog", "--token-file", "token"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def reports(sink: ReportSink) -> list[Any]:
    """What the node said, in order: event names, or (state, status)."""
    return [r["event"] if "event" in r else (r["state"], r["status"]) for r in sink.of("viewerStatus")]


def test_process_run_reports_in_order_and_stops_on_sigterm(sink: ReportSink, tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    proc = start_vruntask(job_dir, bog(sink, HTTP_SERVER))
    wait_for(lambda: "VIEWERUP" in reports(sink), 30, what="VIEWERUP")
    address = next(r["vmip"] for r in sink.of("viewerStatus") if r.get("event") == "WROTEIPADDR")
    assert address.startswith("127.0.0.1:")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stdout.read() if proc.stdout else ""
    assert reports(sink) == [(1, "Starting viewer"), "RUNSHSTART", "WROTEIPADDR", "VIEWERUP",
                             (-1, "Viewer is starting shutdown"), "VIEWERDOWN"]
    assert all(r["execrunid"] == "vrun_p1_CodeDX" and r["epoch"] == 1 and r["token"] == "t" * 32
               for r in sink.of("viewerStatus"))
    assert (job_dir / "exit_status").read_text().strip() == "0"
    assert {"prepared", "started", "first_event", "address", "ready", "stopped", "finished"} <= set(
        json.loads((job_dir / "out" / "timings.json").read_text()))
    # run-params.sh from the one table, with the host's paths for a machine sharing the sandbox.
    shown = subprocess.run(["bash", "-c", '. "$1"; printf "%s\\n" "$JOB_INPUT_DIR" "$SWAMP_EVENT_FILE" '
                            '"$MACHINE_SHUTDOWN_COMMAND" "$PROJECT"', "_", str(job_dir / "run-params.sh")],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert shown == [str(job_dir / "in"), str(job_dir / "out" / "job_events.log"), "supervisorctl shutdown",
                     "proxy-1"]


def test_a_failure_is_reported_once_with_its_reason_before_the_machine_stops(sink: ReportSink,
                                                                            tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    proc = start_vruntask(job_dir, bog(sink, ["{python}", "-c", "raise SystemExit(7)"]))
    assert proc.wait(30) == 1
    said = reports(sink)
    failures = [r for r in said if isinstance(r, tuple) and r[0] == -5]
    assert failures == [(-5, "viewer process exited with status 7 before it answered HTTP")]
    assert said.index(failures[0]) < said.index("VIEWERDOWN")
    assert (job_dir / "exit_status").read_text().strip() == "1"


def test_a_superseded_launch_stops_its_machine_and_exits_fenced(sink: ReportSink, tmp_path: Path) -> None:
    sink.fenced.set()  # every report is refused as stale: a newer launch exists
    job_dir = tmp_path / "job"
    proc = start_vruntask(job_dir, bog(sink, HTTP_SERVER))
    assert proc.wait(30) == 3
    assert (job_dir / "exit_status").read_text().strip() == "3"
    address = (job_dir / "out" / "job_ip_address.txt").read_text().split()
    if address:  # the command may have started before the refusal came back; it is gone now
        port = int(address[-1].rsplit(":", 1)[1])
        with pytest.raises(OSError):
            __import__("socket").create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_bad_bog_ends_the_launch_with_the_reason(sink: ReportSink, tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    proc = start_vruntask(job_dir, bog(sink, HTTP_SERVER, projectid="../../p1", execrunid="vrun_x_CodeDX"))
    assert proc.wait(30) == 2
    assert reports(sink) == [(-5, "BOG projectid is not an identifier")]
    assert (job_dir / "exit_status").read_text().strip() == "2"
    assert not (job_dir / "in").exists()  # nothing was staged from it


# -- the seam: a payload and a platform the runner has never seen ------------------------------
class ResultsPayload(Payload):
    """Shaped like an assessment: its own events, status method, inputs and outputs."""

    status_method = "runStatus"
    up_event = "BEGINASSESSMENT"
    down_event = "ENDASSESSMENT"
    collected: list[str] = []

    @staticmethod
    def failure(reason: str) -> dict[str, Any]:
        return {"status": f"Finished with Errors: {reason}"}

    def report(self, milestone: Milestone, detail: str = "") -> dict[str, Any]:
        return {"status": f"{milestone.value} on {detail}" if detail else milestone.value}

    def stage(self, sandbox: Sandbox, view: MachineView) -> None:
        (sandbox.in_dir / "run.sh").write_text(f"#!/bin/sh\necho events to {view.events_file}\n")

    def local_command(self, sandbox: Sandbox, port: int) -> list[str]:
        raise AssertionError("not a process platform")

    def probe_request(self, port: int) -> bytes | None:
        raise AssertionError("not a process platform")

    def collect(self, sandbox: Sandbox, output: MachineOutput, reporter: Reporter,
                give_up: Callable[[], bool]) -> Any:
        status = output.fetch("status.out")
        self.collected.append(status.read_text() if status else "")
        assert reporter.call("runResults", {"status_out": self.collected[-1]}, "results", give_up)
        return type("Done", (), {"ok": True, "summary": "", "problem": ""})()


class ScriptedPlatform(Platform):
    """A machine that writes the assessment's events; ``up`` False makes it never come up."""

    def __init__(self, sandbox: Sandbox, sink: ReportSink, up: bool = True) -> None:
        super().__init__("scripted", sandbox)
        self.sink, self.up = sink, up
        self.calls: list[str] = []
        self.alive = False
        self.graces: list[float] = []

    def __enter__(self) -> ScriptedPlatform:
        self.calls.append("enter")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.calls.append("exit")

    def view(self) -> MachineView:
        self.calls.append("view")
        return super().view()

    def prepare(self) -> None:
        self.calls.append("prepare")
        assert (self.sandbox.in_dir / "run.sh").exists()  # the payload staged first

    def collect(self) -> Any:
        self.calls.append("collect")
        return super().collect()

    def start(self) -> None:
        self.calls.append("start")
        self.alive = True
        self.sandbox.record_event("RUNSHSTART")
        if self.up:
            self.sandbox.record_event("BEGINASSESSMENT")

    def wait_up(self, stop: threading.Event, monitor: Monitor) -> str | None:
        self.calls.append("wait_up")
        deadline = time.monotonic() + 1.0
        while self.up_event_missing(monitor):
            if time.monotonic() > deadline:
                return "no BEGINASSESSMENT within 1s"
            stop.wait(0.02)
        return None

    def up_event_missing(self, monitor: Monitor) -> bool:
        return "BEGINASSESSMENT" not in monitor.seen

    def wait_exit(self, stop: threading.Event) -> int | None:
        self.calls.append("wait_exit")
        (self.sandbox.out_dir / "status.out").write_text("PASS: all\n")
        self.sandbox.record_event("ENDASSESSMENT")
        self.alive = False
        return 0

    def running(self) -> bool | None:
        self.calls.append("running")
        return self.alive

    def stop(self, grace: float) -> None:
        self.calls.append("stop")
        self.graces.append(grace)
        if self.alive:
            self.sandbox.record_event("SHUTTINGDOWN")  # what a machine writes as it goes down
        self.alive = False


@pytest.fixture
def signals_restored() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def run_scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, up: bool) -> tuple[int, ScriptedPlatform,
                                                                                       ReportSink]:
    sink = ReportSink(free_port(), methods=("runStatus", "runResults")).start()
    job = Job.from_bog(bog(sink, []), tmp_path / "job", "tok")
    platform = ScriptedPlatform(Sandbox(job.job_dir), sink, up)
    monkeypatch.setattr(runner, "payload_for", ResultsPayload)
    monkeypatch.setattr(runner, "platform_for", lambda job, payload, grace: platform)
    try:
        return runner.run(job), platform, sink
    finally:
        sink.stop()


def test_a_new_payload_on_a_new_platform_runs_through_the_same_runner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signals_restored: None) -> None:
    ResultsPayload.collected = []
    status, platform, sink = run_scripted(tmp_path, monkeypatch, up=True)
    assert status == 0 and (tmp_path / "job" / "exit_status").read_text().strip() == "0"
    assert platform.calls == ["enter", "view", "prepare", "start", "wait_up", "wait_exit", "running", "stop",
                              "collect", "exit"]
    said = [r.get("event") or r["status"] for r in sink.of("runStatus")]
    # Not running at stop: no STOPPING; the machine said ENDASSESSMENT itself: no STOPPED.
    assert said == ["starting on scripted", "RUNSHSTART", "BEGINASSESSMENT", "ENDASSESSMENT"]
    assert ResultsPayload.collected == ["PASS: all\n"]
    assert sink.of("runResults")[0]["status_out"] == "PASS: all\n"


def test_a_payload_that_never_comes_up_fails_once_before_its_machine_is_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signals_restored: None) -> None:
    ResultsPayload.collected = []
    status, platform, sink = run_scripted(tmp_path, monkeypatch, up=False)
    assert status == 1 and (tmp_path / "job" / "exit_status").read_text().strip() == "1"
    failure = "Finished with Errors: no BEGINASSESSMENT within 1s"
    said = [r.get("event") or r["status"] for r in sink.of("runStatus")]
    # Once, with its reason, ahead of what stopping the machine wrote; no STOPPED after a failure.
    assert said == ["starting on scripted", "RUNSHSTART", failure, "stopping", "SHUTTINGDOWN"]
    assert platform.graces == [0.0]  # it never wrote an address: no grace to shut down
    assert "collect" in platform.calls  # what it left is still collected
