"""The side effects of assessment runs: their inputs, their results, and SWAMP's database.

* ``prepare`` (slow, job lane): the run's BOG from ``assessment.exec_run_view``
  (retried while MariaDB is away; a run the view does not have ends with
  that reason), its tool, and the package and tool archives: confined to the
  configured roots and checksummed (SHA-512) before any job exists, so a
  mismatch ends the run with a reason and no job.  A run is ready for a slot
  once this has written its BOG.
* ``store_results`` (slow): the node's results of the current launch.  A
  status.out that asks for a retry, with attempts left, queues the next
  attempt (a new launch); otherwise the results are copied into the
  project's results tree and the run ends FINISHED, with the database save
  (``db_results``) queued before the final status, so the database sees them
  in SWAMP's order.  A retried attempt saves nothing (SWAMP stored a result
  row for every attempt).
* ``run_status`` (slow, every state change of an assessment, with ``[mariadb]``):
  each status through ``update_execution_run_status`` in the order the changes
  happened, with the fields and flags SWAMP's Perl set at that point; a final
  status and ``completion_date`` only when no retry follows.
* ``db_results`` (slow, same lane): ``insert_results`` (ARuns) or the metric
  update (MRuns), once, however often it is tried.
* ``notify`` (slow): one POST to the web server's notify route after the final
  status, when the run asked for it.
"""
from __future__ import annotations

import json
import logging
import os
import pwd
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from swampd.checksums import stream_digest
from swampd.config import Config, ToolConfig
from swampd.effects import Waiting
from swampd.failpoints import failpoint
from swampd.lifecycle.assessment import AssessmentState
from swampd.paths import PathRefused, open_confined
from swampd.runreports import ERRORS, RunResults
from swampd.store import OutboxItem, Store
from swampd.store.records import AssessmentRecord

log = logging.getLogger(__name__)
S = AssessmentState
#: The largest package or tool archive a run may name.
MAX_ARCHIVE_BYTES = 64 << 30
#: BOG flags that say "tell the user when it is done" (exec_run_view's column).
NOTIFY_KEYS = ("notify_when_complete_flag", "notify_when_complete")


def package_roots(config: Config) -> tuple[str, ...]:
    return config.assessments.package_roots or (str(Path(config.agentmonitor.state_dir) / "packages"),)


def project_store(config: Config) -> Path:
    return Path(config.assessments.project_store or Path(config.agentmonitor.state_dir) / "SCAProjects")


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


#: Seconds after a database run is accepted before its first status is written (see run_status).
PROCEDURE_SETTLE = 3.0


