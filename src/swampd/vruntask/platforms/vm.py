"""The ``vm`` platform: a viewer machine as a libvirt domain (the only code here that talks to libvirt).

``run_vm`` is ``vruntask run`` for a VM: prepare the sandbox and disks,
define and start the domain, let the shared Monitor turn the guest's serial
port files into reports, enforce the boot and ready deadlines, and on guest
power-off, a stop from the scheduler (SIGTERM) or a fenced report: ask the
guest to shut down (ACPI), wait for it, destroy it after the deadline,
undefine it, then save its database (``finish``).

While the domain exists this process holds an ``flock`` on
``<job_dir>/vm.lock``, whose path is in the domain's metadata: that is how
``swampd domainmonitor`` tells a VM with a live vruntask from an orphan,
without trusting a pid.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import libvirt

from swampd.jobdir import write_exit_status
from swampd.states import ViewerState
from swampd.vruntask import disks
from swampd.vruntask.domain_xml import DomainSpec, build_domain_xml, domain_name, metadata_of
from swampd.vruntask.events import read_address
from swampd.vruntask.finish import finish
from swampd.vruntask.monitor import Monitor
from swampd.vruntask.prepare import PrepareError, prepare
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.sandbox import Sandbox

log = logging.getLogger(__name__)

LOCK_FILE = "vm.lock"
CONSOLE_FILE = "console.log"
TIMINGS_FILE = "timings.json"
EXIT_OK, EXIT_VIEWER_FAILED, EXIT_FENCED = 0, 1, 3
DRAIN_SECONDS = 120.0


class VmError(Exception):
    """libvirt refused or failed; the message is the reason the AgentMonitor gets."""


def domain_spec(sandbox: Sandbox, token_file: str) -> DomainSpec:
    """The domain of this launch, from the BOG (pure: no libvirt)."""
    bog, root = sandbox.bog, sandbox.root
    execrunid, epoch = bog["execrunid"], int(bog["swampd_epoch"])
    return DomainSpec(
        name=domain_name(execrunid, epoch),
        memory_mib=int(bog.get("swampd_vm_memory", "6144")),
        vcpus=int(bog.get("swampd_vm_cpus", "2")),
        delta=str(root / disks.DELTA_DISK),
        input_disk=str(root / disks.INPUT_DISK),
        output_disk=str(root / disks.OUTPUT_DISK),
        console_file=str(sandbox.out_dir / CONSOLE_FILE),
        events_file=str(sandbox.events_file),
        ip_file=str(sandbox.ip_file),
        domain_type=bog.get("swampd_vm_domain_type", "kvm"),
        network=bog.get("swampd_vm_network", "network:default"),
        kernel=bog.get("swampd_vm_kernel", ""),
        initrd=bog.get("swampd_vm_initrd", ""),
        cmdline=bog.get("swampd_vm_cmdline", ""),
        metadata={
            "execrunid": execrunid, "epoch": str(epoch), "launch_id": bog.get("swampd_launch_id", ""),
            "projectid": bog.get("projectid", ""), "viewer": bog.get("viewer", ""),
            "job_dir": str(root), "lock_file": str(root / LOCK_FILE), "token_file": token_file,
            "agentmonitor_url": bog.get("swampd_agentmonitor_url", ""), "started": f"{time.time():.0f}",
        },
    )


class VmDomain:
    """One viewer domain on one libvirt connection."""

    def __init__(self, uri: str, spec: DomainSpec, opener: Callable[[str], Any] = libvirt.open) -> None:
        self.uri = uri
        self.spec = spec
        self._opener = opener
        self._conn: Any = None
        self.dom: Any = None

    def conn(self) -> Any:
        if self._conn is None or not self._conn.isAlive():
            try:
                self._conn = self._opener(self.uri)
            except libvirt.libvirtError as exc:
                raise VmError(f"cannot connect to libvirt at {self.uri}: {exc.get_error_message()}") from None
        return self._conn

    def start(self) -> None:
        """Define and start the domain; a leftover of this same launch is removed first."""
        conn = self.conn()
        self._remove_leftover(conn)
        try:
            self.dom = conn.defineXML(build_domain_xml(self.spec))
            self.dom.create()
        except libvirt.libvirtError as exc:
            self.undefine()
            raise VmError(f"libvirt could not start the VM: {exc.get_error_message()}") from None
        log.info("domain %s started", self.spec.name)

    def _remove_leftover(self, conn: Any) -> None:
        try:
            old = conn.lookupByName(self.spec.name)
        except libvirt.libvirtError:
            return
        if metadata_of(old.XMLDesc(0)) is None:
            raise VmError(f"a domain named {self.spec.name} exists and is not swampd's; not touching it")
        log.warning("removing leftover domain %s of an earlier attempt", self.spec.name)
        if old.isActive():
            old.destroy()
        old.undefine()

    def active(self) -> bool | None:
        """True/False, or None when libvirt cannot say (unknown is not gone)."""
        if self.dom is None:
            return False
        try:
            return bool(self.dom.isActive())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            try:  # the connection may have dropped (libvirtd restart): look the domain up again
                self.dom = self.conn().lookupByName(self.spec.name)
                return bool(self.dom.isActive())
            except (libvirt.libvirtError, VmError) as again:
                if isinstance(again, libvirt.libvirtError) and again.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return False
                log.warning("cannot ask libvirt about %s: %s", self.spec.name, again)
                return None

    def shutdown(self, deadline: float) -> bool:
        """ACPI power-off, waiting until ``deadline`` (monotonic); then destroy. True if it was graceful."""
        if self.active() is False:
            return True
        try:
            self.dom.shutdown()
        except libvirt.libvirtError as exc:
            log.warning("ACPI shutdown of %s failed: %s", self.spec.name, exc.get_error_message())
        while time.monotonic() < deadline:
            if self.active() is False:
                log.info("domain %s powered off", self.spec.name)
                return True
            time.sleep(0.2)
        log.warning("domain %s still running at its shutdown deadline; destroying it", self.spec.name)
        self.destroy()
        return False

    def destroy(self) -> None:
        if self.dom is None:
            return
        try:
            if self.dom.isActive():
                self.dom.destroy()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                log.error("cannot destroy %s: %s", self.spec.name, exc.get_error_message())

    def undefine(self) -> None:
        if self.dom is None:
            return
        try:
            self.dom.undefine()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                log.error("cannot undefine %s: %s", self.spec.name, exc.get_error_message())


def hold_lock(path: Path) -> int:
    """Take the liveness lock the domain monitor probes; held until this process ends."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # blocking: a probe holds it for an instant only
    return fd


