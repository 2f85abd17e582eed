"""``vruntask finish``: save the viewer database the guest left, and tell the AgentMonitor.

SWAMP's PostViewer copied everything off the output disk with guestfish and
stored ``codedx_viewerdb.tar.gz`` whatever its state (lifecycle §4.14).  Here
the snapshot is taken from the output disk (a VM) or from ``out/`` (process
and docker viewers write it there), checked, stored under its timestamped
name with its SHA-512, and handed to ``agentMonitor.viewerSnapshot``.  An
empty or broken dump is reported and left where it is: the last good
snapshot stays the one the database points at.

Finish is safe to run twice (HTCondor may rerun a post-command): a snapshot
already stored is not stored again, only delivered if it was not yet.
"""
from __future__ import annotations

import json
import logging
import os
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from swampd.clients.rpc import connect
from swampd.identifiers import is_identifier
from swampd.vruntask import disks
from swampd.vruntask.reporter import FENCED_CODES
from swampd.vruntask.viewerdb import SNAPSHOT_NAME, SnapshotError, check_snapshot, store_snapshot

log = logging.getLogger(__name__)

#: Where finish remembers what it stored, so a rerun delivers instead of storing twice.
RECORD_FILE = "snapshot.json"
FROM_DISK_DIR = "outputdisk"


@dataclass
class FinishResult:
    path: str = ""
    checksum: str = ""
    delivered: bool = False
    problem: str = ""


def locate_snapshot(job_dir: Path) -> Path | None:
    """The snapshot the viewer left: on the output disk first, else in ``out/``."""
    out = Path(job_dir) / "out"
    disk = Path(job_dir) / disks.OUTPUT_DISK
    if disk.exists():
        dest_dir = out / FROM_DISK_DIR
        dest_dir.mkdir(parents=True, exist_ok=True)
        with disks.Ext4Reader(disk) as reader:
            if reader.copy_out(f"/{SNAPSHOT_NAME}", dest_dir / SNAPSHOT_NAME):
                return dest_dir / SNAPSHOT_NAME
    candidate = out / SNAPSHOT_NAME
    return candidate if candidate.exists() else None


def finish(job_dir: Path, bog: dict[str, str], token: str,
           give_up: Callable[[], bool] = lambda: False) -> FinishResult:
    """Store and hand over the viewer's database snapshot, if it left a good one."""
    job_dir = Path(job_dir)
    record_path = job_dir / "out" / RECORD_FILE
    result = _load_record(record_path)
    if not result.path:
        try:
            source = locate_snapshot(job_dir)
        except disks.DiskError as exc:
            return _problem(f"cannot read the output disk: {exc}")
        if source is None:
            log.info("the viewer left no database snapshot; the last saved one stays current")
            return FinishResult(problem="no snapshot")
        try:
            check_snapshot(source)
        except SnapshotError as exc:
            return _problem(f"viewer database snapshot not saved: {exc}")
        projectid, viewer_uuid = bog.get("projectid", ""), bog.get("viewer_uuid", "")
        store = bog.get("swampd_viewer_store", "")
        if not (is_identifier(projectid) and is_identifier(viewer_uuid)):
            return _problem("viewer database snapshot not saved: the BOG has no projectid/viewer_uuid")
        if not store.startswith("/"):
            return _problem("viewer database snapshot not saved: no viewer store configured")
        path, checksum = store_snapshot(source, Path(store), projectid, viewer_uuid)
        result = FinishResult(str(path), checksum)
        _save_record(record_path, result)
        log.info("viewer database saved as %s (sha512 %s...)", path, checksum[:16])
    if not result.delivered:
        result.delivered = deliver(bog, token, result, give_up)
        _save_record(record_path, result)
    return result


def deliver(bog: dict[str, str], token: str, result: FinishResult, give_up: Callable[[], bool]) -> bool:
    """``agentMonitor.viewerSnapshot``, retried with backoff until delivered, refused, or given up."""
    body = {
        "execrunid": bog["execrunid"], "epoch": int(bog["swampd_epoch"]), "token": token,
        "path": result.path, "checksum": result.checksum,
        "platform": bog.get("platform_image", ""), "version": bog.get("viewerversion", "unknown"),
    }
    delay = 0.2
    while True:
        try:
            connect(bog["swampd_agentmonitor_url"], cafile=bog.get("swampd_agentmonitor_ca") or None, timeout=10.0).agentMonitor.viewerSnapshot(body)
            return True
        except xmlrpc.client.Fault as fault:
            if fault.faultCode in FENCED_CODES:
                log.error("the AgentMonitor refused the snapshot (%s); it stays stored at %s",
                          fault.faultString, result.path)
                return False
            log.warning("snapshot report refused (%s); retrying", fault.faultString)
        except (OSError, xmlrpc.client.ProtocolError) as exc:
            log.warning("snapshot report not delivered (%s); retrying in %.1fs", exc, delay)
        if give_up():
            return False
        time.sleep(delay)
        delay = min(delay * 2, 10.0)


def _problem(reason: str) -> FinishResult:
    log.warning("%s", reason)
    return FinishResult(problem=reason)


def _load_record(path: Path) -> FinishResult:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return FinishResult(str(data["path"]), str(data["checksum"]), bool(data["delivered"]))
    except (OSError, ValueError, KeyError, TypeError):
        return FinishResult()


def _save_record(path: Path, result: FinishResult) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"path": result.path, "checksum": result.checksum,
                               "delivered": result.delivered}), encoding="utf-8")
    os.replace(tmp, path)