class AssessmentEffects:
    def __init__(self, store: Store, config: Config, service: Any, database: Any = None, web: Any = None) -> None:
        """``service``: the AssessmentService (for retries); ``database``: an AssessmentDatabase or None
        (no [mariadb]); ``web``: ``notify(execrunid)`` or None (no [webserver])."""
        self.store = store
        self.config = config
        self.service = service
        self.db = database
        self.web = web

    def _current(self, item: OutboxItem, state: AssessmentState | None = None) -> AssessmentRecord | None:
        record = self.store.get_run_by_id(item.run_id)
        if not isinstance(record, AssessmentRecord) or record.epoch != item.epoch:
            return None
        if state is not None and record.state != state:
            return None
        return record

    def _fail(self, item: OutboxItem, reason: str) -> None:
        with self.store.transaction() as tx:
            current = tx.get_run_by_id(item.run_id)
            if isinstance(current, AssessmentRecord) and current.epoch == item.epoch \
                    and current.state in (S.QUEUED, S.COLLECTING):
                current.finished_at = time.time()
                tx.transition(current, int(S.FAILED), f"Finished with Errors - {reason}"[:128], "prepare", reason)
        log.error("run %d: %s", item.run_id, reason)

    # -- prepare -------------------------------------------------------------------
    def prepare(self, item: OutboxItem) -> None:
        record = self._current(item, S.QUEUED)
        if record is None or record.bog:
            return
        if record.source == "database":
            if self.db is None:
                self._fail(item, "runs from SWAMP's database need [mariadb] in the configuration")
                return
            bog = self.db.run_bog(record.execrunid)  # raises while MariaDB is away: retried
            if bog is None:
                self._fail(item, f"{record.execrunid} is not an incomplete run in assessment.exec_run_view")
                return
        else:
            bog = {k: str(v) for k, v in item.payload.get("bog", {}).items()}
        tool = self._tool(record, bog)
        if tool is None:
            self._fail(item, f"tool {bog.get('toolname') or record.tool!r} is not configured ([tools.NAME])")
            return
        roots = package_roots(self.config)
        try:
            package_sha = self._digest(bog.get("packagepath", ""), roots, "package archive")
            tool_path = bog.get("toolpath", "") if bog.get("toolpath", "") not in ("", "null") else tool.tool_path
            tool_sha = self._digest(tool_path, roots, "tool archive") if tool_path and Path(tool_path).is_file() else ""
        except PathRefused as exc:
            self._fail(item, str(exc))
            return
        # The database's checksums (run_bog's swampd_* keys; SWAMP's pkg_checksum, tool_checksum).
        expected = bog.get("swampd_package_sha512") or bog.get("packagechecksum") or ""
        if expected and expected.lower() != package_sha:
            self._fail(item, f"the package archive does not match its recorded checksum ({expected[:16]}...)")
            return
        expected_tool = bog.get("swampd_tool_sha512", "")
        if expected_tool and tool_sha and expected_tool.lower() != tool_sha:
            self._fail(item, f"the tool archive does not match its recorded checksum ({expected_tool[:16]}...)")
            return
        with self.store.transaction(durable=False) as tx:
            current = tx.get_run_by_id(item.run_id)
            if not isinstance(current, AssessmentRecord) or current.epoch != item.epoch or current.state != S.QUEUED:
                return
            current.bog = json.dumps(bog)
            current.tool = tool.name
            current.package_path = bog.get("packagepath", "")
            current.package_sha512 = package_sha
            current.tool_path = tool_path
            current.tool_sha512 = tool_sha
            current.projectid = bog.get("projectid") or current.projectid
            current.userid = bog.get("userid") or current.userid
            current.notify = any(bog.get(k, "") in ("1", "true") for k in NOTIFY_KEYS)
            tx.put_run(current)
        log.info("%s: inputs ready (%s on %s)", record.execrunid, tool.name, current.package_path)

    def _tool(self, record: AssessmentRecord, bog: dict[str, str]) -> ToolConfig | None:
        if record.tool:
            return self.config.tools.get(record.tool)
        name = bog.get("toolname", "")
        return next((t for t in self.config.tools.values() if name in (t.name, t.swamp_name)), None)

    @staticmethod
    def _digest(path: str, roots: tuple[str, ...], what: str) -> str:
        if not path.startswith("/"):
            raise PathRefused(f"the {what} {path!r} is not an absolute path")
        with open_confined(path, roots, MAX_ARCHIVE_BYTES, what) as fh:
            return stream_digest(fh)

    # -- results -------------------------------------------------------------------
    def store_results(self, item: OutboxItem) -> None:
        record = self._current(item, S.COLLECTING)
        if record is None or not record.results:
            return
        results = RunResults.from_struct(json.loads(record.results))
        runs = self.config.assessments
        retry = results.status_out.retry and results.outcome == ERRORS and record.epoch <= runs.max_retries
        stored: dict[str, Any] | None = None
        if not retry and self.db is not None:
            if not record.result_uuid:  # kept before anything is copied: a rerun reuses it
                with self.store.transaction() as tx:
                    current = tx.get_run_by_id(record.id)
                    if isinstance(current, AssessmentRecord) and not current.result_uuid:
                        current.result_uuid = str(uuid.uuid4()).upper()  # SWAMP's Data::UUID form
                        tx.put_run(current)
                record = self._current(item, S.COLLECTING) or record
            stored = self._store_copies(record, results)
            failpoint("results.after_copy")
        with self.store.transaction() as tx:
            current = tx.get_run_by_id(item.run_id)
            if not isinstance(current, AssessmentRecord) or current.epoch != item.epoch or current.state != S.COLLECTING:
                return
            if retry:
                self.service.retry(tx, current, "status.out asks for a retry")
                return
            if stored is not None:
                tx.enqueue(current, "db_results", stored)  # before the final status, in the database lane
            current.outcome = results.outcome
            current.finished_at = time.time()
            tx.transition(current, int(S.FINISHED), results.outcome, "results",
                          f"{results.scarf_bugs} weaknesses" if results.scarf_bugs >= 0 else results.outcome)
            if current.notify and self.web is not None:
                tx.enqueue(current, "notify")
            # Its job directory goes once the results are stored, after the retention asked for.
            tx.enqueue(current, "forget", {"launch_id": current.launch_id},
                       not_before=time.time() + runs.job_retention)
        log.info("%s: %s (%s)", record.execrunid, results.outcome, f"{record.weaknesses} weaknesses")

    def _store_copies(self, record: AssessmentRecord, results: RunResults) -> dict[str, Any]:
        """The results copied into the project's tree (idempotent), as insert_results' arguments."""
        from swampd.results.store import store_results

        metric = record.KIND == "mrun"
        stored = store_results(results, project_store(self.config), record.projectid, record.result_uuid, metric,
                               execrunid=record.execrunid if metric else "",
                               metric_store=self.config.assessments.metric_store or None)
        return stored.to_payload()

    # -- the database ---------------------------------------------------------------
    def run_status(self, item: OutboxItem) -> None:
        """The state change in ``item`` as SWAMP's Perl wrote it to the database."""
        if self.db is None:
            return
        record = self.store.get_run_by_id(item.run_id)
        if not isinstance(record, AssessmentRecord):
            return
        state, status = int(item.payload["state"]), str(item.payload.get("status", ""))
        execrunid = record.execrunid
        settle = record.queued_at + PROCEDURE_SETTLE - time.time() if record.source == "database" else 0.0
        if settle > 0 and state != S.QUEUED:
            # SWAMP's launch procedure writes 'SUBMITTING TO HTCONDOR' once execute_execution_record
            # has returned: a status written before that would be overwritten.
            raise Waiting("the launch procedure writes its own status first", after=settle)
        if state == S.QUEUED:
            if status.startswith("SWAMP off"):
                self.db.update_field(execrunid, "status", status)
            return  # "Queued", "Waiting to retry": the database keeps what it showed (no final in between)
        if state == S.SUBMITTED and status.startswith("Submitting"):
            return
        self.db.update_field(execrunid, "status", status)
        started = state == S.RUNNING and item.payload.get("from_state") == S.SUBMITTED
        if (state == S.SUBMITTED and status.startswith("Waiting in HTCondor Queue")) or started:
            # The job is with the scheduler (a local job may report before its submit is recorded).
            self.db.set_flags(execrunid, launch_flag=0, submitted_to_condor_flag=1)
        if started and record.started_at:
            self.db.update_field(execrunid, "run_date", _utc(record.started_at))
        elif state in (S.FINISHED, S.FAILED, S.TERMINATED, S.TERMINATE_FAILED):
            self.db.update_field(execrunid, "completion_date", _utc(record.finished_at or time.time()))
            self.db.set_flags(execrunid, complete_flag=1)

    def db_results(self, item: OutboxItem) -> None:
        if self.db is None:
            return
        record = self.store.get_run_by_id(item.run_id)
        if not isinstance(record, AssessmentRecord):
            return
        from swampd.clients.assessment_db import StoredResult

        failpoint("db_results.before_insert")
        self.db.save_results(record.execrunid, StoredResult.from_payload(item.payload))
        failpoint("db_results.after_insert")

    def vm_fields(self, item: OutboxItem) -> None:
        """What SWAMP's PreAssessment and monitor wrote about the machine of a launch, once its node
        reported the address: the execute node's host name, the machine's name (SWAMP's
        ``aswamp-<cluster>-<proc>``, from the scheduler's job id), its login user, image and
        address, and the tool archive's file name.  Never vm_password: swampd's machines take no
        logins from the web."""
        if self.db is None:
            return
        record = self.store.get_run_by_id(item.run_id)
        if not isinstance(record, AssessmentRecord) or record.epoch != item.epoch:
            return
        for name, value in self._machine_fields(record, item.payload).items():
            if value:
                self.db.update_field(record.execrunid, name, value)

    def _machine_fields(self, record: AssessmentRecord, payload: dict[str, Any]) -> dict[str, str]:
        runs = self.config.assessments
        bog = json.loads(record.bog or "{}")
        platform = str(bog.get("swampd_platform") or runs.platform)
        job = (record.job_ref or record.launch_id).replace(".", "-")
        prefix = "mswamp" if record.kind == "mrun" else "aswamp"
        return {
            "execute_node_architecture_id": str(payload.get("execute_node", ""))[:128],
            "vm_hostname": f"{prefix}-{job}"[:100],
            # SWAMP's images run the assessment as builder; a process runs as the job's user.
            "vm_username": ("builder" if platform == "vm" else self._job_user())[:50],
            "vm_image": str(bog.get("platform_image") or runs.image or runs.platform)[:100],
            "vm_ip_address": str(payload.get("vm_ip_address", ""))[:50],
            "tool_filename": Path(record.tool_path).name[:100],
        }

    def _job_user(self) -> str:
        """Whom a process job runs as: ``[scheduler] run_as``, else the daemon's own user."""
        if self.config.scheduler.run_as:
            return self.config.scheduler.run_as
        try:
            return pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            return str(os.getuid())

    def notify(self, item: OutboxItem) -> None:
        record = self.store.get_run_by_id(item.run_id)
        if isinstance(record, AssessmentRecord) and self.web is not None:
            self.web(record.execrunid)

