"""The viewer service: launch, look up, list, stop, and take reports.

Each use case is one transaction on the registry followed by a nudge to the
reconciler.  Launching is the compare-and-set of invariant 1: inside one
write transaction the current state is read and, only if a new launch is
allowed from it, the key is claimed with epoch + 1, a fresh launch id and
token, and a ``submit`` outbox row (intent before action).
"""
from __future__ import annotations

import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from swampd.config import Config, fill_placeholders
from swampd.errors import Fault, SwampdError
from swampd.failpoints import failpoint
from swampd.identifiers import execrunid as make_execrunid
from swampd.states import (
    ENDED,
    EVENTS,
    MAY_LAUNCH_FROM,
    ViewerState,
    apply_report,
    state_name,
)
from swampd.store import Store, Transaction, ViewerRecord
from swampd.agentmonitor.reconciler import Reconciler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchRequest:
    projectid: str
    viewer: str
    userid: str = ""
    viewer_uuid: str = ""
    db_path: str = ""
    db_checksum: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    execrunid: str
    epoch: int
    token: str
    path: str
    checksum: str
    platform: str = ""
    version: str = ""


@dataclass(frozen=True)
class Report:
    execrunid: str
    epoch: int
    token: str
    event: str = ""
    state: int | None = None
    status: str = ""
    vmip: str = ""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds") if ts else ""


