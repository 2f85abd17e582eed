"""Invariant 5 (every launch ends) and the stop contract."""
from __future__ import annotations

import os
import time
import urllib.request

from support.daemon import wait_for

NEVER_READY = {"command": ["{python}", "-c", "import time; time.sleep(600)"], "ready_timeout": 3}


def test_viewer_that_never_gets_ready_ends_in_error_and_is_gone(make_daemon):
    daemon = make_daemon(viewers={"CodeDX": NEVER_READY})
    daemon.api.launchViewer({"projectid": "slow", "viewer": "CodeDX"})
    wait_for(lambda: daemon.viewer_pids(), 20, what="viewer process started")
    record = wait_for(lambda: (r := daemon.api.getViewer("slow", "CodeDX"))["state"] == -5 and r, 30,
                      what="ERROR after ready_timeout")
    assert "3s" in record["status"] or "did not answer HTTP" in record["status"], record["status"]
    wait_for(lambda: not daemon.viewer_pids(), 30, what="the never-ready viewer process gone")
    assert record["url"] == ""


def test_viewer_process_that_crashes_ends_in_error_with_reason(make_daemon):
    daemon = make_daemon(viewers={"CodeDX": {"command": ["{python}", "-c", "raise SystemExit(7)"]}})
    daemon.api.launchViewer({"projectid": "crashy", "viewer": "CodeDX"})
    record = wait_for(lambda: (r := daemon.api.getViewer("crashy", "CodeDX"))["state"] == -5 and r, 30,
                      what="ERROR")
    assert "status 7" in record["status"]


def test_stop_while_launching_cancels(make_daemon):
    daemon = make_daemon(viewers={"CodeDX": {**NEVER_READY, "ready_timeout": 120}})
    api = daemon.api
    api.launchViewer({"projectid": "p", "viewer": "CodeDX"})
    wait_for(lambda: daemon.viewer_pids(), 20, what="viewer process started")
    stopped = api.stopViewer("p", "CodeDX")
    assert stopped["state"] in (-6, -7)
    wait_for(lambda: api.getViewer("p", "CodeDX")["state"] == -7, 30, what="TERMINATED")
    wait_for(lambda: not daemon.viewer_pids(), 30, what="viewer process gone")


def test_stop_twice_is_fine_and_relaunch_starts_epoch_2(daemon):
    api = daemon.api
    api.launchViewer({"projectid": "p", "viewer": "CodeDX"})
    first = wait_for(lambda: (r := api.getViewer("p", "CodeDX"))["state"] == 2 and r, 60, what="READY")
    api.stopViewer("p", "CodeDX")
    again = api.stopViewer("p", "CodeDX")
    assert again["state"] in (-6, -7) and again["epoch"] == 1
    wait_for(lambda: api.getViewer("p", "CodeDX")["state"] == -7, 30, what="TERMINATED")
    assert api.stopViewer("p", "CodeDX")["state"] == -7
    relaunch = api.launchViewer({"projectid": "p", "viewer": "CodeDX"})
    assert relaunch["launched"] is True and relaunch["epoch"] == 2
    second = wait_for(lambda: (r := api.getViewer("p", "CodeDX"))["state"] == 2 and r, 60, what="READY again")
    assert second["url"] != first["url"] or second["url_uuid"] != first["url_uuid"]
    assert urllib.request.urlopen(second["url"], timeout=10).status == 200
    assert len(daemon.viewer_pids()) == 1


def test_stop_of_unknown_viewer_is_no_record(daemon):
    record = daemon.api.stopViewer("never-launched", "CodeDX")
    assert record["state"] == 0 and record["state_name"] == "NO_RECORD"


def test_idle_viewer_is_stopped_with_reason(make_daemon):
    daemon = make_daemon(viewers={"CodeDX": {"idle_timeout": 2}})
    api = daemon.api
    api.launchViewer({"projectid": "idle", "viewer": "CodeDX"})
    wait_for(lambda: api.getViewer("idle", "CodeDX")["state"] == 2, 60, what="READY")
    record = wait_for(lambda: (r := api.getViewer("idle", "CodeDX"))["state"] == -3 and r, 30,
                      what="SHUTDOWN after idle")
    history = [h["status"] for h in api.viewerHistory("idle", "CodeDX")]
    assert any("idle for more than 2s" in s for s in history), history
    assert record["state_name"] == "SHUTDOWN"
    wait_for(lambda: not daemon.viewer_pids(), 30, what="viewer gone")



def test_relaunch_after_error_waits_for_the_old_job_to_go(make_daemon):
    """A launch taken from ERROR never overlaps the previous launch's still-running job."""
    daemon = make_daemon(viewers={"CodeDX": {
        # Ignores TERM, so the old job lingers after its ERROR until it is killed.
        "command": ["{python}", "-c",
                    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
        "ready_timeout": 8}})
    api = daemon.api
    api.launchViewer({"projectid": "again", "viewer": "CodeDX"})
    wait_for(lambda: api.getViewer("again", "CodeDX")["state"] == -5, 30, what="ERROR")
    relaunch = api.launchViewer({"projectid": "again", "viewer": "CodeDX"})
    assert relaunch["launched"] is True and relaunch["epoch"] == 2
    most_groups = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and api.getViewer("again", "CodeDX")["state"] == 1:
        most_groups = max(most_groups, len({os.getpgid(p) for p in daemon.viewer_pids() if _alive(p)}))
        time.sleep(0.05)
    assert most_groups <= 1, "the new job started while the old one was still running"
    history = [h["status"] for h in api.viewerHistory("again", "CodeDX") if h["epoch"] == 2]
    assert "Starting viewer run script" in history, history  # the new job did start, once the old had left


def _alive(pid: int) -> bool:
    try:
        os.getpgid(pid)
        return True
    except ProcessLookupError:
        return False
