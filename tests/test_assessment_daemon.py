"""Assessment runs through a real daemon on the embedded default: accepted once, admitted to a slot,
assessed by the real tool (cppcheck) under the host agent, results stored; kill, pause, limits."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from support.assess import package_archive
from support.daemon import Daemon, fault_code, wait_for


def assessing_daemon(make_daemon: Callable[..., Daemon], **assessments: Any) -> Daemon:
    daemon = make_daemon(start=False, extra={"assessments": {"max_concurrent": 2, **assessments}})
    (daemon.state_dir / "packages").mkdir(parents=True, mode=0o700)
    daemon.start()
    return daemon


def finished(daemon: Daemon, execrunid: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run = daemon.api.getRun(execrunid)
    while run["state_name"] not in ("FINISHED", "FAILED", "TERMINATED", "TERMINATE_FAILED"):
        assert time.monotonic() < deadline, run
        run = daemon.rpc(timeout=60).agentMonitor.waitRun(execrunid, 20)
    return run


def test_a_package_is_assessed_by_cppcheck_and_its_weaknesses_counted(make_daemon) -> None:
    daemon = assessing_daemon(make_daemon)
    package = package_archive(daemon.state_dir / "packages")
    run = daemon.api.assess({"package_path": str(package), "tool": "cppcheck", "package_name": "hello-c",
                             "package_version": "2.1", "package_type": "C/C++"})
    assert run["accepted"] and run["kind"] == "arun"
    done = finished(daemon, run["execrunid"])
    assert done["state_name"] == "FINISHED", done
    assert done["weaknesses"] >= 2 and Path(done["files"]["scarf"]).is_file()
    history = [h["status"] for h in daemon.api.runHistory(run["execrunid"])]
    assert history[:2] == ["Queued", "Submitting"]
    assert "Performing assessment" in history and history[-1] in ("Finished", "Finished with Warnings")
    # the tool ran under the daemon's host agent: no supervisor process of its own
    assert not any("vruntask" in line for line in daemon.log().splitlines() if "started job" in line)


def test_accepting_a_run_twice_starts_it_once_and_unknown_runs_are_answered_clearly(make_daemon) -> None:
    daemon = assessing_daemon(make_daemon)
    assert fault_code(lambda: daemon.api.killRun("0b1d5a2e-no-such-run", False)) == 2
    assert daemon.api.getRun("0b1d5a2e-no-such-run")["state_name"] == "NO_RECORD"
    for hostile in ("'; rm -rf /", "../../etc/passwd", "x" * 300, ""):
        assert fault_code(lambda: daemon.api.launchRun({"execrunid": hostile})) == 1
    assert fault_code(lambda: daemon.api.assess({"package_path": "/etc/shadow", "tool": "cppcheck"})) == 1
    package = package_archive(daemon.state_dir / "packages")
    assert fault_code(lambda: daemon.api.assess({"package_path": str(package), "tool": "nope"})) == 1


def test_kill_while_queued_and_while_paused_and_the_queue_moves_on_resume(make_daemon) -> None:
    daemon = assessing_daemon(make_daemon)
    package = package_archive(daemon.state_dir / "packages")
    assert daemon.api.pauseRuns()["paused"] is True
    runs = [daemon.api.assess({"package_path": str(package), "tool": "cppcheck"}) for _ in range(3)]
    wait_for(lambda: all(daemon.api.getRun(r["execrunid"])["status"] == "SWAMP off - Queued" for r in runs), 20)
    killed = daemon.api.killRun(runs[0]["execrunid"], False)
    assert killed["state_name"] in ("TERMINATING", "TERMINATED")
    assert finished(daemon, runs[0]["execrunid"])["state_name"] == "TERMINATED"
    daemon.api.resumeRuns()
    for run in runs[1:]:
        assert finished(daemon, run["execrunid"])["state_name"] == "FINISHED"


def test_a_slot_limit_of_two_holds_with_twenty_runs_queued(make_daemon) -> None:
    daemon = assessing_daemon(make_daemon, max_concurrent=2)
    package = package_archive(daemon.state_dir / "packages")
    runs = [daemon.api.assess({"package_path": str(package), "tool": "cppcheck"})["execrunid"] for _ in range(20)]
    most = 0
    deadline = time.monotonic() + 600
    while True:
        # one read: a slot freed between twenty getRun calls would count twice
        states = [r["state_name"] for r in daemon.api.listRuns({"kind": "arun"})]
        assert len(states) == len(runs)
        most = max(most, sum(s in ("SUBMITTED", "RUNNING", "COLLECTING") for s in states))
        if all(s == "FINISHED" for s in states):
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.05)
    assert 1 <= most <= 2


def test_a_finished_runs_job_directory_is_kept_for_its_retention_then_removed(make_daemon) -> None:
    daemon = assessing_daemon(make_daemon, job_retention=6)
    package = package_archive(daemon.state_dir / "packages")
    run = daemon.api.assess({"package_path": str(package), "tool": "cppcheck"})
    done = finished(daemon, run["execrunid"])
    assert done["state_name"] == "FINISHED"
    [job_dir] = [p for p in daemon.jobs_dir().iterdir() if p.is_dir()]
    ended = time.monotonic()
    time.sleep(2)
    assert job_dir.is_dir() and Path(done["files"]["scarf"]).is_file()  # kept, results stored elsewhere
    wait_for(lambda: not job_dir.exists(), 60, what="the job directory removed after its retention")
    assert time.monotonic() - ended >= 5
    assert not Path(done["files"]["scarf"]).is_relative_to(job_dir)
    assert Path(done["files"]["scarf"]).is_file()  # the results folder is not the job's to take along
