"""Staging for the ``vm`` platform: the guest's view, its three disks, and its output disk read back.

The guest sees the sandbox as SWAMP's images expect (lifecycle §4.7-4.8):
``in/`` on the input disk mounted at ``/mnt/in``, an empty output disk at
``/mnt/out``, events and address through the serial ports ``/dev/ttyS1``
and ``/dev/ttyS2``, which libvirt appends to ``out/job_events.log`` and
``out/job_ip_address.txt`` on the host.  Prepare builds ``inputdisk.qcow2``
from ``in/``, an empty ``outputdisk.qcow2`` and ``delta.qcow2`` backed by
the platform image; a failure leaves no disk behind (SWAMP's rule: HTCondor's
vm universe must not boot a half-prepared VM).  No libvirt here: HTCondor's
vm universe runs the domain itself and calls ``vruntask prepare``/``finish``.
"""
from __future__ import annotations

import logging
import stat
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from swampd.vruntask import disks
from swampd.vruntask.job import Job
from swampd.vruntask.platforms.base import Staging
from swampd.vruntask.sandbox import CollectError, MachineOutput, MachineView, PrepareError, Sandbox

GUEST_VIEW = MachineView(in_dir="/mnt/in", out_dir="/mnt/out", events_file="/dev/ttyS1", ip_file="/dev/ttyS2",
                         shutdown_command="/sbin/shutdown -h now", shares_sandbox=False)
DISKS = (disks.INPUT_DISK, disks.OUTPUT_DISK, disks.DELTA_DISK)
#: Where files read off the output disk are put, inside ``out/``.
FROM_DISK_DIR = "outputdisk"
#: What one copy of the whole output disk into ``out/`` may take (SWAMP's output disk is 3 GiB).
TREE_MAX_BYTES = 8 << 30
TREE_MAX_FILES = 200_000

log = logging.getLogger(__name__)


class DiskOutput:
    """The guest's ``out/``: its output disk first, then the host side of ``out/`` (the serial port files).

    The disk is read only if a file is asked for, once, and released when
    the context ends.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.disk = sandbox.root / disks.OUTPUT_DISK
        self._open = ExitStack()
        self._reader: disks.Ext4Reader | None = None

    def fetch(self, name: str) -> Path | None:
        if self.disk.exists():
            dest_dir = self.sandbox.out_dir / FROM_DISK_DIR
            try:
                if self._reader is None:
                    self._reader = self._open.enter_context(disks.Ext4Reader(self.disk))
                dest_dir.mkdir(parents=True, exist_ok=True)
                if self._reader.copy_out(f"/{name}", dest_dir / name):
                    return dest_dir / name
            except disks.DiskError as exc:
                raise CollectError(f"cannot read the output disk: {exc}") from None
        host = self.sandbox.out_dir / name
        return host if host.is_file() else None

    def tree(self) -> Path:
        """The whole output disk copied into ``out/`` (SWAMP's guestfish copy-out), the host's files kept.

        Only directories and regular files are copied; links, devices and
        names debugfs cannot be handed safely are left out with a warning, as
        is what lies past ``TREE_MAX_FILES`` or ``TREE_MAX_BYTES``.  A file
        the host side of ``out/`` already has (the serial-port files, a copy
        made by an earlier collect) is not replaced.
        """
        out = self.sandbox.out_dir
        out.mkdir(parents=True, exist_ok=True)
        if not self.disk.exists():
            raise CollectError(f"the output disk {self.disk.name} is missing")
        files = total = 0
        try:
            if self._reader is None:
                self._reader = self._open.enter_context(disks.Ext4Reader(self.disk))
            for rel, mode, size in self._reader.walk():
                kind = stat.S_IFMT(mode)
                if not disks.safe_disk_path("/" + rel) or kind not in (stat.S_IFDIR, stat.S_IFREG):
                    log.warning("output disk: %r left out (not a plain file or directory name)", rel[:120])
                    continue
                dest = out / rel
                if kind == stat.S_IFDIR:
                    if not dest.is_symlink():
                        dest.mkdir(parents=True, exist_ok=True)
                    continue
                files, total = files + 1, total + size
                if files > TREE_MAX_FILES or total > TREE_MAX_BYTES:
                    log.warning("output disk: %s left out: past %d files or %d bytes", rel, TREE_MAX_FILES,
                                TREE_MAX_BYTES)
                    continue
                if dest.exists() or dest.is_symlink() or not _plain_dir(out, dest.parent):
                    continue
                self._reader.copy_out("/" + rel, dest)
        except disks.DiskError as exc:
            raise CollectError(f"cannot read the output disk: {exc}") from None
        return out

    def close(self) -> None:
        self._open.close()
        self._reader = None


def _plain_dir(top: Path, directory: Path) -> bool:
    """True when ``directory`` is a real directory under ``top`` reached without a link."""
    current = top
    for part in directory.relative_to(top).parts:
        current = current / part
        if current.is_symlink() or not current.is_dir():
            return False
    return True


class VmStaging(Staging):
    def __init__(self, job: Job, sandbox: Sandbox) -> None:
        super().__init__("vm", sandbox)
        self.job = job

    def view(self) -> MachineView:
        return GUEST_VIEW

    def prepare(self) -> None:
        image = self.job.vm.image
        if image is None:
            raise PrepareError("BOG has no platform_image for the vm platform")
        root = self.sandbox.root
        self.discard()  # a retried prepare starts clean
        try:
            disks.build_input_disk(self.sandbox.in_dir, root / disks.INPUT_DISK)
            disks.build_output_disk(root / disks.OUTPUT_DISK, self.job.vm.output_disk_mib << 20)
            disks.create_delta(image, root / disks.DELTA_DISK)
        except disks.DiskError as exc:
            self.discard()
            raise PrepareError(str(exc)) from None

    def discard(self) -> None:
        for name in DISKS:
            (self.sandbox.root / name).unlink(missing_ok=True)

    @contextmanager
    def collect(self) -> Iterator[MachineOutput]:
        output = DiskOutput(self.sandbox)
        try:
            yield output
        finally:
            output.close()
