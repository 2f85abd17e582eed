"""The ``vm`` platform: the machine as a libvirt domain (the only code here that talks to libvirt).

Staging (guest view, disks, output disk) is ``vm_staging``'s; this module
defines and starts the domain, waits for the guest's address within the
boot deadline and for the payload's up event within the ready deadline,
notices the guest powering off, and on stop asks the guest to shut down
(ACPI), destroys it after the grace period, and undefines it.

While the platform is entered this process holds an ``flock`` on
``<job_dir>/vm.lock``, whose path is in the domain's metadata: that is how
``swampd domainmonitor`` tells a VM with a live vruntask from an orphan,
without trusting a pid.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

import libvirt

from swampd.vruntask import disks
from swampd.vruntask.domain_xml import DomainSpec, DomainSpecError, build_domain_xml, domain_name, metadata_of
from swampd.vruntask.events import read_address
from swampd.vruntask.job import Job
from swampd.vruntask.monitor import Monitor
from swampd.vruntask.payloads.base import Payload
from swampd.vruntask.platforms.base import Platform, StartError
from swampd.vruntask.platforms.vm_staging import VmStaging
from swampd.vruntask.sandbox import Sandbox

log = logging.getLogger(__name__)

LOCK_FILE = "vm.lock"
CONSOLE_FILE = "console.log"
#: Seconds between looks at the guest while waiting for it to come up, and to go down.
UP_POLL, DOWN_POLL = 0.1, 0.5


class VmError(StartError):
    """libvirt refused or failed; the message is the reason the AgentMonitor gets."""


def domain_spec(job: Job, sandbox: Sandbox) -> DomainSpec:
    """The domain of this launch (pure: no libvirt)."""
    root, vm = sandbox.root, job.vm
    return DomainSpec(
        name=domain_name(job.execrunid, job.epoch),
        memory_mib=vm.memory_mib,
        vcpus=vm.cpus,
        delta=str(root / disks.DELTA_DISK),
        input_disk=str(root / disks.INPUT_DISK),
        output_disk=str(root / disks.OUTPUT_DISK),
        console_file=str(sandbox.out_dir / CONSOLE_FILE),
        events_file=str(sandbox.events_file),
        ip_file=str(sandbox.ip_file),
        domain_type=vm.domain_type,
        network=vm.network,
        kernel=vm.kernel,
        initrd=vm.initrd,
        cmdline=vm.cmdline,
        metadata={
            "execrunid": job.execrunid, "epoch": str(job.epoch), "launch_id": job.launch_id,
            "projectid": job.projectid,
            "viewer": job.viewer_settings.name if job.viewer_settings is not None else "",
            "job_dir": str(root), "lock_file": str(root / LOCK_FILE), "token_file": job.token_file,
            "agentmonitor_url": job.target.url, "started": f"{time.time():.0f}",
        },
    )


#: Seconds between presses of a running machine's ACPI power button while it is asked to stop.
ACPI_REPEAT = 15.0


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
        try:
            xml = build_domain_xml(self.spec)
        except DomainSpecError as exc:
            raise VmError(f"the VM cannot be defined: {exc}") from None
        conn = self.conn()
        self._remove_leftover(conn)
        try:
            self.dom = conn.defineXML(xml)
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
        """ACPI power-off, waiting until ``deadline`` (monotonic); then destroy. True if it was graceful.

        The power button is pressed again every ``ACPI_REPEAT`` seconds while the machine runs: a
        guest stopped right after it came up may not listen for the button yet (seen in a test
        guest whose acpid started a moment after it said it was up: the one press was lost, the
        machine was destroyed at the deadline, and its database was never saved).
        """
        if self.active() is False:
            return True
        pressed = float("-inf")
        while time.monotonic() < deadline:
            if time.monotonic() - pressed >= ACPI_REPEAT:
                try:
                    self.dom.shutdown()
                except libvirt.libvirtError as exc:
                    log.warning("ACPI shutdown of %s failed: %s", self.spec.name, exc.get_error_message())
                pressed = time.monotonic()
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
    """Take the liveness lock the domain monitor probes; held until released or this process ends."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # blocking: a probe holds it for an instant only
    return fd


class VmPlatform(VmStaging, Platform):
    monitor_poll = 0.1

    def __init__(self, job: Job, sandbox: Sandbox, payload: Payload,
                 opener: Callable[[str], Any] = libvirt.open) -> None:
        super().__init__(job, sandbox)
        self.payload = payload
        self.shutdown_grace = job.vm.shutdown_timeout
        self.opener = opener
        self.domain: VmDomain | None = None
        self._lock_fd: int | None = None

    def __enter__(self) -> VmPlatform:
        # Held before anything is built, so the domain monitor leaves a leftover of this launch to us.
        self.sandbox.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = hold_lock(self.sandbox.root / LOCK_FILE)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def start(self) -> None:
        self.domain = VmDomain(self.job.vm.libvirt_uri, domain_spec(self.job, self.sandbox), self.opener)
        self.domain.start()

    def wait_up(self, stop: threading.Event, monitor: Monitor) -> str | None:
        """The address within the boot deadline, then the payload's up event within the ready deadline."""
        assert self.domain is not None
        start = time.monotonic()
        boot, ready = self.job.vm.boot_timeout, self.job.ready_timeout
        while not stop.is_set():
            if self.payload.up_event in monitor.seen:
                return None
            if self.domain.active() is False:
                return "the VM stopped before the viewer was up"
            elapsed = time.monotonic() - start
            if elapsed > boot and not read_address(self.sandbox.ip_file):
                return f"the VM wrote no address within the boot deadline ({boot:g}s)"
            if elapsed > ready:
                return f"the viewer was not up within {ready:g}s"
            stop.wait(UP_POLL)
        return None

    def wait_exit(self, stop: threading.Event) -> int | None:
        assert self.domain is not None
        while not stop.is_set():
            if self.domain.active() is False:
                log.info("the guest powered off")
                return 0
            stop.wait(DOWN_POLL)
        return None

    def running(self) -> bool | None:
        return self.domain.active() if self.domain is not None else False

    def stop(self, grace: float) -> None:
        if self.domain is None:
            return
        if self.domain.active() is not False:
            self.domain.shutdown(time.monotonic() + grace)
        self.domain.undefine()
