"""A real guest under TCG through libvirt: launch -> LAUNCHING -> READY -> stop -> snapshot stored.

This is the end-to-end proof of the VM path: the daemon's local scheduler
runs ``vruntask run``, which builds real disks, defines and starts a libvirt
domain (qemu:///system), follows the guest's serial-port files, and on stop
powers the guest off over ACPI and stores the database it wrote to its
output disk.  The guest is a Debian kernel plus a busybox initramfs built by
tests/guest/build.py (cached).  Nothing here skips: missing system parts are
installed by scripts/setup-system.sh, or the test fails.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from guest.build import Guest, build_guest
from guest.host import LIBVIRT_URI, Tap, destroy_domains_of, ensure_vm_host
from support.daemon import SRC, Daemon, wait_for
from swampd.store.database import Store

#: Per test process: the domain name carries the project, and test runs of other checkouts share
#: qemu:///system; with one fixed name, one run's vruntask removes the other's VM as a leftover.
PROJECT = f"proj-{os.getpid():x}"
VIEWER_UUID, USER = "vi-77aa", "user-1"


@pytest.fixture(scope="module")
def guest() -> Guest:
    ensure_vm_host()
    return build_guest()


@pytest.fixture
def tap() -> Iterator[Tap]:
    t = Tap.create()
    yield t
    t.delete()


def snapshot_bytes(sql: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("codedx.sql")
        info.size = len(sql)
        tar.addfile(info, io.BytesIO(sql))
    return buf.getvalue()


def snapshots_of(daemon: Daemon) -> list:
    store = Store(daemon.state_dir / "registry.sqlite3")
    record = store.get_viewer(PROJECT, "CodeDX")
    return store.snapshots(record.id) if record is not None else []


def vm_daemon(make_daemon: Callable[..., Daemon], guest: Guest, tap: Tap) -> Daemon:
    viewer = {
        "platform": "vm", "image": str(guest.platform_image), "domain_type": "qemu", "libvirt_uri": LIBVIRT_URI,
        "network": f"tap:{tap.dev}", "kernel": str(guest.kernel), "initrd": str(guest.initrd),
        "cmdline": guest.cmdline(f"{tap.guest_ip}/{tap.prefix}"), "memory": 256, "cpus": 1,
        "output_disk_mib": 64, "boot_timeout": 120, "ready_timeout": 180, "shutdown_timeout": 60,
    }
    # The scheduler's TERM->KILL grace must outlast the guest's ACPI shutdown and the DB save.
    return make_daemon(viewers={"CodeDX": viewer}, scheduler={"stop_grace": 90})


def history(daemon: Daemon) -> list[dict[str, Any]]:
    return list(daemon.api.viewerHistory(PROJECT, "CodeDX"))


def job_dir(daemon: Daemon) -> Path:
    dirs = [p for p in daemon.jobs_dir().iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def domain_names() -> set[str]:
    out = subprocess.run(["virsh", "-c", LIBVIRT_URI, "list", "--all", "--name"], capture_output=True,
                         text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def test_real_guest_boots_ready_stops_and_saves_its_database(
        make_daemon: Callable[..., Daemon], guest: Guest, tap: Tap, tmp_path: Path) -> None:
    daemon = vm_daemon(make_daemon, guest, tap)
    old = daemon.state_dir / "SCAProjects" / PROJECT / "V-Runs" / "older" / "codedx_viewerdb_old.tar.gz"
    old.parent.mkdir(parents=True)  # under the viewer store: the default viewer_db_roots
    old.write_bytes(snapshot_bytes(b"select 'the saved database';\n"))
    try:
        started = time.monotonic()
        launched = daemon.api.launchViewer({
            "projectid": PROJECT, "viewer": "CodeDX", "userid": USER, "viewer_uuid": VIEWER_UUID,
            "db_path": str(old), "db_checksum": hashlib.sha512(old.read_bytes()).hexdigest()})
        assert launched["launched"] and launched["state"] == 1
        ready = wait_for(lambda: (v := daemon.api.getViewer(PROJECT, "CodeDX"))["state"] in (2, -5) and v,
                         180, 0.2, "READY")
        assert ready["state"] == 2, (ready, daemon.log())
        boot_seconds = time.monotonic() - started
        assert ready["vmip"] == f"{tap.guest_ip}:8443"
        assert ready["url"] == f"http://{tap.guest_ip}:8443/"
        page = urllib.request.urlopen(ready["url"], timeout=10).read().decode()
        assert f"project={ready['url_uuid']}" in page      # the guest sourced run-params.sh from its input disk
        assert "in: codedx.sql" in page and "in: codedx.props" in page
        jd = job_dir(daemon)
        name = f"swampd-{ready['execrunid']}-e{ready['epoch']}"
        assert name in domain_names()
        states = [h["state_name"] for h in history(daemon)]
        assert "LAUNCHING" in states and states[-1] == "READY"
        assert states.index("LAUNCHING") < states.index("READY")

        daemon.api.stopViewer(PROJECT, "CodeDX")
        final = wait_for(lambda: (v := daemon.api.getViewer(PROJECT, "CodeDX"))["state"] not in (1, 2, -1, -6) and v,
                         150, 0.2, "the viewer to end")
        # A stop by request ends TERMINATED once the guest's own VIEWERDOWN arrives.
        assert final["state"] == -7 and final["status"] == "Terminated", (final, daemon.log())
        events = (jd / "out" / "job_events.log").read_text().split()
        assert events[:3] == ["RUNSHSTART", "WROTEIPADDR", "VIEWERUP"]
        assert events[-2:] == ["VIEWERDBBUNDLESUCCESS", "VIEWERDOWN"]  # graceful: ACPI, not destroy
        saved = wait_for(lambda: snapshots_of(daemon),
                         60, 0.2, "the AgentMonitor to record the snapshot")
        # vruntask writes its own record of the delivery, then its exit status, last of all.
        wait_for(lambda: (jd / "exit_status").exists(), 60, 0.2, "vruntask to exit")
        assert len(saved) == 1 and saved[0]["epoch"] == ready["epoch"] and saved[0]["viewer_uuid"] == VIEWER_UUID
        assert saved[0]["platform"] == str(guest.platform_image)
        path = Path(saved[0]["path"])
        assert saved[0]["checksum"] == hashlib.sha512(path.read_bytes()).hexdigest()
        assert path.parent == daemon.state_dir / "SCAProjects" / PROJECT / "V-Runs" / VIEWER_UUID
        assert path.name.startswith("codedx_viewerdb_") and path.name.endswith(".tar.gz")
        with tarfile.open(path) as tar:
            sql = tar.extractfile("codedx.sql").read().decode()  # type: ignore[union-attr]
        assert "select 'the saved database';" in sql and f"saved by the tiny guest for project {ready['url_uuid']}" in sql
        record = json.loads((jd / "out" / "snapshot.json").read_text())
        assert record == {"path": str(path), "checksum": hashlib.sha512(path.read_bytes()).hexdigest(),
                          "delivered": True}
        wait_for(lambda: name not in domain_names(), 30, 0.2, "the domain to be undefined")
        assert (jd / "exit_status").read_text().strip() == "0"
        timings = json.loads((jd / "out" / "timings.json").read_text())
        print(f"\nreal guest: READY after {boot_seconds:.1f}s; vruntask milestones {timings}")

        # The next launch starts from the snapshot this one saved.
        again = daemon.api.launchViewer({"projectid": PROJECT, "viewer": "CodeDX", "userid": USER,
                                         "viewer_uuid": VIEWER_UUID})
        assert again["launched"] and again["epoch"] == ready["epoch"] + 1
        wait_for(lambda: daemon.api.getViewer(PROJECT, "CodeDX")["state"] == 2, 180, 0.2, "second READY")
        page = urllib.request.urlopen(ready["url"], timeout=10).read().decode()
        assert "in: codedx.sql" in page
        daemon.api.stopViewer(PROJECT, "CodeDX")
        wait_for(lambda: daemon.api.getViewer(PROJECT, "CodeDX")["state"] == -7, 150, 0.2, "second stop")
    finally:
        daemon.cleanup()
        destroy_domains_of(daemon.root)


def test_vruntask_killed_domainmonitor_reaps_the_vm_and_the_end_is_recorded(
        make_daemon: Callable[..., Daemon], guest: Guest, tap: Tap) -> None:
    daemon = vm_daemon(make_daemon, guest, tap)
    try:
        daemon.api.launchViewer({"projectid": PROJECT, "viewer": "CodeDX", "userid": USER,
                                 "viewer_uuid": VIEWER_UUID})
        ready = wait_for(lambda: (v := daemon.api.getViewer(PROJECT, "CodeDX"))["state"] in (2, -5) and v,
                         180, 0.2, "READY")
        assert ready["state"] == 2, daemon.log()
        name = f"swampd-{ready['execrunid']}-e{ready['epoch']}"
        jd = job_dir(daemon)
        vruntask = json.loads((jd / "spawned").read_text())["pid"]
        os.kill(vruntask, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{vruntask}").exists() or
                 Path(f"/proc/{vruntask}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 10, 0.1, "vruntask gone")
        assert name in domain_names()  # the VM outlives its vruntask: an orphan

        env = dict(os.environ, PYTHONPATH=str(SRC))
        done = subprocess.run([sys.executable, "-m", "swampd.cli.swampd_main", "domainmonitor", "--once",
                               "--uri", LIBVIRT_URI, "--grace", "0", "--state-file", str(daemon.root / "dm.json")],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"{name} reap its vruntask is gone" in done.stdout
        assert name not in domain_names()
        end = wait_for(lambda: (v := daemon.api.getViewer(PROJECT, "CodeDX"))["state"] in (-3, -5, -7) and v,
                       60, 0.2, "the end to be recorded")
        # Whichever tells it first (the scheduler: job gone; the domain monitor: VM reaped), the launch
        # has ended with a reason, and nothing of it runs any more.
        assert end["status"], end
        assert not [n for n in domain_names() if n.startswith(f"swampd-{ready['execrunid']}-")]
    finally:
        daemon.cleanup()
        destroy_domains_of(daemon.root)


def test_no_address_within_the_boot_deadline_is_an_error_and_the_vm_is_stopped(
        make_daemon: Callable[..., Daemon], guest: Guest) -> None:
    # No kernel: the firmware finds nothing to boot on the empty platform image and waits forever.
    viewer = {"platform": "vm", "image": str(guest.platform_image), "domain_type": "qemu",
              "libvirt_uri": LIBVIRT_URI, "network": "none", "memory": 128, "cpus": 1,
              "output_disk_mib": 16, "boot_timeout": 4, "ready_timeout": 60, "shutdown_timeout": 30}
    daemon = make_daemon(viewers={"CodeDX": viewer}, scheduler={"stop_grace": 60})
    try:
        daemon.api.launchViewer({"projectid": PROJECT, "viewer": "CodeDX", "userid": USER,
                                 "viewer_uuid": VIEWER_UUID})
        end = wait_for(lambda: (v := daemon.api.getViewer(PROJECT, "CodeDX"))["state"] not in (1, -1) and v,
                       60, 0.2, "the launch to fail")
        assert end["state"] == -5, end
        assert end["status"] == "the VM wrote no address within the boot deadline (4s)"
        jd = job_dir(daemon)
        wait_for(lambda: (jd / "exit_status").exists(), 30, 0.2, "vruntask to exit")
        assert (jd / "exit_status").read_text().strip() == "1"
        assert not [n for n in domain_names() if n.startswith(f"swampd-{end['execrunid']}-")]
        assert not list((daemon.state_dir / "SCAProjects").glob("**/*.tar.gz"))
    finally:
        daemon.cleanup()
        destroy_domains_of(daemon.root)


def test_kill9_between_the_vruntask_spawn_and_its_record_leaves_a_vm_job_that_can_still_be_stopped(
        make_daemon: Callable[..., Daemon], guest: Guest) -> None:
    """A VM job's supervisor (``vruntask run``, started by the daemon itself) runs, and the daemon
    dies before writing down its process group: after a restart the job is found by the processes
    that hold its lock, and a stop ends it and its VM."""
    viewer = {"platform": "vm", "image": str(guest.platform_image), "domain_type": "qemu",
              "libvirt_uri": LIBVIRT_URI, "network": "none", "memory": 128, "cpus": 1,
              "output_disk_mib": 16, "boot_timeout": 300, "ready_timeout": 600, "shutdown_timeout": 30}
    daemon = make_daemon(start=False, viewers={"CodeDX": viewer}, scheduler={"stop_grace": 60})
    try:
        daemon.start(extra_env={"SWAMPD_FAILPOINTS": "local.spawn_unrecorded"})
        try:
            daemon.api.launchViewer({"projectid": PROJECT, "viewer": "CodeDX", "userid": USER,
                                     "viewer_uuid": VIEWER_UUID})
        except OSError:
            pass  # the daemon may die before it answers
        assert daemon.wait_exit(30) == -9, daemon.log()
        jd = job_dir(daemon)
        assert not (jd / "spawned").exists()
        daemon.start()
        wait_for(lambda: [n for n in domain_names() if n.startswith("swampd-")] or None, 120, 0.5,
                 "the VM to be defined")
        daemon.api.stopViewer(PROJECT, "CodeDX")
        end = wait_for(lambda: (v := daemon.api.getViewer(PROJECT, "CodeDX"))["state"] < 0 and v["state"] != -6
                       and v, 120, 0.5, "the stop to end")
        assert end["state_name"] == "TERMINATED", end
        from swampd.launchpad.schedulers.local import lock_holders

        wait_for(lambda: not (lock_holders(jd / "job.lock") - {daemon.proc.pid}), 60, 0.5,
                 "no process of the stopped job left")
        assert not [n for n in domain_names() if n.startswith(f"swampd-{end['execrunid']}-")]
    finally:
        daemon.cleanup()
        destroy_domains_of(daemon.root)
