"""The assessment service: accept, look up, list, kill, pause; take the execute node's reports.

Runs come from the database (``execute_execution_record <uuid>`` calls
``launchRun``) or from a person (``swampd assess``).  Accepting is a
compare-and-set like a viewer launch: a run is created once, whatever the
number of calls, with its first launch (epoch 1, a launch id and a report
token) and a ``prepare`` effect (read its BOG from ``exec_run_view``, check
its archives) in one transaction.  From then on the reconciler, the
admission of queued runs to slots and the node's reports move it; every
status change goes to the database through the ``run_status`` effect, in
order, and the results through ``store_results``.
"""
from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

from swampd.agentmonitor.changes import ChangeFeed, Deferred
from swampd.agentmonitor.reconciler import Reconciler
from swampd.agentmonitor.service import history_structs, iso
from swampd.config import Config
from swampd.errors import Fault, SwampdError
from swampd.lifecycle.assessment import ENDED, AssessmentState, retry_suffix
from swampd.runreports import COLLECTING_STATUS, EVENTS, STARTING_STATUS, RunResults, RunState
from swampd.store import Store, Transaction
from swampd.store.records import AssessmentRecord, MetricRecord

log = logging.getLogger(__name__)
S = AssessmentState
SWAMP_OFF = "SWAMP off - Queued"
#: The states a node's report may move a run out of (a killed or ended run ignores them).
REPORTING = frozenset({S.SUBMITTED, S.RUNNING, S.COLLECTING})


def record_class(execrunid: str) -> type[AssessmentRecord]:
    """``M-`` ids are metric runs (SWAMP's convention); every other id an assessment run."""
    return MetricRecord if execrunid.startswith("M-") else AssessmentRecord


@dataclass(frozen=True)
class StatusReport:
    execrunid: str
    epoch: int
    token: str
    event: str = ""
    state: str = ""
    status: str = ""
    vmip: str = ""
    #: The execute node's host name (SWAMP's execute_node_architecture_id), sent with WROTEIPADDR.
    node: str = ""


@dataclass(frozen=True)
class AssessRequest:
    """``swampd assess``: a run made from its arguments instead of the database."""

    package_path: str
    tool: str
    package_name: str = ""
    package_version: str = ""
    package_type: str = ""
    projectid: str = "local"
    userid: str = "local"


