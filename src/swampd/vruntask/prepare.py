"""``vruntask prepare``: from the BOG, everything a viewer machine needs before it starts.

The sandbox (``in/``, ``out/``, the empty events and IP files), the viewer's
props file with this launch's API key, the saved viewer database (checked
against its checksum), and for a VM ``in/run-params.sh`` with the guest-side
paths of lifecycle §4.7 and the three disks.  Anything missing or corrupt
stops the launch with a reason: a viewer never starts on an empty database
because its saved one could not be read.
"""
from __future__ import annotations

import logging
from pathlib import Path

from swampd.identifiers import is_identifier
from swampd.bog import format_bog, write_private
from swampd.vruntask import disks
from swampd.vruntask.sandbox import Sandbox, render_run_params
from swampd.vruntask.viewerdb import SnapshotError, restore_snapshot

log = logging.getLogger(__name__)

PROPS_FILE = "codedx.props"
PROPS_KEY = "swa.admin.system-key"


class PrepareError(Exception):
    """The launch cannot be prepared; the message is the reason the AgentMonitor gets."""


def vm_run_params(bog: dict[str, str]) -> dict[str, str]:
    """SWAMP's run-params.sh for a VM guest: guest-side paths, the serial ports as files."""
    return {
        "PROJECT": bog.get("urluuid", ""),
        "APIKEY": bog.get("apikey", ""),
        "JOB_INPUT_DIR": "/mnt/in",
        "JOB_OUTPUT_DIR": "/mnt/out",
        "SWAMP_EVENT_FILE": "/dev/ttyS1",
        "IP_ADDR_FILE": "/dev/ttyS2",
        "SWAMP_LOG_FILE": "/mnt/out/run.out",
        "TOMCAT_LOG_DIR": "/opt/tomcat/logs",
        "SKIPPED_BUNDLE": "/mnt/out/skippedbundle",
        "VIEWER": bog.get("viewer", ""),
        "VIEWER_STARTEPOCH_FILE": "/mnt/out/run.epoch",
        "CHECKTIMEOUT_FREQUENCY": bog.get("vruntimeout_frequency") or "10",
        "CHECKTIMEOUT_DURATION": bog.get("vruntimeout_duration") or "28800",
        "CHECKTIMEOUT_LASTLOG": bog.get("vruntimeout_lastlog") or "3600",
        "MACHINE_SHUTDOWN_COMMAND": "/sbin/shutdown -h now",
    }


def write_props(in_dir: Path, bog: dict[str, str]) -> None:
    """The viewer's props file: the configured base plus this launch's API key, 0600."""
    base = ""
    template = bog.get("swampd_props_file", "")
    if template:
        try:
            base = Path(template).read_text(encoding="utf-8")
        except OSError as exc:
            raise PrepareError(f"cannot read the viewer props file {template}: {exc.strerror}") from None
        if base and not base.endswith("\n"):
            base += "\n"
    write_private(in_dir / PROPS_FILE, f"{base}{PROPS_KEY}={bog.get('apikey', '')}\n")


def restore_viewer_db(in_dir: Path, bog: dict[str, str]) -> None:
    db_path = bog.get("db_path", "")
    if not db_path:
        return
    try:
        names = restore_snapshot(Path(db_path), bog.get("db_checksum", ""), in_dir)
    except SnapshotError as exc:
        raise PrepareError(f"saved viewer database unusable: {exc}") from None
    log.info("restored viewer database %s (%s)", db_path, ", ".join(names))


def prepare(job_dir: Path, bog: dict[str, str]) -> Sandbox:
    """Lay out the job's sandbox for its platform; PrepareError with the reason if it cannot."""
    sandbox = Sandbox(Path(job_dir), bog)
    try:
        sandbox.prepare()
        for key in ("projectid", "viewer_uuid", "userid"):
            if bog.get(key) and not is_identifier(bog[key]):
                raise PrepareError(f"BOG {key} is not an identifier")
        write_props(sandbox.in_dir, bog)
        restore_viewer_db(sandbox.in_dir, bog)
        if bog.get("swampd_platform") == "vm":
            _prepare_vm(sandbox, bog)
    except OSError as exc:
        raise PrepareError(f"cannot lay out the sandbox: {exc}") from None
    except disks.DiskError as exc:
        raise PrepareError(str(exc)) from None
    return sandbox


def _prepare_vm(sandbox: Sandbox, bog: dict[str, str]) -> None:
    image = bog.get("platform_image", "")
    if not image:
        raise PrepareError("BOG has no platform_image for the vm platform")
    write_private(sandbox.in_dir / "run-params.sh", render_run_params(vm_run_params(bog)))
    # preserveBogFile: the guest gets the BOG, without swampd's own keys.
    guest_bog = {k: v for k, v in bog.items() if not k.startswith("swampd_")}
    guest_bog["viewerplatform"] = image
    write_private(sandbox.in_dir / f"{bog.get('execrunid', 'viewer')}.bog", format_bog(guest_bog))
    root = sandbox.root
    for name in (disks.INPUT_DISK, disks.OUTPUT_DISK, disks.DELTA_DISK):
        (root / name).unlink(missing_ok=True)  # a retried prepare starts clean
    try:
        disks.build_input_disk(sandbox.in_dir, root / disks.INPUT_DISK)
        disks.build_output_disk(root / disks.OUTPUT_DISK, int(bog.get("swampd_output_disk_mib", "3072")) << 20)
        disks.create_delta(Path(image), root / disks.DELTA_DISK)
    except disks.DiskError:
        for name in (disks.INPUT_DISK, disks.OUTPUT_DISK, disks.DELTA_DISK):
            (root / name).unlink(missing_ok=True)  # SWAMP's rule: no half-built disks to start from
        raise


def remove_disks(job_dir: Path) -> None:
    for name in (disks.INPUT_DISK, disks.OUTPUT_DISK, disks.DELTA_DISK):
        (Path(job_dir) / name).unlink(missing_ok=True)

