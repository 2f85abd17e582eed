"""Invariant 2: kill -9 at awkward moments, restart, and nothing is lost or doubled."""
from __future__ import annotations

import json
import time
import urllib.request
import xmlrpc.client

import pytest

from support.daemon import wait_for

KEY = ("crash-proj", "CodeDX")


def launch_ignoring_crash(daemon) -> None:
    try:
        daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    except (OSError, xmlrpc.client.ProtocolError):
        pass  # the daemon may die before it answers


def ready(daemon):
    record = daemon.api.getViewer(*KEY)
    return record if record["state"] == 2 else None


@pytest.mark.parametrize("failpoint", [
    "launch.after_commit",   # claim committed, caller not yet answered
    "submit.before",         # intent recorded, job not started
    "local.before_spawn",    # job dir written, lock taken, no process yet
    "local.after_spawn",     # job running, daemon has not recorded it
    "submit.after",          # job running and adopted, record not updated
])
def test_kill9_during_launch_then_restart_gives_one_viewer(make_daemon, failpoint):
    daemon = make_daemon(start=False)
    daemon.start(extra_env={"SWAMPD_FAILPOINTS": failpoint})
    launch_ignoring_crash(daemon)
    assert daemon.wait_exit(30) == -9, daemon.log()

    daemon.start()  # no failpoints now
    assert_one_viewer(daemon, wait_for(lambda: ready(daemon), 60, what="READY after restart"))


def assert_one_viewer(daemon, record) -> None:
    """One READY viewer of the first launch that serves, one command, one job; a second launch
    request joins it."""
    assert record["epoch"] == 1
    assert urllib.request.urlopen(record["url"], timeout=10).status == 200
    assert len(daemon.viewer_pids()) == 1
    assert len(list(daemon.jobs_dir().iterdir())) == 1
    again = daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    assert again["launched"] is False and again["epoch"] == 1


@pytest.mark.parametrize("failpoint", [
    "host.start_unreported", # command running, its start and address written, not reported
    "host.up_unreported",    # the command answers, VIEWERUP written to its events, not reported
])
def test_kill9_of_the_host_agent_during_launch_gives_one_viewer(make_daemon, failpoint):
    """The host agent (its own process) dies at a step of a launch: the daemon lives on, starts
    another agent, which adopts the command and reports what the first did not."""
    daemon = make_daemon(start=False)
    daemon.start(extra_env={"SWAMPD_FAILPOINTS": failpoint})
    daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    record = wait_for(lambda: ready(daemon), 60, what="READY with a new host agent")
    assert daemon.proc.poll() is None
    assert "exited with status -9; starting another" in daemon.log()
    assert_one_viewer(daemon, record)
    # The new agent manages it: a stop reaches it and ends it.
    daemon.api.stopViewer(*KEY)
    wait_for(lambda: daemon.api.getViewer(*KEY)["state"] == -7, 30, what="TERMINATED")
    wait_for(lambda: not daemon.viewer_pids(), 30, what="viewer process gone")


def test_kill9_while_ready_keeps_viewer_and_url(daemon):
    daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    before = wait_for(lambda: ready(daemon), 60, what="READY")
    viewer_pids = daemon.viewer_pids()
    history = daemon.api.viewerHistory(*KEY)
    daemon.kill9()
    # The viewer keeps serving while the daemon is down.
    assert urllib.request.urlopen(before["url"], timeout=10).status == 200
    daemon.start()
    after = daemon.api.getViewer(*KEY)
    assert (after["state"], after["url"], after["epoch"]) == (2, before["url"], 1)
    # Adopting it reports what its events file says again, which changes nothing it already had: no
    # new history, and its idle time still counts from when it came up.
    time.sleep(1.0)
    assert daemon.api.viewerHistory(*KEY) == history
    daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    assert daemon.viewer_pids() == viewer_pids
    # And it is still managed: a stop reaches the adopted job.
    daemon.api.stopViewer(*KEY)
    wait_for(lambda: daemon.api.getViewer(*KEY)["state"] == -7, 30, what="TERMINATED")
    wait_for(lambda: not daemon.viewer_pids(), 30, what="viewer process gone")


def test_history_survives_restart(daemon):
    daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    wait_for(lambda: ready(daemon), 60, what="READY")
    daemon.kill9()
    daemon.start()
    states = [h["state_name"] for h in daemon.api.viewerHistory(*KEY)]
    assert states[0] == "LAUNCHING" and "READY" in states


def test_kill9_between_spawn_and_its_record_leaves_a_job_that_can_still_be_stopped(make_daemon):
    """The host agent dies after the job's process started and before its process group was
    written down: the next agent is handed the job, found by the processes that hold its lock
    (its record written then), and a stop ends it (TERMINATED, no process left, key relaunchable)."""
    daemon = make_daemon(start=False)
    daemon.start(extra_env={"SWAMPD_FAILPOINTS": "host.spawn_unrecorded"})
    daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    wait_for(lambda: "exited with status -9; starting another" in daemon.log(), 30, what="the agent to die")
    wait_for(lambda: ready(daemon), 60, what="READY with the next agent")
    [job_dir] = list(daemon.jobs_dir().iterdir())
    [viewer] = daemon.viewer_pids()
    assert json.loads((job_dir / "spawned").read_text())["pgid"] == viewer  # found by its lock
    daemon.api.stopViewer(*KEY)
    final = wait_for(lambda: (s := daemon.api.getViewer(*KEY))["state"] < 0 and s["state"] != -6 and s, 60,
                     what="the stop to end")
    assert final["state_name"] == "TERMINATED", final
    from swampd.launchpad.schedulers.local import lock_holders

    # The report of the viewer's end may make it TERMINATED a moment before vruntask itself has
    # exited; then nothing may be left (the daemon itself opens the lock for an instant to look).
    def left() -> list[str]:
        from support.daemon import cmdline

        return [cmdline(pid) for pid in lock_holders(job_dir / "job.lock") - {daemon.proc.pid}]

    try:
        wait_for(lambda: not left(), 30, what="no process of the stopped job left")
    except AssertionError:
        raise AssertionError(f"still open by {left()}; log: {daemon.log()[-3000:]}") from None
    again = daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    assert again["launched"] is True and again["epoch"] == 2
    wait_for(lambda: ready(daemon), 60, what="the relaunch READY")
