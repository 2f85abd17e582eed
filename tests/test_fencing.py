"""Invariant 4: reports carry the launch's epoch and token; anything else is refused and changes nothing."""
from __future__ import annotations

from support.daemon import fault_code, wait_for

KEY = ("fence-proj", "CodeDX")


def token_of(daemon, record) -> str:
    (job_dir,) = [d for d in daemon.jobs_dir().iterdir() if (d / "token").exists()
                  and d.name == current_launch_dir(daemon, record)]
    return (job_dir / "token").read_text().strip()


def current_launch_dir(daemon, record) -> str:
    bogs = {d.name: (d / f"{record['execrunid']}.bog").read_text() for d in daemon.jobs_dir().iterdir()}
    (name,) = [n for n, text in bogs.items() if f"swampd_epoch={record['epoch']}\n" in text]
    return name


def launch_ready(daemon):
    daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    return wait_for(lambda: (r := daemon.api.getViewer(*KEY))["state"] == 2 and r, 60, what="READY")


def test_report_with_wrong_or_missing_token_is_fault_4_and_changes_nothing(daemon):
    record = launch_ready(daemon)
    api = daemon.api
    report = {"execrunid": record["execrunid"], "epoch": record["epoch"], "event": "VIEWERDOWN"}
    assert fault_code(lambda: api.viewerStatus({**report, "token": "not-the-token"})) == 4
    assert fault_code(lambda: api.viewerStatus({**report, "token": ""})) == 4
    assert fault_code(lambda: api.viewerStatus(report)) == 1  # no token member at all
    after = api.getViewer(*KEY)
    assert (after["state"], after["updated"]) == (2, record["updated"])


def test_report_from_an_older_launch_is_fault_3_and_changes_nothing(daemon):
    first = launch_ready(daemon)
    old_token = token_of(daemon, first)
    daemon.api.stopViewer(*KEY)
    wait_for(lambda: daemon.api.getViewer(*KEY)["state"] == -7, 30, what="TERMINATED")
    second = launch_ready(daemon)
    assert second["epoch"] == 2
    stale = {"execrunid": first["execrunid"], "epoch": 1, "token": old_token, "event": "VIEWERDOWN"}
    assert fault_code(lambda: daemon.api.viewerStatus(stale)) == 3
    # Even the current epoch with the old launch's token is refused.
    assert fault_code(lambda: daemon.api.viewerStatus({**stale, "epoch": 2})) == 4
    after = daemon.api.getViewer(*KEY)
    assert after["state"] == 2 and after["epoch"] == 2 and after["url"] == second["url"]


def test_good_report_is_accepted(daemon):
    record = launch_ready(daemon)
    token = token_of(daemon, record)
    ok = daemon.api.viewerStatus({"execrunid": record["execrunid"], "epoch": record["epoch"], "token": token,
                                  "event": "TIMERSHUTDOWN"})
    assert ok is True
    assert daemon.api.getViewer(*KEY)["state"] == -1  # STOPPING


def test_report_for_unknown_viewer_is_fault_2(daemon):
    assert fault_code(lambda: daemon.api.viewerStatus(
        {"execrunid": "vrun_nobody_CodeDX", "epoch": 1, "token": "x", "event": "VIEWERUP"})) == 2
