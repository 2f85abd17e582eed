"""Logs (issue 13 part 7): one line per event, the run's key, epoch and launch id on every line about
a run, JSON lines on request, never a secret."""
from __future__ import annotations

import io
import json
import logging

from support.daemon import wait_for
from swampd import runlog
from swampd.store import ViewerRecord


def launch_and_stop(daemon, project: str) -> tuple[str, str]:
    daemon.api.launchViewer({"projectid": project, "viewer": "CodeDX"})
    wait_for(lambda: daemon.api.getViewer(project, "CodeDX")["state"] == 2, 60, what="READY")
    (job_dir,) = list(daemon.jobs_dir().iterdir())
    token = (job_dir / "token").read_text().strip()
    apikey = next(line.split("=", 1)[1] for line in (job_dir / f"vrun_{project}_CodeDX.bog").read_text().splitlines()
                  if line.startswith("apikey="))
    daemon.api.stopViewer(project, "CodeDX")
    wait_for(lambda: daemon.api.getViewer(project, "CodeDX")["state"] == -7, 60, what="TERMINATED")
    return token, apikey


def test_json_lines_name_the_run_on_every_line_about_it(make_daemon):
    daemon = make_daemon(agentmonitor={"log_format": "json"})
    token, apikey = launch_and_stop(daemon, "p-json")
    daemon.terminate()
    text = daemon.log()
    assert token not in text and apikey not in text
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(events) >= 8
    assert all(set(e) >= {"ts", "level", "logger", "pid", "msg"} for e in events)
    about = [e for e in events if "vrun_p-json_CodeDX" in e["msg"] or "started job" in e["msg"]]
    assert about, events
    launch_id = about[0]["launch"]
    for event in about:  # every line about the run carries its key, epoch and launch id
        assert event["run"] == "vrun_p-json_CodeDX" and event["epoch"] == 1 and event["launch"] == launch_id, event
    assert any(e["msg"].startswith("started job") for e in about)  # a scheduler's line, tagged by context
    assert any("-> READY" in e["msg"] for e in about) and any("stop requested" in e["msg"] for e in about)


def test_text_lines_are_one_per_event_and_name_the_run(make_daemon):
    daemon = make_daemon()
    launch_and_stop(daemon, "p-text")
    daemon.terminate()
    lines = [line for line in daemon.log().splitlines() if "vrun_p-text_CodeDX" in line]
    assert lines
    for line in lines:
        assert " [run=vrun_p-text_CodeDX epoch=1 launch=" in line, line


def test_a_traceback_or_a_hostile_value_stays_on_one_line():
    out = io.StringIO()
    runlog.configure("swampd", "text", stream=out)
    log = logging.getLogger("swampd.test")
    record = ViewerRecord(projectid="p", viewer="CodeDX", epoch=3, launch_id="abc")
    with runlog.about(record):
        try:
            raise ValueError("boom\nINFO forged line")
        except ValueError:
            log.exception("it failed:\nsecond line")
    log.info("outside")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("[run=vrun_p_CodeDX epoch=3 launch=abc]") and "\\nINFO forged line" in lines[0]
    assert "[run=" not in lines[1]
    out = io.StringIO()
    runlog.configure("swampd", "json", stream=out)
    log.info("about %s", "it", extra=runlog.run_fields(record))
    event = json.loads(out.getvalue())
    assert event["run"] == "vrun_p_CodeDX" and event["epoch"] == 3 and event["launch"] == "abc"
    logging.getLogger().handlers.clear()


def test_about_run_reads_the_label_only_when_a_line_is_logged_and_once():
    out = io.StringIO()
    runlog.configure("swampd", "text", stream=out)
    log = logging.getLogger("swampd.test")
    reads: list[int] = []

    def label() -> ViewerRecord:
        reads.append(1)
        return ViewerRecord(projectid="p", viewer="CodeDX", epoch=2, launch_id="def")

    with runlog.about_run(label):
        log.debug("below the level: nothing written, nothing read")
    assert reads == []
    with runlog.about_run(label):
        log.info("one")
        log.warning("two")

    def broken() -> None:
        raise OSError("registry unreadable")

    with runlog.about_run(broken):
        log.error("still written")
    lines = out.getvalue().splitlines()
    assert reads == [1] and len(lines) == 3, (reads, lines)
    assert all(line.endswith("[run=vrun_p_CodeDX epoch=2 launch=def]") for line in lines[:2]), lines
    assert "still written" in lines[2] and "[run=" not in lines[2]
    logging.getLogger().handlers.clear()
