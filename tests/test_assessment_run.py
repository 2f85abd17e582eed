"""An assessment run end to end on the process platform: ``vruntask run`` as the local scheduler starts it.

The real tool (Debian's cppcheck, through ``swampd.tools.cppcheck``) assesses
a C package with known defects; the reports go to a stand-in AgentMonitor
that records ``runStatus`` and ``runResults`` (the contract of
``swampd.runreports``).  Then the ways a run goes wrong on the node: a tool
that crashes, one that hangs past the run deadline, a superseded launch.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Iterator

import pytest

from support.assess import EXECRUNID, assessment_bog, events_and_states, package_archive, start_vruntask
from support.daemon import SRC, free_port
from support.report_sink import ReportSink
from swampd.results.scarf import ScarfReader
from swampd.runreports import RunResults

METHODS = ("runStatus", "runResults")


@pytest.fixture
def sink() -> Iterator[ReportSink]:
    s = ReportSink(free_port(), methods=METHODS).start()
    yield s
    s.stop()


def run(tmp_path: Path, sink: ReportSink, timeout: float = 90, **changes: str) -> tuple[int, str, Path]:
    package = package_archive(tmp_path / "store")
    job_dir = tmp_path / "job"
    proc = start_vruntask(job_dir, assessment_bog(sink.url, package, tmp_path / "results", **changes))
    code = proc.wait(timeout)
    return code, proc.stdout.read() if proc.stdout else "", job_dir


def test_cppcheck_assesses_a_package_and_the_results_folder_is_handed_over(sink: ReportSink,
                                                                            tmp_path: Path) -> None:
    code, output, job_dir = run(tmp_path, sink)
    assert code == 0, output
    said = events_and_states(sink.of("runStatus"))
    assert said == [("starting", "Starting assessment process"), "RUNSHSTART", "WROTEIPADDR", "BEGINASSESSMENT",
                    "ENDASSESSMENT", ("collecting", "Extracting assessment results")], output
    assert all(r["execrunid"] == EXECRUNID and r["epoch"] == 1 and r["token"] == "t" * 32
               for r in sink.of("runStatus") + sink.of("runResults"))

    [body] = sink.of("runResults")
    results = RunResults.from_struct(body)  # the daemon's reading of it
    folder = tmp_path / "results" / EXECRUNID / "e1"
    assert results.results_dir == str(folder)
    assert results.outcome == "Finished" and results.result == "scarf" and results.have_results
    status = results.status_out
    assert status.found and status.verdict == "pass" and status.first_failure == "" and not status.retry
    # The findings are the tool's, and the weakness count is status.out's parse-results count.
    bugs = list(ScarfReader(folder / "parsed_results.xml"))
    codes = {bug["BugCode"] for bug in bugs}
    assert {"nullPointer", "arrayIndexOutOfBounds", "memleak"} <= codes
    assert status.weaknesses == len(bugs) == results.scarf_bugs
    null = next(bug for bug in bugs if bug["BugCode"] == "nullPointer")
    assert null["Locations"][0]["SourceFile"] == "pkg1/hello-c-2.1/src/defects.c"
    assert null["Locations"][0]["StartLine"] == "7" and null["CweIds"] == ["476"]
    assert (folder / "weaknesses.txt").read_text() == f"weaknesses: {len(bugs)}\n"
    # Every file of the folder is described with its SHA-512; nothing else is in it.
    assert set(results.files) == {"inputdisk", "outputdisk", "status", "log", "source", "report", "scarf",
                                  "weaknesses"}
    assert {p.name for p in folder.iterdir()} == {f.name for f in results.files.values()}
    for item in results.files.values():
        data = Path(item.path).read_bytes()
        assert hashlib.sha512(data).hexdigest() == item.sha512 and len(data) == item.bytes
    assert results.files["source"].name == "hello-c-2.1.tar.gz"
    with tarfile.open(folder / "outputdisk.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"out/status.out", "out/run.out", "out/build_assess.out", "out/output_files.conf",
            "out/parsed_results.tar.gz", "out/job_events.log", f"out/{EXECRUNID}.bog", "out/versions.txt"} <= names
    assert "out/timings.json" not in names
    with tarfile.open(folder / "inputdisk.tar.gz") as tar:
        assert {"in/run-params.conf", "in/run.conf", "in/package.conf", "in/hello-c-2.1.tar.gz"} <= set(tar.getnames())
    report = json.loads((folder / "assessment-report.json").read_text())
    assert report["status"][0] == {"name": "Success", "content": "No warnings or errors found.",
                                   "collapsed": False, "anchor": "task-def-all"}
    assert (job_dir / "exit_status").read_text().strip() == "0"
    record = json.loads((job_dir / "results.json").read_text())
    assert record["delivered"] is True and record["epoch"] == 1


def test_a_tool_that_crashes_leaves_a_failed_status_and_its_output_is_still_collected(sink: ReportSink,
                                                                                      tmp_path: Path) -> None:
    crash = ["{python}", "-c", "import sys; print('segfault, more or less'); sys.exit(139)"]
    code, output, _ = run(tmp_path, sink, swampd_tool_command=json.dumps(crash))
    assert code == 0, output  # the run itself went as runs go: the tool's failure is in status.out
    [body] = sink.of("runResults")
    results = RunResults.from_struct(body)
    assert results.outcome == "Finished with Errors" and results.result == "outputdisk"
    assert results.status_out.first_failure == "assess" and results.status_out.verdict == "fail"
    assert "FAIL: assess (exit-status-139)" in results.status_out.text
    folder = Path(results.results_dir)
    with tarfile.open(folder / "outputdisk.tar.gz") as tar:
        out = tar.extractfile("out/build_assess.out").read().decode()  # type: ignore[union-attr]
    assert "segfault, more or less" in out
    report = json.loads((folder / "assessment-report.json").read_text())
    assert report["status"][0]["name"] == "assess"


def test_a_tool_that_hangs_is_ended_by_the_run_deadline(sink: ReportSink, tmp_path: Path) -> None:
    hang = ["{python}", "-c", "import time; time.sleep(600)"]
    code, output, job_dir = run(tmp_path, sink, swampd_tool_command=json.dumps(hang), swampd_run_timeout="2")
    assert code == 1, output
    said = events_and_states(sink.of("runStatus"))
    failure = ("failed", "the run did not end within its deadline (2s)")
    assert said.count(failure) == 1
    assert said.index("BEGINASSESSMENT") < said.index(failure) < said.index("ENDASSESSMENT")
    [body] = sink.of("runResults")
    status = RunResults.from_struct(body).status_out
    assert status.first_failure == "setup" and "FAIL: setup (signal)" in status.text  # run.sh's signal shutdown
    assert (job_dir / "exit_status").read_text().strip() == "1"


def test_a_superseded_launch_collects_nothing_and_exits_fenced(sink: ReportSink, tmp_path: Path) -> None:
    sink.fenced.set()
    code, output, job_dir = run(tmp_path, sink)
    assert code == 3, output
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.tar.gz"))


def test_a_tampered_package_stops_the_launch_before_anything_runs(sink: ReportSink, tmp_path: Path) -> None:
    code, output, job_dir = run(tmp_path, sink, swampd_package_sha512="0" * 128)
    assert code == 1, output
    said = events_and_states(sink.of("runStatus"))
    assert said[0] == ("failed", "the package archive hello-c-2.1.tar.gz does not match its SHA-512 checksum")
    assert "RUNSHSTART" not in said
    assert not (job_dir / "in" / "hello-c-2.1.tar.gz").exists()


def test_a_bad_bog_ends_the_launch_with_the_reason(sink: ReportSink, tmp_path: Path) -> None:
    code, output, job_dir = run(tmp_path, sink, resultsfolder="relative/results")
    assert code == 2, output
    assert events_and_states(sink.of("runStatus")) == [("failed", "BOG resultsfolder must be an absolute path")]
    assert not (job_dir / "in").exists()


def test_prepare_and_finish_steps_around_a_machine_a_scheduler_runs(sink: ReportSink, tmp_path: Path) -> None:
    """HTCondor's docker universe: vruntask prepare before the container, finish after it (run twice)."""
    package = package_archive(tmp_path / "store")
    job_dir = tmp_path / "job"
    values = assessment_bog(sink.url, package, tmp_path / "results", swampd_platform="docker")
    assert start_vruntask(job_dir, values, "prepare").wait(60) == 0
    assert events_and_states(sink.of("runStatus")) == [("starting", "Starting docker container")]
    assert (job_dir / "in" / "run-params.conf").exists() and (job_dir / "out" / "job_events.log").exists()
    # The container's run.sh: the real tool on in/ and out/, as the process platform runs it.
    cppcheck = subprocess.run([sys.executable, "-m", "swampd.tools.cppcheck", "--in-dir", str(job_dir / "in"),
                               "--out-dir", str(job_dir / "out")], env=dict(os.environ, PYTHONPATH=str(SRC)),
                              capture_output=True, text=True, timeout=120)
    assert cppcheck.returncode == 0, cppcheck.stderr
    finish = start_vruntask(job_dir, values, "finish")
    assert finish.wait(60) == 0
    summary = finish.stdout.read() if finish.stdout else ""
    assert f"results {tmp_path / 'results' / EXECRUNID / 'e1'}: Finished, weaknesses " in summary
    again = start_vruntask(job_dir, values, "finish")  # HTCondor may run a post-command twice
    assert again.wait(60) == 0
    assert len(sink.of("runResults")) == 1
    assert RunResults.from_struct(sink.of("runResults")[0]).status_out.weaknesses >= 3
