"""Collecting an assessment's ``out/``: good, garbage and huge status.out, hostile archives and links, reruns.

Each test lays out what a machine could leave in ``out/`` and runs the
payload's collect against a stand-in AgentMonitor, as ``vruntask finish``
does after a machine a scheduler ran.
"""
from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from support.assess import EXECRUNID, assessment_bog, package_archive, tar_bytes
from support.daemon import free_port
from support.report_sink import ReportSink
from swampd.results.scarfwriter import Bug, Location, ScarfWriter
from swampd.runreports import RunResults
from swampd.tools.framework import StatusOut, archive_dir
from swampd.vruntask.delivery import give_up_after
from swampd.vruntask.job import Job
from swampd.vruntask.payloads.assessment import AssessmentPayload
from swampd.vruntask.platforms import staging_for
from swampd.vruntask.platforms.base import HostOutput
from swampd.vruntask.platforms.vm_staging import DiskOutput
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.runner import stage
from swampd.vruntask.sandbox import Sandbox

METHODS = ("runStatus", "runResults")


@pytest.fixture
def sink() -> Iterator[ReportSink]:
    s = ReportSink(free_port(), methods=METHODS).start()
    yield s
    s.stop()


def staged(tmp_path: Path, url: str, **changes: str) -> tuple[Job, Sandbox]:
    package = package_archive(tmp_path / "store")
    job = Job.from_bog(assessment_bog(url, package, tmp_path / "results", **changes), tmp_path / "job", "tok")
    stage(staging_for(job), AssessmentPayload(job))
    return job, Sandbox(job.job_dir)


def collect(job: Job, sandbox: Sandbox, url: str, output: object | None = None, seconds: float = 20):
    reporter = Reporter(url, job.execrunid, job.epoch, "tok", status_method="runStatus", timeout=5)
    return AssessmentPayload(job).collect(sandbox, output or HostOutput(sandbox.out_dir), reporter,
                                          give_up_after(seconds))


def framework_output(out: Path, build: Path, status: str = "pass", bugs: int = 2) -> None:
    """What a framework leaves: status.out, a parsed-results archive with SCARF, output_files.conf."""
    log = StatusOut(out)
    log.note("begin")
    log.record("PASS", "parse-results", f"weaknesses: {bugs}", 0.5)
    log.record("PASS" if status == "pass" else "FAIL", "all", seconds=1.0)
    log.note("end")
    parsed = build / "parsed_results"
    parsed.mkdir(parents=True)
    with open(parsed / "parsed_results.xml", "w", encoding="utf-8") as fh:
        writer = ScarfWriter(fh, {"tool_name": "t", "tool_version": "1", "uuid": "u"})
        for n in range(bugs):
            writer.bug(Bug(f"bug {n} <&>", (Location("pkg1/a.c", n + 1),), code="c", group="g"))
        writer.close()
    (parsed / "weaknesses.txt").write_text(f"weaknesses: {bugs}\n")
    archive_dir(build, "parsed_results", out, {"parsed-results-archive": "parsed_results.tar.gz",
                                               "parsed-results-dir": "parsed_results",
                                               "parsed-results-file": "parsed_results.xml"})
    (out / "run.out").write_text("run.sh log\n")
    (out / "output_files.conf").write_text("runOut=run.out\nstatusOut=status.out\n")


def test_good_output_becomes_the_results_folder_and_a_rerun_does_not_redo_it(sink: ReportSink,
                                                                              tmp_path: Path) -> None:
    job, sandbox = staged(tmp_path, sink.url)
    framework_output(sandbox.out_dir, tmp_path / "build")
    outcome = collect(job, sandbox, sink.url)
    assert outcome.ok, outcome.problem
    results = RunResults.from_struct(sink.of("runResults")[0])
    assert results.outcome == "Finished" and results.scarf_bugs == 2 and results.status_out.weaknesses == 2
    assert results.files["scarf"].name == "parsed_results.xml" and "results_archive" not in results.files
    assert [c["state"] for c in sink.of("runStatus")] == ["collecting"]
    folder = Path(results.results_dir)
    first = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = collect(job, sandbox, sink.url)  # a post-command rerun
    assert again.ok and len(sink.of("runResults")) == 1 and len(sink.of("runStatus")) == 1
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == first


