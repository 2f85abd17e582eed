"""A viewer's output: its database snapshot, saved and handed to the AgentMonitor.

SWAMP's PostViewer copied everything off the output disk and stored
``codedx_viewerdb.tar.gz`` whatever its state (lifecycle §4.14).  Here the
snapshot the machine left (read back by its platform: from the output disk
of a VM, from ``out/`` of a process or container) is checked, stored under
its timestamped name with its SHA-512, and handed to
``agentMonitor.viewerSnapshot``.  An empty or broken dump is reported and
left where it is: the last good snapshot stays the one the database points
at.

Safe to run twice (HTCondor may rerun a post-command): a snapshot already
stored is not stored again, only delivered if it was not yet.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from swampd.vruntask.delivery import Fenced
from swampd.vruntask.job import Job
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.sandbox import CollectError, MachineOutput, Sandbox
from swampd.vruntask.viewerdb import SNAPSHOT_NAME, SnapshotError, check_snapshot, store_snapshot

log = logging.getLogger(__name__)

#: Where collect remembers what it stored, so a rerun delivers instead of storing twice.
RECORD_FILE = "snapshot.json"
NO_SNAPSHOT = "no snapshot"


@dataclass
class SnapshotResult:
    path: str = ""
    checksum: str = ""
    delivered: bool = False
    problem: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.path and self.delivered) or self.problem == NO_SNAPSHOT

    @property
    def summary(self) -> str:
        return f"saved {self.path} sha512={self.checksum}" if self.path and self.delivered else ""


def collect_snapshot(job: Job, sandbox: Sandbox, output: MachineOutput, reporter: Reporter,
                     give_up: Callable[[], bool]) -> SnapshotResult:
    """Store and hand over the viewer's database snapshot, if it left a good one."""
    record_path = sandbox.out_dir / RECORD_FILE
    result = _load_record(record_path)
    if not result.path:
        try:
            source = output.fetch(SNAPSHOT_NAME)
        except CollectError as exc:
            return _problem(str(exc))
        if source is None:
            log.info("the viewer left no database snapshot; the last saved one stays current")
            return SnapshotResult(problem=NO_SNAPSHOT)
        try:
            check_snapshot(source)
        except SnapshotError as exc:
            return _problem(f"viewer database snapshot not saved: {exc}")
        store = job.viewer.store
        if not job.viewer.viewer_uuid:
            return _problem("viewer database snapshot not saved: the BOG has no projectid/viewer_uuid")
        if store is None or not store.is_absolute():
            return _problem("viewer database snapshot not saved: no viewer store configured")
        try:
            path, checksum = store_snapshot(source, store, job.projectid, job.viewer.viewer_uuid)
        except OSError as exc:
            return _problem(f"viewer database snapshot not saved: {exc}")
        result = SnapshotResult(str(path), checksum)
        _save_record(record_path, result)
        log.info("viewer database saved as %s (sha512 %s...)", path, checksum[:16])
    if not result.delivered:
        result.delivered = _deliver(job, reporter, result, give_up)
        _save_record(record_path, result)
    return result


def _deliver(job: Job, reporter: Reporter, result: SnapshotResult, give_up: Callable[[], bool]) -> bool:
    """``agentMonitor.viewerSnapshot``, until delivered, refused, or given up."""
    fields = {"path": result.path, "checksum": result.checksum,
              "platform": str(job.vm.image or ""), "version": job.viewer.version}
    try:
        return reporter.call("viewerSnapshot", fields, "snapshot report", give_up)
    except Fenced as exc:
        log.error("the AgentMonitor refused the snapshot (%s); it stays stored at %s", exc, result.path)
        return False


def _problem(reason: str) -> SnapshotResult:
    log.warning("%s", reason)
    return SnapshotResult(problem=reason)


def _load_record(path: Path) -> SnapshotResult:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SnapshotResult(str(data["path"]), str(data["checksum"]), bool(data["delivered"]))
    except (OSError, ValueError, KeyError, TypeError):
        return SnapshotResult()


def _save_record(path: Path, result: SnapshotResult) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"path": result.path, "checksum": result.checksum,
                               "delivered": result.delivered}), encoding="utf-8")
    os.replace(tmp, path)
