"""An assessment in a real guest under TCG: input disk in, events out, output disk collected into the results.

``vruntask run`` gets the BOG of a vm-platform ARun (as the daemon's job
builder writes it), builds the input disk from ``in/`` (run-params.conf,
package.conf, the package, ``run.sh``), boots the tiny guest
(tests/guest/build.py ``build_assessment_guest``: its init runs
``/mnt/in/run.sh`` as SWAMP's boot script did, then powers off), follows the
events the guest writes to its serial port, and once the guest is down
copies its output disk into ``out/`` and builds the results folder.  The
guest's run.sh (tests/guest/assess-run.sh) writes a fixed SCARF file and
status.out; the real tool need not run inside busybox.  Nothing skips:
missing system parts are installed by scripts/setup-system.sh.
"""
from __future__ import annotations

import json
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from guest.build import Guest, build_assessment_guest
from guest.host import LIBVIRT_URI, destroy_domains_of, ensure_vm_host
from support.assess import assessment_bog, events_and_states, package_archive, start_vruntask
from support.daemon import free_port
from support.report_sink import ReportSink
from swampd.results.scarf import ScarfReader
from swampd.runreports import RunResults

RUN_SH = Path(__file__).resolve().parent / "guest" / "assess-run.sh"


@pytest.fixture(scope="module")
def guest() -> Guest:
    ensure_vm_host()
    return build_assessment_guest()


@pytest.fixture
def sink() -> Iterator[ReportSink]:
    s = ReportSink(free_port(), methods=("runStatus", "runResults")).start()
    yield s
    s.stop()


def domain_names() -> set[str]:
    out = subprocess.run(["virsh", "-c", LIBVIRT_URI, "list", "--all", "--name"], capture_output=True,
                         text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def test_a_guest_runs_the_assessment_and_its_output_disk_becomes_the_results(
        guest: Guest, sink: ReportSink, tmp_path: Path) -> None:
    execrunid = str(uuid.uuid4())  # the domain name carries it: unique across concurrent test runs
    package = package_archive(tmp_path / "store")
    values = assessment_bog(
        sink.url, package, tmp_path / "results", execrunid=execrunid, swampd_platform="vm",
        platform_image=str(guest.platform_image), swampd_libvirt_uri=LIBVIRT_URI, swampd_vm_domain_type="qemu",
        swampd_vm_network="none", swampd_vm_kernel=str(guest.kernel), swampd_vm_initrd=str(guest.initrd),
        swampd_vm_cmdline="console=ttyS0 panic=-1 quiet", swampd_vm_memory="256", swampd_vm_cpus="1",
        swampd_output_disk_mib="32", swampd_boot_timeout="120", swampd_ready_timeout="150",
        swampd_shutdown_timeout="30", swampd_run_timeout="120", swampd_runsh=str(RUN_SH),
        swampd_tool_command=None)
    job_dir = tmp_path / "job"
    proc = start_vruntask(job_dir, values)
    try:
        code = proc.wait(240)
    finally:
        if proc.poll() is None:
            proc.kill()
        destroy_domains_of(tmp_path)
    output = proc.stdout.read() if proc.stdout else ""
    assert code == 0, output
    said = events_and_states(sink.of("runStatus"))
    assert said == [("starting", "Starting virtual machine"), "RUNSHSTART", "WROTEIPADDR", "BEGINASSESSMENT",
                    "ENDASSESSMENT", ("collecting", "Extracting assessment results")], output
    address = next(r["vmip"] for r in sink.of("runStatus") if r.get("event") == "WROTEIPADDR")
    assert address.split(":")[0] == "10.0.2.15"

    [body] = sink.of("runResults")
    results = RunResults.from_struct(body)
    folder = tmp_path / "results" / execrunid / "e1"
    assert results.results_dir == str(folder)
    assert results.outcome == "Finished" and results.result == "scarf" and results.have_results
    assert results.status_out.weaknesses == 1 == results.scarf_bugs
    [bug] = list(ScarfReader(folder / "parsed_results.xml"))
    assert bug["BugCode"] == "nullPointer"
    with tarfile.open(folder / "outputdisk.tar.gz") as tar:
        names = set(tar.getnames())
        listing = tar.extractfile("out/build_assess.out").read().decode()  # type: ignore[union-attr]
        header = tar.extractfile("out/parsed_results.tar.gz")
        assert header is not None
    # What the guest wrote on its output disk, beside what the host's serial-port files caught.
    assert {"out/status.out", "out/run.out", "out/runsh.out", "out/output_files.conf", "out/parsed_results.conf",
            "out/job_events.log", "out/job_ip_address.txt", "out/versions.txt"} <= names
    assert "out/lost+found" not in names
    assert "run-params.conf" in listing and "hello-c-2.1.tar.gz" in listing and "run.sh" in listing
    run_out = (folder / "run.out").read_text()
    assert "starting as user builder (9999)" in run_out and "run.sh done" in run_out
    report = json.loads((folder / "assessment-report.json").read_text())
    assert report["status"][0]["name"] == "Success"
    assert (job_dir / "exit_status").read_text().strip() == "0"
    assert not [n for n in domain_names() if execrunid in n]  # the domain is undefined