def test_results_not_delivered_stay_built_and_a_rerun_delivers_the_same(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    job, sandbox = staged(tmp_path, url)
    framework_output(sandbox.out_dir, tmp_path / "build", status="fail")
    down = collect(job, sandbox, url, seconds=1)  # the AgentMonitor is down
    assert not down.ok and down.results is not None and not down.delivered
    built = {p.name: p.stat().st_mtime_ns for p in Path(down.results.results_dir).iterdir()}
    sink = ReportSink(port, methods=METHODS).start()
    try:
        again = collect(job, sandbox, url)
        assert again.ok and again.results == down.results
        [body] = sink.of("runResults")
        assert RunResults.from_struct(body).outcome == "Finished with Errors"
        assert {p.name: p.stat().st_mtime_ns for p in Path(down.results.results_dir).iterdir()} == built
    finally:
        sink.stop()


def test_garbage_status_out_is_read_as_no_verdict_and_still_reported(sink: ReportSink, tmp_path: Path) -> None:
    job, sandbox = staged(tmp_path, sink.url)
    garbage = bytes(range(256)) * 40 + b"\nFAIL: \x00all\nPASS: all (\x1b[31m)\n\xff\xfe" + os.urandom(4096)
    (sandbox.out_dir / "status.out").write_bytes(garbage)
    outcome = collect(job, sandbox, sink.url)
    assert outcome.ok, outcome.problem
    body = sink.of("runResults")[0]
    results = RunResults.from_struct(body)
    status = results.status_out
    assert status.found and status.verdict == "pass"  # the one well-formed record in it
    assert results.outcome == "Finished with Errors"  # ... but there are no results
    assert "\x00" not in status.text and "\x1b" not in status.text and "\ufffd" in status.text
    report = json.loads((Path(results.results_dir) / "assessment-report.json").read_text())
    assert [item["name"] for item in report["status"]][:2] == ["Success", "status.out"]  # SWAMP's headline rule


def test_a_huge_status_out_is_read_only_in_part(sink: ReportSink, tmp_path: Path) -> None:
    job, sandbox = staged(tmp_path, sink.url)
    with open(sandbox.out_dir / "status.out", "w") as fh:
        fh.write("NOTE: begin\nFAIL: build (make failed)\n")
        line = "  " + "x" * 98 + "\n"
        for _ in range(100_000):  # 10 MB of a long message that never ends
            fh.write(line)
        fh.write("PASS: all\n")
    started = time.monotonic()
    outcome = collect(job, sandbox, sink.url)
    assert outcome.ok, outcome.problem
    assert time.monotonic() - started < 60
    body = sink.of("runResults")[0]
    status = body["status_out"]
    assert status["truncated"] is True and len(status["text"]) <= 65536
    assert status["first_failure"] == "build" and status["verdict"] == ""  # the PASS: all past the cap is unread
    results = RunResults.from_struct(body)
    assert results.files["status"].bytes > 10_000_000  # the file itself is kept whole


@pytest.mark.parametrize("member, kind, link", [
    ("../../escaped.xml", tarfile.REGTYPE, ""),
    ("/tmp/swampd-absolute-escape.xml", tarfile.REGTYPE, ""),
    ("parsed_results/parsed_results.xml", tarfile.SYMTYPE, "/etc/passwd"),
    ("parsed_results/parsed_results.xml", tarfile.LNKTYPE, "../../../../etc/passwd"),
    ("parsed_results/fifo", tarfile.FIFOTYPE, ""),
])
def test_a_hostile_parsed_results_archive_writes_nothing_outside_and_gives_no_results(
        sink: ReportSink, tmp_path: Path, member: str, kind: bytes, link: str) -> None:
    job, sandbox = staged(tmp_path, sink.url)
    out = sandbox.out_dir
    (out / "status.out").write_text("NOTE: begin\nPASS: parse-results (weaknesses: 1)\nPASS: all\nNOTE: end\n")
    info = tarfile.TarInfo(member)
    info.type = kind
    info.linkname = link
    (out / "parsed_results.tar.gz").write_bytes(tar_bytes([(info, b"<x/>" if kind == tarfile.REGTYPE else None)]))
    (out / "parsed_results.conf").write_text("parsed-results-archive=parsed_results.tar.gz\n"
                                             "parsed-results-dir=parsed_results\nparsed-results-file=parsed_results.xml\n")
    before = set(tmp_path.rglob("*"))
    outcome = collect(job, sandbox, sink.url)
    assert outcome.ok
    results = RunResults.from_struct(sink.of("runResults")[0])
    assert not results.have_results and results.result == "outputdisk" and "scarf" not in results.files
    assert results.outcome == "Finished with Errors" and results.problem
    assert not Path("/tmp/swampd-absolute-escape.xml").exists()
    new = set(tmp_path.rglob("*")) - before
    assert all(p.is_relative_to(tmp_path / "results") or p.name == "results.json" or
               p.is_relative_to(out) for p in new), sorted(map(str, new))
    assert not (tmp_path / "escaped.xml").exists() and not (tmp_path / "job" / "escaped.xml").exists()
    assert not (tmp_path / "job" / "collect.tmp").exists()  # the scratch is gone


def test_links_and_names_leaving_out_are_never_followed(sink: ReportSink, tmp_path: Path) -> None:
    job, sandbox = staged(tmp_path, sink.url)
    out = sandbox.out_dir
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the results\n")
    (out / "leak").symlink_to(secret)
    (out / "dirlink").symlink_to(tmp_path)
    (out / "output_files.conf").write_text(f"statusOut=../../secret.txt\nrunOut={secret}\n")
    os.mkfifo(out / "pipe")
    outcome = collect(job, sandbox, sink.url)
    assert outcome.ok
    results = RunResults.from_struct(sink.of("runResults")[0])
    assert not results.status_out.found and "status" not in results.files and "log" not in results.files
    assert "left out" in results.problem
    with tarfile.open(Path(results.results_dir) / "outputdisk.tar.gz") as tar:
        names = tar.getnames()
        assert not any(n.endswith(("leak", "dirlink", "pipe")) for n in names)
        assert all(m.isreg() or m.isdir() for m in tar.getmembers())
    for item in Path(results.results_dir).iterdir():
        assert "not for the results" not in item.read_bytes().decode(errors="replace")


def test_a_vms_output_disk_is_copied_into_out_without_links_odd_names_or_overwrites(tmp_path: Path) -> None:
    root = tmp_path / "job"
    sandbox = Sandbox(root)
    sandbox.lay_out()
    (sandbox.out_dir / "job_events.log").write_text("RUNSHSTART\n")
    disk = tmp_path / "disk"
    (disk / "parsed").mkdir(parents=True)
    (disk / "status.out").write_text("PASS: all\n")
    (disk / "parsed" / "p.xml").write_text("<x/>")
    (disk / "job_events.log").write_text("FORGED\n")
    (disk / "odd name.txt").write_text("spaces")
    (disk / "link").symlink_to("/etc/passwd")
    raw = tmp_path / "out.raw"
    raw.write_bytes(b"")
    os.truncate(raw, 16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(disk), str(raw)], check=True)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(root / "outputdisk.qcow2")],
                   check=True)
    output = DiskOutput(sandbox)
    try:
        assert output.tree() == sandbox.out_dir
    finally:
        output.close()
    assert (sandbox.out_dir / "status.out").read_text() == "PASS: all\n"
    assert (sandbox.out_dir / "parsed" / "p.xml").read_text() == "<x/>"
    assert (sandbox.out_dir / "job_events.log").read_text() == "RUNSHSTART\n"  # the host's serial file wins
    assert not (sandbox.out_dir / "odd name.txt").exists() and not (sandbox.out_dir / "link").exists()