class AssessmentService:
    def __init__(self, store: Store, reconciler: Reconciler, config: Config) -> None:
        self.store = store
        self.reconciler = reconciler
        self.config = config
        #: Set by the daemon's wiring.
        self.changes: ChangeFeed | None = None
        self.admission: Any = None

    # -- accepting ---------------------------------------------------------------
    def launch(self, execrunid: str) -> dict[str, Any]:
        """Accept the database's run ``execrunid`` (idempotent: a second call changes nothing)."""
        return self._accept(execrunid, "database", {})

    def assess(self, req: AssessRequest) -> dict[str, Any]:
        """A run of ``req.tool`` on ``req.package_path``, without SWAMP's database."""
        from swampd.agentmonitor.assessment_effects import package_roots
        from swampd.paths import PathRefused, confine

        try:  # refused at the call, like every path a caller names
            confine(req.package_path, package_roots(self.config), what="package archive")
        except PathRefused as exc:
            raise SwampdError(Fault.BAD_ARGUMENT, str(exc)) from None
        if req.tool not in self.config.tools:
            raise SwampdError(Fault.BAD_ARGUMENT, f"tool {req.tool!r} is not configured "
                              f"(configured: {', '.join(sorted(self.config.tools)) or 'none'})")
        bog = {"packagepath": req.package_path, "packagename": req.package_name, "packageversion":
               req.package_version, "packagetype": req.package_type, "projectid": req.projectid,
               "userid": req.userid}
        return self._accept(str(uuid.uuid4()), "cli", {"bog": bog, "tool": req.tool})

    def _accept(self, execrunid: str, source: str, prepare: dict[str, Any]) -> dict[str, Any]:
        cls = record_class(execrunid)
        now = time.time()
        with self.store.transaction() as tx:
            record = tx.get_run(cls.KIND, execrunid)
            accepted = record is None
            if record is None:
                record = cls(execrunid=execrunid, source=source, queued_at=now)
                record.epoch = 0
                self._new_launch(record, now)
                if source == "cli":
                    record.projectid, record.userid = prepare["bog"]["projectid"], prepare["bog"]["userid"]
                    record.tool = prepare["tool"]
                status = SWAMP_OFF if self.admission is not None and self.admission.paused else "Queued"
                tx.transition(record, int(S.QUEUED), status, "api", f"accepted from the {source}")
                tx.record_launch(record)
                tx.enqueue(record, "prepare", prepare)
        if accepted:
            log.info("%s: run accepted (%s)", execrunid, source)
            self.reconciler.enqueue(record.id)
        return self.to_struct(record, accepted=accepted)

    @staticmethod
    def _new_launch(record: AssessmentRecord, now: float) -> None:
        """A launch (attempt) of its own: epoch, launch id, report token; nothing of the last one's job."""
        record.epoch += 1
        record.launch_id = uuid.uuid4().hex
        record.token = secrets.token_urlsafe(32)
        record.desired = "running"
        record.job_ref = ""
        record.submitted_at = record.started_at = record.collecting_at = 0.0
        record.stop_requested_at = 0.0
        record.launched_at = now
        record.results = ""

    def retry(self, tx: Transaction, record: AssessmentRecord, reason: str) -> None:
        """The next attempt of ``record``: a new launch, queued for a slot again (SWAMP's retry)."""
        previous = record.launch_id
        self._new_launch(record, time.time())
        left = self.config.assessments.max_retries - (record.epoch - 1)
        tx.transition(record, int(S.QUEUED), f"Waiting to retry{retry_suffix(record.epoch, self.config.assessments.max_retries)}",
                      "results", f"{reason}; {left} more attempt(s) allowed")
        tx.record_launch(record)
        tx.enqueue(record, "forget", {"launch_id": previous})

    # -- queries -------------------------------------------------------------------
    def get(self, execrunid: str) -> dict[str, Any]:
        record = self._find(execrunid)
        return self.to_struct(record or record_class(execrunid)(execrunid=execrunid))

    def list(self, kind: str | None = None, states: set[int] | None = None,
             projectid: str | None = None) -> list[dict[str, Any]]:
        kinds = [kind] if kind else ["arun", "mrun"]
        out = []
        for k in kinds:
            out += [self.to_struct(r) for r in self.store.list_runs(k, states, projectid)]
        return out

    def history(self, execrunid: str) -> list[dict[str, Any]]:
        record = self._find(execrunid)
        if record is None:
            raise SwampdError(Fault.UNKNOWN, f"no run {execrunid}")
        return history_structs(self.store, record)

    def wait(self, execrunid: str, timeout: float) -> Deferred[dict[str, Any]]:
        """The run once it has ended, or after ``timeout`` seconds; no thread waits meanwhile."""
        cls = record_class(execrunid)

        def check() -> AssessmentRecord | None:
            record = self.store.get_run(cls.KIND, execrunid)
            return record if isinstance(record, AssessmentRecord) and record.state in {int(s) for s in ENDED} \
                and record.epoch else None

        def answer(found: AssessmentRecord | None) -> dict[str, Any]:
            return self.get(execrunid) if found is None else self.to_struct(found)

        record = self._find(execrunid)
        if self.changes is None:
            return Deferred.of(answer(check()))
        return self.changes.watch(record.id if record is not None else None, check, timeout).map(answer)

    def _find(self, execrunid: str) -> AssessmentRecord | None:
        record = self.store.get_run(record_class(execrunid).KIND, execrunid)
        return record if isinstance(record, AssessmentRecord) else None

    # -- kill and pause --------------------------------------------------------------
    def kill(self, execrunid: str, hard: bool = False, reason: str = "killed by request") -> dict[str, Any]:
        """End the run: its job removed (at once when ``hard``), Terminating then Terminated."""
        with self.store.transaction() as tx:
            record = tx.get_run(record_class(execrunid).KIND, execrunid)
            if not isinstance(record, AssessmentRecord):
                raise SwampdError(Fault.UNKNOWN, f"no run {execrunid}")
            if record.state not in {int(s) for s in ENDED} and record.state != S.TERMINATING:
                record.desired = "stopped"
                record.stop_requested_at = time.time()
                tx.transition(record, int(S.TERMINATING), "Terminating", "api", reason)
                tx.enqueue(record, "remove", {"launch_id": record.launch_id, "reason": reason, "force": hard})
                log.info("%s: kill requested (%s%s)", execrunid, reason, ", hard" if hard else "")
        self.reconciler.enqueue(record.id)
        return self.to_struct(record)

    def set_paused(self, paused: bool) -> dict[str, Any]:
        self.admission.set_paused(paused)
        queued = self.store.list_runs(None, {int(S.QUEUED)})
        with self.store.transaction() as tx:
            for record in queued:
                current = tx.get_run_by_id(record.id)
                if current is not None and current.state == S.QUEUED and (current.status == SWAMP_OFF) != paused:
                    tx.transition(current, int(S.QUEUED), SWAMP_OFF if paused else "Queued", "api",
                                  "SWAMP off" if paused else "SWAMP on")
        return {"paused": paused, "queued": len(queued)}

    # -- the execute node ------------------------------------------------------------
    def report(self, rep: StatusReport) -> bool:
        """A node's progress; True when it changed the run."""
        return self.report_all([rep])

    def report_all(self, reports: Sequence[StatusReport]) -> bool:
        """Reports of one launch, in order, in one transaction (a hosted command's start makes three
        at one instant): one authentication and one reconciler turn, each report still its own
        transition (and its status in SWAMP's database).  True when any changed the run."""
        changed = False
        record: AssessmentRecord | None = None
        with self.store.transaction(durable=False) as tx:
            for rep in reports:
                if record is None or (rep.execrunid, rep.epoch, rep.token) != (record.execrunid, record.epoch,
                                                                               record.token):
                    record = self._authenticated(tx, rep.execrunid, rep.epoch, rep.token)
                changed = self._apply_report(tx, record, rep) or changed
        if record is not None and changed:
            self.reconciler.enqueue(record.id)
        return changed

    def _apply_report(self, tx: Transaction, record: AssessmentRecord, rep: StatusReport) -> bool:
        if record.state not in REPORTING:
            return False
        suffix = retry_suffix(record.epoch, self.config.assessments.max_retries)
        state = AssessmentState(record.state)
        if rep.event:
            if rep.event not in EVENTS or state is S.COLLECTING or tx.reported_before(record, rep.event):
                # SWAMP's monitor ignored lines it did not know; a guest event read after the
                # machine is down, or sent again after a restart, would put an older status back.
                return False
            status, state = EVENTS[rep.event] + suffix, S.RUNNING if state is S.SUBMITTED else state
        elif rep.state == RunState.STARTING:
            status, state = (rep.status or STARTING_STATUS["process"]) + suffix, S.RUNNING
        elif rep.state == RunState.COLLECTING:
            status, state = COLLECTING_STATUS + suffix, S.COLLECTING
        elif rep.state == RunState.FAILED:
            status = f"Finished with Errors - {rep.status}"[:128]
        else:
            status = (rep.status or rep.state) + suffix
        if state is S.RUNNING and not record.started_at:
            record.started_at = time.time()
        if state is S.COLLECTING and not record.collecting_at:
            record.collecting_at = time.time()
        if status == record.status and int(state) == record.state:
            return False
        tx.transition(record, int(state), status[:128], "node",
                      f"event {rep.event}" if rep.event else f"state {rep.state}")
        if rep.event == "WROTEIPADDR" and rep.vmip:
            # SWAMP's vm_ip_address and vm_image, after the status in the database lane.
            tx.enqueue(record, "vm_fields", {"vm_ip_address": rep.vmip[:50], "execute_node": rep.node})
        return True

    def results(self, execrunid: str, epoch: int, token: str, results: RunResults) -> bool:
        """The node's results of its launch; a second delivery of the same launch's is already done."""
        with self.store.transaction() as tx:
            record = self._authenticated(tx, execrunid, epoch, token)
            if record.results or record.state not in REPORTING:
                return True
            record.results = json.dumps(results.to_struct())
            record.weaknesses = results.status_out.weaknesses if results.status_out.weaknesses >= 0 \
                else results.scarf_bugs
            if not record.collecting_at:
                record.collecting_at = time.time()
            tx.transition(record, int(S.COLLECTING),
                          "Saving Results" + retry_suffix(record.epoch, self.config.assessments.max_retries),
                          "node", f"results of launch {epoch}: {results.outcome}")
            tx.enqueue(record, "store_results")
        self.reconciler.enqueue(record.id)
        return True

    @staticmethod
    def _authenticated(tx: Transaction, execrunid: str, epoch: int, token: str) -> AssessmentRecord:
        record = tx.get_run(record_class(execrunid).KIND, execrunid)
        if not isinstance(record, AssessmentRecord):
            raise SwampdError(Fault.UNKNOWN, f"no run {execrunid}")
        if epoch != record.epoch:
            raise SwampdError(Fault.STALE, f"report for launch {epoch} of {execrunid}; current launch is {record.epoch}")
        if not token or not hmac.compare_digest(token.encode(), record.token.encode()):
            raise SwampdError(Fault.NOT_AUTHORIZED, f"wrong report token for {execrunid}")
        return record

    # -- rendering ---------------------------------------------------------------------
    def to_struct(self, record: AssessmentRecord, accepted: bool = False) -> dict[str, Any]:
        """A run as callers see it; never its report token."""
        struct: dict[str, Any] = {
            "execrunid": record.execrunid,
            "kind": record.KIND,
            "projectid": record.projectid,
            "userid": record.userid,
            "tool": record.tool,
            "state": record.state,
            "state_name": AssessmentState(record.state).name if record.state in AssessmentState._value2member_map_
            else f"UNKNOWN({record.state})",
            "status": record.status,
            "epoch": record.epoch,
            "accepted": accepted,
            "source": record.source,  # "database" (execute_execution_record) or "cli" (swampd assess)
            "outcome": record.outcome,
            "weaknesses": record.weaknesses,
            "queued_at": iso(record.queued_at),
            "started_at": iso(record.started_at),
            "finished_at": iso(record.finished_at),
            "updated": iso(record.updated_at),
        }
        if record.results:
            files = json.loads(record.results).get("files", {})
            struct["results_dir"] = json.loads(record.results).get("results_dir", "")
            struct["files"] = {role: f["path"] for role, f in files.items()}
        if record.epoch:
            seen = self.reconciler.observation_of(record)
            struct["job"] = seen["job"]
            struct["stale"] = bool(seen["stale"])
        return struct