class Timings:
    """Seconds from ``vruntask run`` start to each milestone (the boot benchmark reads them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0 = time.monotonic()
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        if name not in self.marks:
            self.marks[name] = round(time.monotonic() - self.t0, 3)
            self.path.write_text(json.dumps(self.marks), encoding="utf-8")


def run_vm(job_dir: Path, bog: dict[str, str], token: str, token_file: str) -> int:
    """``vruntask run`` for the vm platform; the exit status is also written for the scheduler."""
    job_dir = Path(job_dir)
    (job_dir / "out").mkdir(parents=True, exist_ok=True)
    timings = Timings(job_dir / "out" / TIMINGS_FILE)
    reporter = Reporter.for_job(bog, token)
    monitor = Monitor(job_dir / "out", reporter, poll=0.1)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=lambda: (monitor.fenced.wait(), stop.set()), daemon=True).start()
    lock_fd = hold_lock(job_dir / LOCK_FILE)
    monitor.start()
    status = EXIT_OK
    vm: VmDomain | None = None
    try:
        try:
            sandbox = prepare(job_dir, bog)
            timings.mark("prepared")
            monitor.report_state(int(ViewerState.LAUNCHING), "Starting VM")
            vm = VmDomain(bog.get("swampd_libvirt_uri", "qemu:///system"), domain_spec(sandbox, token_file))
            vm.start()
            timings.mark("started")
        except (PrepareError, VmError) as exc:
            log.error("%s", exc)
            monitor.report_state(int(ViewerState.ERROR), str(exc))
            status = EXIT_VIEWER_FAILED
        else:
            problem = _wait_up(vm, sandbox, monitor, stop, timings, bog)
            if problem:
                log.error("%s", problem)
                monitor.report_state(int(ViewerState.ERROR), problem)
                status = EXIT_VIEWER_FAILED
            else:
                _wait_down(vm, monitor, stop)
    finally:
        if vm is not None:
            if vm.active() is not False:
                grace = float(bog.get("swampd_shutdown_timeout", "300"))
                if status != EXIT_OK:  # a failed guest gets little time, one that never booted none
                    grace = min(grace, 10.0) if read_address(job_dir / "out" / "job_ip_address.txt") else 0.0
                monitor.report_state(int(ViewerState.STOPPING), "Viewer is starting shutdown")
                vm.shutdown(time.monotonic() + grace)
            vm.undefine()
            timings.mark("stopped")
        # Give the monitor a last look at the events file before the end is reported.
        time.sleep(monitor.poll * 3)
        if "VIEWERDOWN" not in monitor.seen and status == EXIT_OK:
            monitor.report_state(int(ViewerState.SHUTDOWN), "Viewer shutdown complete")
        give_up_at = time.monotonic() + DRAIN_SECONDS
        result = finish(job_dir, bog, token, lambda: time.monotonic() > give_up_at)
        timings.mark("finished")
        if result.problem:
            log.warning("finish: %s", result.problem)
        monitor.finish(DRAIN_SECONDS)
        if monitor.fenced.is_set():
            status = EXIT_FENCED
        write_exit_status(job_dir, status)
        os.close(lock_fd)
    return status


def _wait_up(vm: VmDomain, sandbox: Sandbox, monitor: Monitor, stop: threading.Event,
             timings: Timings, bog: dict[str, str]) -> str | None:
    """Wait for the address (boot deadline) and VIEWERUP (ready deadline); the reason if not."""
    start = time.monotonic()
    boot = float(bog.get("swampd_boot_timeout", "300"))
    ready = float(bog.get("swampd_ready_timeout", "600"))
    while not stop.is_set():
        monitor.ensure_running()
        if monitor.seen:
            timings.mark("first_event")
        address = read_address(sandbox.ip_file)
        if address:
            timings.mark("address")
        if "VIEWERUP" in monitor.seen:
            timings.mark("ready")
            return None
        if vm.active() is False:
            return "the VM stopped before the viewer was up"
        elapsed = time.monotonic() - start
        if not address and elapsed > boot:
            return f"the VM wrote no address within the boot deadline ({boot:g}s)"
        if elapsed > ready:
            return f"the viewer was not up within {ready:g}s"
        stop.wait(0.1)
    if "VIEWERUP" in monitor.seen:  # up just as the stop came
        timings.mark("ready")
    return None


def _wait_down(vm: VmDomain, monitor: Monitor, stop: threading.Event) -> None:
    """Until the guest powers off, or a stop (SIGTERM, fenced) is asked for."""
    while not stop.is_set():
        monitor.ensure_running()
        if vm.active() is False:
            log.info("the guest powered off")
            return
        stop.wait(0.5)