class ViewerService:
    def __init__(self, store: Store, reconciler: Reconciler, config: Config) -> None:
        self.store = store
        self.reconciler = reconciler
        self.config = config
        #: Outbox kinds enqueued when a snapshot is recorded (store_viewer, when configured).
        self.snapshot_effects: tuple[str, ...] = ()
        #: Outbox kinds enqueued when a launch call brings results (upload, when configured).
        self.result_effects: tuple[str, ...] = ()
        #: Outbox kinds enqueued before the submit of a launch that restores a viewer
        #: database (checksum verification), with {"path", "checksum"}.
        self.restore_effects: tuple[str, ...] = ()

    # -- launch ------------------------------------------------------------
    def launch(self, req: LaunchRequest) -> dict[str, Any]:
        now = time.time()
        with self.store.transaction() as tx:
            record = tx.get_viewer(req.projectid, req.viewer)
            if record is None:
                record = ViewerRecord(req.projectid, req.viewer, make_execrunid(req.projectid, req.viewer))
            launched = record.viewer_state in MAY_LAUNCH_FROM
            if launched:
                previous_launch = record.launch_id
                self._claim(record, req, now)
                snapshot = tx.latest_snapshot(record.projectid, record.viewer)
                if snapshot is not None:  # ours is never older than what the database passed
                    record.db_path, record.db_checksum = snapshot["path"], snapshot["checksum"]
                tx.record_change(record, "api", f"launch {record.launch_id}")
                if record.db_path:
                    for kind in self.restore_effects:
                        tx.enqueue(record, kind, {"path": record.db_path, "checksum": record.db_checksum})
                tx.enqueue(record, "submit")
                if previous_launch:
                    tx.enqueue(record, "forget", {"launch_id": previous_launch})
            else:
                record.last_request_at = now
                tx.put_viewer(record)
            if req.results:
                tx.add_results(record, req.results)
                for kind in self.result_effects:
                    tx.enqueue(record, kind)
        failpoint("launch.after_commit")
        if launched:
            log.info("%s: launch %d claimed (%s)", record.execrunid, record.epoch, record.launch_id)
        self.reconciler.enqueue(record.key)
        return self.to_struct(record, launched=launched)

    @staticmethod
    def _claim(record: ViewerRecord, req: LaunchRequest, now: float) -> None:
        record.epoch += 1
        record.launch_id = uuid.uuid4().hex
        record.token = secrets.token_urlsafe(32)
        record.apikey = str(uuid.uuid4())
        record.url_uuid = f"proxy-{uuid.uuid4()}"
        record.state = int(ViewerState.LAUNCHING)
        record.status = "Launching viewer"
        record.desired = "running"
        record.userid = req.userid
        record.viewer_uuid = req.viewer_uuid
        record.db_path = req.db_path
        record.db_checksum = req.db_checksum
        record.vmip = ""
        record.url = ""
        record.job_ref = ""
        record.submitted_at = 0.0
        record.observation = ""
        record.launched_at = now
        record.ready_at = 0.0
        record.last_request_at = now
        record.stop_requested_at = 0.0

    # -- queries -----------------------------------------------------------
    def get(self, projectid: str, viewer: str) -> dict[str, Any]:
        record = self.store.get_viewer(projectid, viewer)
        if record is None:
            return self.to_struct(ViewerRecord(projectid, viewer, make_execrunid(projectid, viewer)))
        return self.to_struct(record)

    def list(self) -> list[dict[str, Any]]:
        return [self.to_struct(r) for r in self.store.list_viewers()]

    # -- stop --------------------------------------------------------------
    def stop(self, projectid: str, viewer: str, reason: str = "stopped by request") -> dict[str, Any]:
        now = time.time()
        with self.store.transaction() as tx:
            record = tx.get_viewer(projectid, viewer)
            if record is None:
                return self.to_struct(ViewerRecord(projectid, viewer, make_execrunid(projectid, viewer)))
            record.desired = "stopped"
            if record.viewer_state in (ViewerState.LAUNCHING, ViewerState.READY, ViewerState.STOPPING):
                record.state = int(ViewerState.TERMINATING)
                record.status = "Terminating"
                record.stop_requested_at = now
                tx.record_change(record, "api", reason)
                if record.job_ref or tx.has_pending(record, "submit"):
                    tx.enqueue(record, "remove", {"launch_id": record.launch_id, "reason": reason})
                log.info("%s: stop requested (%s)", record.execrunid, reason)
            else:
                tx.put_viewer(record)
        self.reconciler.enqueue(record.key)
        return self.to_struct(record)

    # -- reports from the execute node ---------------------------------------
    def report(self, rep: Report) -> bool:
        with self.store.transaction() as tx:
            record = self._authenticated(tx, rep.execrunid, rep.epoch, rep.token)
            if rep.event:
                if rep.event not in EVENTS:
                    return False  # SWAMP ignores lines it does not know (who output, service noise)
                reported, text = EVENTS[rep.event]
                source = f"event {rep.event}"
            else:
                assert rep.state is not None
                reported, text = ViewerState(rep.state), rep.status or state_name(rep.state)
                source = f"state {reported.name}"
            if rep.vmip and record.viewer_state not in ENDED:
                record.vmip = rep.vmip
            transition = apply_report(record.viewer_state, reported, text)
            if not transition.changed:
                if rep.vmip:
                    tx.put_viewer(record)
                return False
            record.state = int(transition.state)
            record.status = transition.status
            if transition.state is ViewerState.READY and not record.vmip:
                # SWAMP called such a viewer up with vmip null: a READY nobody can reach.
                record.state = int(ViewerState.ERROR)
                record.status = "Viewer reported up but never wrote its address"
                tx.enqueue(record, "remove", {"launch_id": record.launch_id, "reason": record.status})
            elif transition.state is ViewerState.READY:
                record.ready_at = time.time()
                record.url = self._url(record)
            tx.record_change(record, "node", source)
        self.reconciler.enqueue(record.key)
        return True

    def snapshot(self, snap: Snapshot) -> bool:
        """Record a viewer database saved by ``vruntask finish`` for this launch."""
        with self.store.transaction() as tx:
            record = self._authenticated(tx, snap.execrunid, snap.epoch, snap.token)
            tx.add_snapshot(record, snap.path, snap.checksum, snap.platform, snap.version)
            tx.append_history(record, "node", f"viewer database saved: {snap.path}")
            for kind in self.snapshot_effects:
                tx.enqueue(record, kind, {"path": snap.path, "checksum": snap.checksum,
                                          "platform": snap.platform, "version": snap.version})
        log.info("%s: viewer database snapshot %s recorded", snap.execrunid, snap.path)
        self.reconciler.enqueue(record.key)
        return True

    @staticmethod
    def _authenticated(tx: Transaction, execrunid: str, epoch: int, token: str) -> ViewerRecord:
        """The record a node's message is about, once its epoch and token check out."""
        record = tx.get_viewer_by_execrunid(execrunid)
        if record is None:
            raise SwampdError(Fault.UNKNOWN, f"no viewer with execrunid {execrunid}")
        if epoch != record.epoch:
            raise SwampdError(
                Fault.STALE, f"report for launch {epoch} of {execrunid}; current launch is {record.epoch}"
            )
        if not token or not hmac.compare_digest(token.encode(), record.token.encode()):
            raise SwampdError(Fault.NOT_AUTHORIZED, f"wrong report token for {execrunid}")
        return record

    def _url(self, record: ViewerRecord) -> str:
        template = self.config.viewers[record.viewer].url_template if record.viewer in self.config.viewers else ""
        return fill_placeholders(template, {
            "vmip": record.vmip, "url_uuid": record.url_uuid,
            "project": record.projectid, "viewer": record.viewer,
        })

    # -- rendering -----------------------------------------------------------
    def to_struct(self, record: ViewerRecord, launched: bool = False) -> dict[str, Any]:
        """The contract's viewer struct; never the API key or the report token."""
        struct: dict[str, Any] = {
            "execrunid": record.execrunid,
            "projectid": record.projectid,
            "viewer": record.viewer,
            "state": record.state,
            "state_name": state_name(record.state),
            "status": record.status,
            "epoch": record.epoch,
            "launched": launched,
            "url": record.url if record.viewer_state is ViewerState.READY else "",
            "vmip": record.vmip,
            "url_uuid": record.url_uuid,
            "updated": iso(record.updated_at),
            "userid": record.userid,
            "viewer_uuid": record.viewer_uuid,
            "launched_at": iso(record.launched_at),
        }
        if record.epoch:
            seen = self.reconciler.observation_of(record)
            struct["job"] = seen["job"]
            struct["stale"] = bool(seen["stale"])
            struct["last_seen"] = iso(float(seen["last_seen"]))  # type: ignore[arg-type]
        return struct

    def history(self, projectid: str, viewer: str) -> list[dict[str, Any]]:
        return [
            {"at": iso(h.at), "epoch": h.epoch, "state": h.state, "state_name": state_name(h.state),
             "status": h.status, "source": h.source}
            for h in self.store.history(projectid, viewer)
        ]

