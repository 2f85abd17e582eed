"""The viewer service: launch, look up, list, stop, and take reports.

Each use case is one transaction on the registry followed by a nudge to the
reconciler.  Launching is the compare-and-set of invariant 1: inside one
write transaction the current state is read and, only if a new launch is
allowed from it, the key is claimed with epoch + 1, a fresh launch id and
token, and the job lane of the outbox is written in order (intent before
action): the removal of the previous launch's job if it may still run, the
restore of the saved database (which waits until that job has left, so
that the database it saves is the one restored), then the submit.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from swampd.config import Config, fill_placeholders
from swampd.runlog import run_fields
from swampd.errors import Fault, SwampdError
from swampd.failpoints import failpoint
from swampd.states import (
    ENDED,
    EVENTS,
    MAY_LAUNCH_FROM,
    ViewerState,
    apply_report,
    state_name,
)
from swampd.store import RunRecord, Store, Transaction, ViewerRecord
from swampd.agentmonitor.changes import ChangeFeed, Deferred
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


#: What one report changed: (the state before, the new state, the source, the status).
_Change = tuple[int, ViewerState, str, str]

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
        #: Effects enqueued when a snapshot is recorded (store_viewer, when configured).
        self.snapshot_effects: tuple[str, ...] = ()
        #: Effects enqueued when a launch call brings results (upload, when configured).
        self.result_effects: tuple[str, ...] = ()
        #: Wakes ``wait`` when a run's state changes (set by the daemon's wiring).
        self.changes: ChangeFeed | None = None

    # -- launch ------------------------------------------------------------
    def launch(self, req: LaunchRequest) -> dict[str, Any]:
        now = time.time()
        with self.store.transaction() as tx:
            record = tx.get_viewer(req.projectid, req.viewer) or ViewerRecord(
                projectid=req.projectid, viewer=req.viewer)
            launched = record.viewer_state in MAY_LAUNCH_FROM
            if launched:
                previous = (record.launch_id, record.job_ref) if record.epoch else None
                previous_pending = record.epoch and tx.has_pending(record, "submit")
                self._claim(record, req, now)
                tx.transition(record, int(ViewerState.LAUNCHING), "Launching viewer", "api",
                              f"launch {record.launch_id}")
                tx.record_launch(record)
                if previous and (previous[1] or previous_pending):
                    tx.enqueue(record, "remove", {"launch_id": previous[0], "reason": "swampd: relaunched"})
                if previous or record.db_path:
                    tx.enqueue(record, "restore", {"path": record.db_path, "checksum": record.db_checksum})
                tx.enqueue(record, "submit")
                if previous:
                    tx.enqueue(record, "forget", {"launch_id": previous[0]})
            else:
                record.last_request_at = now
                tx.put_run(record)
            if req.results and tx.add_results(record, req.results):
                for kind in self.result_effects:
                    tx.enqueue(record, kind)
        failpoint("launch.after_commit")
        if launched:
            log.info("%s: launch %d claimed (%s)", record.execrunid, record.epoch, record.launch_id,
                     extra=run_fields(record))
        self.reconciler.enqueue(record.id)
        return self.to_struct(record, launched=launched)

    @staticmethod
    def _claim(record: ViewerRecord, req: LaunchRequest, now: float) -> None:
        record.epoch += 1
        record.launch_id = uuid.uuid4().hex
        record.token = secrets.token_urlsafe(32)
        record.apikey = str(uuid.uuid4())
        record.url_uuid = f"proxy-{uuid.uuid4()}"
        record.desired = "running"
        record.userid = req.userid
        record.viewer_uuid = req.viewer_uuid
        record.db_path = req.db_path
        record.db_checksum = req.db_checksum
        record.vmip = ""
        record.url = ""
        record.job_ref = ""
        record.submitted_at = 0.0
        record.attempts = 0
        record.observation = ""
        record.launched_at = now
        record.ready_at = 0.0
        record.last_request_at = now
        record.stop_requested_at = 0.0

    # -- queries -----------------------------------------------------------
    def get(self, projectid: str, viewer: str) -> dict[str, Any]:
        record = self.store.get_viewer(projectid, viewer)
        return self.to_struct(record or ViewerRecord(projectid=projectid, viewer=viewer))

    def wait(self, projectid: str, viewer: str, target: ViewerState, timeout: float) -> Deferred[dict[str, Any]]:
        """The viewer once it is in ``target``, or once its launch has ended elsewhere (it cannot
        get there any more without a new launch), or after ``timeout`` seconds, whichever is first.

        The answer is deferred on the change feed: it leaves the moment the
        state is committed, and no thread waits for it meanwhile.
        """
        def settled(record: ViewerRecord | None) -> ViewerRecord | None:
            if record is None:
                return None
            state = record.viewer_state
            return record if state is target or (state in ENDED and record.epoch) else None

        def check() -> ViewerRecord | None:
            return settled(self.store.get_viewer(projectid, viewer))

        def answer(found: ViewerRecord | None) -> dict[str, Any]:
            return self.to_struct(found or self.store.get_viewer(projectid, viewer)
                                  or ViewerRecord(projectid=projectid, viewer=viewer))

        seen = self.changes.version if self.changes is not None else 0  # before the read
        record = self.store.get_viewer(projectid, viewer)
        if self.changes is None or settled(record) is not None:  # there already: one read, no watch
            return Deferred.of(answer(settled(record)))
        return self.changes.watch(record.id if record is not None else None, check, timeout,
                                  checked=(seen, None)).map(answer)

    def list(self) -> list[dict[str, Any]]:
        return [self.to_struct(r) for r in self.store.list_viewers()]

    # -- stop --------------------------------------------------------------
    def stop(self, projectid: str, viewer: str, reason: str = "stopped by request", hard: bool = False) -> dict[str, Any]:
        now = time.time()
        with self.store.transaction() as tx:
            record = tx.get_viewer(projectid, viewer)
            if record is None:
                return self.to_struct(ViewerRecord(projectid=projectid, viewer=viewer))
            record.desired = "stopped"
            if record.viewer_state in (ViewerState.LAUNCHING, ViewerState.READY, ViewerState.STOPPING):
                record.stop_requested_at = now
                tx.transition(record, int(ViewerState.TERMINATING), "Terminating", "api", reason)
                # Whether or not a job was recorded: one may run that a crash kept from the record.
                tx.enqueue(record, "remove", {"launch_id": record.launch_id, "reason": reason, "force": hard})
                log.info("%s: stop requested (%s%s)", record.execrunid, reason, ", hard" if hard else "",
                         extra=run_fields(record))
            else:
                tx.put_run(record)
        self.reconciler.enqueue(record.id)
        return self.to_struct(record)

    # -- reports from the execute node ---------------------------------------
    def report(self, rep: Report) -> bool:
        return self.report_all([rep])

    def report_all(self, reports: Sequence[Report]) -> bool:
        """Reports of one instant, in order, in one transaction (a hosted command's start makes three):
        one authentication per launch and one reconciler turn, each report still its own transition
        with its history row.  True when any changed the viewer; a refused one (SwampdError: stale,
        wrong token) undoes them all."""
        # Not waited onto the disk: a report lost to a power loss ends as the job's own end would.
        with self.store.transaction(durable=False) as tx:
            applied = []
            for group in _by_launch(reports):
                record = self._authenticated(tx, group[0].execrunid, group[0].epoch, group[0].token)
                applied.append((record, self._apply_group(tx, record, group)))
        self._announce(applied, tx.enqueued)
        return any(changes for _, changes in applied)

    def report_batch(self, groups: Sequence[Sequence[Report]]) -> list[bool | SwampdError]:
        """Several launches' reports (each group one launch's, in order) in one transaction, as the
        host agent sends them: per group, True when it changed its viewer, False when it was no
        news, or the SwampdError that refused it (checked before it writes anything: it changes nothing,
        the others stand)."""
        outcomes: list[bool | SwampdError] = []
        applied: list[tuple[ViewerRecord, list[_Change]]] = []
        with self.store.transaction(durable=False) as tx:
            for group in groups:
                try:  # a refusal comes before its launch wrote anything: the others' writes stand alone
                    record = self._authenticated(tx, group[0].execrunid, group[0].epoch, group[0].token)
                except SwampdError as exc:
                    outcomes.append(exc)
                    continue
                changes = self._apply_group(tx, record, group)
                outcomes.append(bool(changes))
                applied.append((record, changes))
        self._announce(applied, tx.enqueued)
        return outcomes

    def _apply_group(self, tx: Transaction, record: ViewerRecord, group: Sequence[Report]) -> list[_Change]:
        """One authenticated launch's reports: each its transition and history row, the run's rows
        written once."""
        changes = []
        with tx.saving_once(record):
            for rep in group:
                change = self._apply_report(tx, record, rep)
                if change is not None:
                    changes.append(change)
        return changes

    def _announce(self, applied: list[tuple[ViewerRecord, list[_Change]]], enqueued: set[int]) -> None:
        """After the commit: the log, and a reconciler turn for every viewer whose state changed or that
        was given side effects.  A new status within the same state (the steps of a start) changes
        nothing the lifecycle looks at, and its deadlines are already set: no turn for it."""
        for record, changes in applied:
            new_state = False
            for previous, state, source, status in changes:
                new_state = new_state or int(state) != previous
                # A new state is news for the log; a new status within one (each step of a start) is in the history.
                log.log(logging.INFO if int(state) != previous else logging.DEBUG, "%s epoch %d -> %s (%s): %s",
                        record.execrunid, record.epoch, state_name(int(state)), source, status,
                        extra=run_fields(record))
            if new_state or record.id in enqueued:
                self.reconciler.enqueue(record.id)

    def _apply_report(self, tx: Transaction, record: ViewerRecord, rep: Report) -> _Change | None:
        """Apply one report to ``record``; (the state before, the new state, the source, the status) when
        it changed anything, None when it was no news."""
        if rep.event:
            if rep.event not in EVENTS:
                return None  # SWAMP ignores lines it does not know (who output, service noise)
            if tx.reported_before(record, rep.event):
                # Sent again (after a restart): it must not put an older status back.  A new address
                # is still news (a local command started again on another port).
                if rep.vmip and rep.vmip != record.vmip and record.viewer_state is ViewerState.LAUNCHING:
                    record.vmip = rep.vmip
                    tx.put_run(record)
                return None
            reported, text = EVENTS[rep.event]
            source = f"event {rep.event}"
        else:
            assert rep.state is not None
            reported, text = ViewerState(rep.state), rep.status or state_name(rep.state)
            source = f"state {reported.name}"
        if rep.vmip and record.viewer_state not in ENDED:
            record.vmip = rep.vmip
        transition = apply_report(record.viewer_state, reported, text)
        if not transition.changed or (transition.state is record.viewer_state
                                      and transition.status == record.status):
            # Nothing new (a report sent again after a restart): no history, no new ready_at.
            if rep.vmip:
                tx.put_run(record)
            return None
        state, status, previous = transition.state, transition.status, record.state
        if state is ViewerState.READY and not record.vmip:
            # SWAMP called such a viewer up with vmip null: a READY nobody can reach.
            state, status = ViewerState.ERROR, "Viewer reported up but never wrote its address"
            tx.enqueue(record, "remove", {"launch_id": record.launch_id, "reason": status})
        elif state is ViewerState.READY:
            record.ready_at = time.time()
            record.url = self._url(record)
        tx.transition(record, int(state), status, "node", source)
        return previous, state, source, status

    def snapshot(self, snap: Snapshot) -> bool:
        """Record a viewer database saved by ``vruntask finish`` of any launch of this key.

        A snapshot is a fact about saved data, not a state report: the
        previous launch's guest may finish saving after a relaunch was
        claimed, and that database is the one the new launch must restore.
        So it is authenticated with the token of the launch it names.
        """
        with self.store.transaction() as tx:
            record = self._authenticated(tx, snap.execrunid, snap.epoch, snap.token, any_launch=True)
            viewer_uuid = record.viewer_uuid
            tx.add_snapshot(record, snap.epoch, viewer_uuid, snap.path, snap.checksum, snap.platform, snap.version)
            tx.note(record, "node", f"viewer database of launch {snap.epoch} saved: {snap.path}")
            for kind in self.snapshot_effects:
                tx.enqueue(record, kind, {"path": snap.path, "checksum": snap.checksum,
                                          "platform": snap.platform, "version": snap.version,
                                          "epoch": snap.epoch})
        log.info("%s: viewer database snapshot %s (launch %d) recorded", snap.execrunid, snap.path, snap.epoch,
                 extra=run_fields(record))
        self.reconciler.enqueue(record.id)
        return True

    @staticmethod
    def _authenticated(tx: Transaction, execrunid: str, epoch: int, token: str,
                       any_launch: bool = False) -> ViewerRecord:
        """The record a node's message is about, once its epoch and token check out.

        ``any_launch``: the message may come from an earlier launch of the
        key, authenticated by that launch's own token.
        """
        record = tx.get_run(ViewerRecord.KIND, execrunid)
        if not isinstance(record, ViewerRecord):
            raise SwampdError(Fault.UNKNOWN, f"no viewer with execrunid {execrunid}")
        expected = record.token
        if epoch != record.epoch:
            launch = tx.launch(record.id, epoch) if any_launch and 0 < epoch < record.epoch else None
            if launch is None:
                raise SwampdError(
                    Fault.STALE, f"report for launch {epoch} of {execrunid}; current launch is {record.epoch}")
            expected = launch.token
        if not token or not hmac.compare_digest(token.encode(), expected.encode()):
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
        record = self.store.get_viewer(projectid, viewer)
        return history_structs(self.store, record) if record is not None else []


def history_structs(store: Store, record: RunRecord) -> list[dict[str, Any]]:
    """A run's state changes, oldest first: from where to where, why, and who said so."""
    from swampd.lifecycle import lifecycle_of

    name = lifecycle_of(record.kind).state_name
    out = []
    for h in store.history(record.id):
        entry: dict[str, Any] = {"at": iso(h.at), "epoch": h.epoch, "state": h.state, "state_name": name(h.state),
                                 "status": h.status, "source": h.source, "reason": h.reason}
        if h.from_state is not None:
            entry["from_state"], entry["from_state_name"] = h.from_state, name(h.from_state)
        out.append(entry)
    return out


def _by_launch(reports: Sequence[Report]) -> list[list[Report]]:
    """Consecutive reports of one launch (same run, epoch and token), in order."""
    groups: list[list[Report]] = []
    for rep in reports:
        if groups and (rep.execrunid, rep.epoch, rep.token) == (groups[-1][0].execrunid, groups[-1][0].epoch,
                                                                 groups[-1][0].token):
            groups[-1].append(rep)
        else:
            groups.append([rep])
    return groups
