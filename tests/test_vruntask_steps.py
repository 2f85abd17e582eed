"""``vruntask prepare`` / ``finish`` / ``monitor``: the runner's own pieces, as HTCondor's pre- and post-commands run them."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Iterator

import pytest

from support.daemon import SRC, free_port, wait_for
from support.report_sink import ReportSink
from swampd.bog import format_bog, write_private


@pytest.fixture
def sink() -> Iterator[ReportSink]:
    s = ReportSink(free_port()).start()
    yield s
    s.stop()


def tgz(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def job_dir_with(tmp_path: Path, sink: ReportSink, **changes: str) -> Path:
    job = tmp_path / "job"
    job.mkdir()
    values = {"execrunid": "vrun_p1_CodeDX", "projectid": "p1", "viewer": "CodeDX", "viewer_uuid": "vi1",
              "urluuid": "proxy-1", "apikey": "k" * 32, "swampd_platform": "docker", "swampd_epoch": "4",
              "swampd_agentmonitor_url": sink.url, "platform_image": "registry/codedx:5",
              "swampd_viewer_store": str(tmp_path / "store")}
    values.update(changes)
    write_private(job / "vrun_p1_CodeDX.bog", format_bog(values))
    write_private(job / "token", "t" * 32 + "\n")
    return job


def vruntask(step: str, job: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swampd.cli.vruntask_main", step, "--job-dir", str(job),
                           "--bog", "vrun_p1_CodeDX.bog", "--token-file", "token"],
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ, PYTHONPATH=str(SRC)))


def states(sink: ReportSink) -> list[tuple[int, str]]:
    return [(r["state"], r["status"]) for r in sink.of("viewerStatus") if "state" in r]


def test_prepare_for_a_container_lays_out_the_shared_sandbox_and_says_starting(sink: ReportSink,
                                                                               tmp_path: Path) -> None:
    job = job_dir_with(tmp_path, sink)
    done = vruntask("prepare", job)
    assert done.returncode == 0, done.stderr
    assert states(sink) == [(1, "Starting DC")]
    assert (job / "out" / "job_events.log").exists() and (job / "out" / "job_ip_address.txt").exists()
    assert (job / "in" / "codedx.props").read_text() == f"swa.admin.system-key={'k' * 32}\n"
    guest_bog = (job / "in" / "vrun_p1_CodeDX.bog").read_text()
    assert "viewerplatform=registry/codedx:5" in guest_bog and "swampd_" not in guest_bog
    shown = subprocess.run(["bash", "-c", '. "$1"; printf "%s\\n" "$JOB_OUTPUT_DIR" "$MACHINE_SHUTDOWN_COMMAND"',
                            "_", str(job / "run-params.sh")], capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines() == [str(job / "out"), "supervisorctl shutdown"]
    assert not (job / "in" / "run-params.sh").exists()


def test_a_failed_prepare_reports_the_reason_and_leaves_no_disk_to_boot(sink: ReportSink, tmp_path: Path) -> None:
    db = tmp_path / "saved.tar.gz"
    db.write_bytes(tgz("codedx.sql", b"select 1;"))
    job = job_dir_with(tmp_path, sink, swampd_platform="vm", platform_image=str(tmp_path / "img.qcow2"),
                       db_path=str(db), db_checksum=hashlib.sha512(b"something else").hexdigest())
    for placeholder in ("delta.qcow2", "inputdisk.qcow2", "outputdisk.qcow2"):  # as LaunchPad leaves them
        (job / placeholder).write_bytes(b"")
    done = vruntask("prepare", job)
    assert done.returncode == 1
    [(state, status)] = states(sink)
    assert state == -5 and status.startswith("saved viewer database unusable:") and "checksum" in status
    assert not [p for p in job.iterdir() if p.suffix == ".qcow2"]


def test_finish_saves_and_hands_over_the_snapshot_once(sink: ReportSink, tmp_path: Path) -> None:
    job = job_dir_with(tmp_path, sink)
    (job / "out").mkdir()
    assert vruntask("finish", job).returncode == 0  # no snapshot yet: nothing to save, not a failure
    assert sink.of("viewerSnapshot") == []
    snapshot = tgz("codedx.sql", b"select 'saved';")
    (job / "out" / "codedx_viewerdb.tar.gz").write_bytes(snapshot)
    done = vruntask("finish", job)
    assert done.returncode == 0, done.stderr
    [call] = sink.of("viewerSnapshot")
    assert done.stdout.strip() == f"saved {call['path']} sha512={hashlib.sha512(snapshot).hexdigest()}"
    assert (call["epoch"], call["token"], call["platform"]) == (4, "t" * 32, "registry/codedx:5")
    assert vruntask("finish", job).returncode == 0 and len(sink.of("viewerSnapshot")) == 1  # a rerun


def test_monitor_follows_the_events_until_the_machine_is_down(sink: ReportSink, tmp_path: Path) -> None:
    job = job_dir_with(tmp_path, sink)
    (job / "out").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "swampd.cli.vruntask_main", "monitor", "--job-dir", str(job),
                             "--bog", "vrun_p1_CodeDX.bog", "--token-file", "token"],
                            env=dict(os.environ, PYTHONPATH=str(SRC)))
    events = job / "out" / "job_events.log"
    (job / "out" / "job_ip_address.txt").write_text("172.17.0.5\n")
    events.write_text("RUNSHSTART\nWROTEIPADDR\nVIEWERUP\n")
    wait_for(lambda: len(sink.of("viewerStatus")) == 3, 20, what="three events")
    assert proc.poll() is None  # up: still following
    with open(events, "a") as fh:
        fh.write("VIEWERDOWN\n")
    assert proc.wait(20) == 0
    assert [r["event"] for r in sink.of("viewerStatus")] == ["RUNSHSTART", "WROTEIPADDR", "VIEWERUP", "VIEWERDOWN"]
    assert sink.of("viewerStatus")[1]["vmip"] == "172.17.0.5:8443"
