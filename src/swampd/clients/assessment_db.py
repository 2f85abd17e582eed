"""SWAMP's assessment and metric runs in MariaDB: the BOG source, statuses, flags and results.

What SWAMP's Perl did to the database for a run, as the daemon's outbox
effects call it (reference swamp-db-deploy.md §1.9, swamp-assessment.md §1.1,
§1.2, §3.2, §3.5, §3.6, §4):

* ``run_bog``       ``SELECT * FROM assessment.exec_run_view`` -> the BOG keys
                    LaunchPad wrote (``VIEW_TO_BOG``)
* ``update_field``  ``CALL assessment.update_execution_run_status(uuid, field, value, @r)``
* ``set_flags``     the direct ``UPDATE`` of launch_flag / submitted_to_condor_flag /
                    complete_flag (``metric.metric_run`` for ``M-`` ids)
* ``save_results``  ``CALL assessment.insert_results(12 arguments, @r)`` for an ARun;
                    the ``UPDATE metric.metric_run`` of §3.6 (and §3.5's line counts) for an MRun

Same connection rules and failure classes as ``clients.mariadb``: one short
connection per call, ``DatabaseUnavailable`` to retry, ``DatabaseRefused``
when the database (or the call itself) says no.  The session runs in UTC
(SWAMP's servers do; ``run_date`` and ``completion_date`` are UTC) and waits
at most a few seconds for a row lock: the web server's soft delete holds the
execution_record's lock while it runs kill_run (db-deploy §1.5), and a
worker should retry later rather than sit in the lock.

Values are fitted to what the database can hold before they are sent, so a
strict ``sql_mode`` never fails a call over a long or foreign text: each is
cut to its column's length, and characters the database's character set
cannot hold (SWAMP's are latin1) become ``?``.  Paths are never cut: one
that does not fit its column is refused.
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

import pymysql
import pymysql.constants.CLIENT
import pymysql.cursors
import pymysql.err

from swampd.clients.mariadb import DatabaseRefused, call_procedure, connection
from swampd.config import MariaDBConfig
from swampd.identifiers import is_identifier
from swampd.results.store import StoredResult  # re-exported: what save_results takes

log = logging.getLogger(__name__)

__all__ = ["AssessmentDatabase", "BadRunArgument", "StoredResult", "STATUS_FIELDS", "VIEW_TO_BOG",
           "VIEW_TO_BOG_OPTIONAL", "VIEW_TO_CHECKSUM", "bog_from_rows", "check_run_id", "fit_text",
           "is_metric_run"]

METRIC_PREFIX = "M-"
#: ``update_execution_run_status`` fields and the longest value their column holds
#: (None: not text; the procedure converts it).  The parameter itself is VARCHAR(128).
STATUS_FIELDS: dict[str, int | None] = {
    "status": 100, "execute_node_architecture_id": 128, "lines_of_code": None, "cpu_utilization": 32,
    "vm_password": 50, "vm_hostname": 100, "vm_username": 50, "vm_image": 100, "vm_ip_address": 50,
    "tool_filename": 100, "run_date": None, "completion_date": None, "slot_size_start": 128,
    "slot_size_end": 128,
}
FLAGS = ("launch_flag", "submitted_to_condor_flag", "complete_flag")
#: insert_results' VARCHAR(3000) status_out and VARCHAR(200) status_out_error_msg and paths.
STATUS_OUT_CHARS = 3000
ERROR_MSG_CHARS = 200
PATH_CHARS = 200

#: exec_run_view column -> BOG key, for the keys LaunchPad wrote with the literal
#: ``null`` for a NULL (swamp-assessment.md §1.2; swamp-lifecycle §5.2).
VIEW_TO_BOG: tuple[tuple[str, str], ...] = (
    ("platform_identifier", "platform_identifier"),
    ("tool_name", "toolname"),
    ("tool_path", "toolpath"),
    ("version_string", "tool-version"),
    ("package_name", "packagename"),
    ("package_version", "packageversion"),
    ("package_path", "packagepath"),
    ("source_path", "packagesourcepath"),
    ("package_type", "packagetype"),
    ("build_system", "packagebuild_system"),
    ("build_file", "packagebuild_file"),
    ("build_target", "packagebuild_target"),
    ("build_dir", "packagebuild_dir"),
    ("build_opt", "packagebuild_opt"),
    ("build_cmd", "packagebuild_cmd"),
    ("config_cmd", "packageconfig_cmd"),
    ("config_opt", "packageconfig_opt"),
    ("config_dir", "packageconfig_dir"),
    ("bytecode_class_path", "packageclasspath"),
    ("bytecode_aux_class_path", "packageauxclasspath"),
    ("bytecode_source_path", "packagebytecodesourcepath"),
    ("android_sdk_target", "android_sdk_target"),
    ("android_lint_target", "android_lint_target"),
    ("android_maven_plugin", "android_maven_plugin"),
    ("maven_version", "maven_version"),
    ("language_version", "language_version"),
    ("package_language", "package_language"),
    ("exclude_paths", "exclude_paths"),
    ("android_redo_build", "android_redo_build"),
    ("use_gradle_wrapper", "use_gradle_wrapper"),
    ("package_build_settings", "packagebuild_settings"),
)
#: tinyint columns LaunchPad wrote as ``true``/``false``.
BOOLEAN_COLUMNS = frozenset({"android_redo_build", "use_gradle_wrapper"})
#: exec_run_view column -> BOG key, left out of the BOG when NULL.
VIEW_TO_BOG_OPTIONAL: tuple[tuple[str, str], ...] = (
    ("launch_counter", "launch_counter"),
    ("project_uuid", "projectid"),
    ("user_uuid", "userid"),
    ("user_cnf", "user_cnf"),
    ("notify_when_complete_flag", "notify_when_complete_flag"),
    ("dependency_list", "packagedependencylist"),
)
#: The package's and tool's SHA-512 (SWAMP's pkg_checksum, tool_checksum) under the
#: keys the execute node checks while it copies the archives; left out when NULL.
VIEW_TO_CHECKSUM: tuple[tuple[str, str], ...] = (
    ("pkg_checksum", "swampd_package_sha512"),
    ("tool_checksum", "swampd_tool_sha512"),
)
#: BOG ``version``: LaunchPad's constant.
BOG_VERSION = "2"
#: Values SWAMP stores as JSON text; re-written compactly, on one line.
JSON_KEYS = frozenset({"user_cnf", "packagebuild_settings"})
#: ER_SUBQUERY_NO_1_ROW: two ``sonatype-user`` permissions for one user (swamp-assessment.md §4).
_SUBQUERY_ROWS = 1242
_DUPLICATE_KEY = 1062


class BadRunArgument(DatabaseRefused, ValueError):
    """A run id or field this client refuses before it reaches the database; never worth retrying."""


def is_metric_run(execrunid: str) -> bool:
    """``M-`` ids are metric runs (metric.metric_run); every other id is an execution record."""
    return execrunid.startswith(METRIC_PREFIX)


def check_run_id(execrunid: object) -> str:
    if not isinstance(execrunid, str) or not is_identifier(execrunid) or execrunid.startswith("vrun_"):
        shown = repr(execrunid)[:60] if isinstance(execrunid, str) else type(execrunid).__name__
        raise BadRunArgument(f"{shown} is not an execution record uuid or M- metric run id")
    return execrunid


class AssessmentDatabase:
    """SWAMP's ``assessment`` and ``metric`` databases (``[mariadb] assessment_database``, ``metric_database``)."""

    def __init__(self, config: MariaDBConfig) -> None:
        self.config = config
        self._charsets: dict[str, str] = {}

    # -- connection --------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[pymysql.connections.Connection]:
        lock_wait = max(1, min(10, int(self.config.read_timeout) - 1))
        with connection(self.config, self.config.assessment_database,
                        init_command=f"SET time_zone = '+00:00', innodb_lock_wait_timeout = {lock_wait}",
                        client_flag=pymysql.constants.CLIENT.FOUND_ROWS) as conn:
            yield conn

    def _charset(self, cur: pymysql.cursors.Cursor) -> str:
        """The assessment database's default character set (its procedures' parameters have it)."""
        name = self.config.assessment_database
        if name not in self._charsets:
            cur.execute("SELECT @@character_set_database")
            (value,) = cur.fetchone()
            self._charsets[name] = str(value)
        return self._charsets[name]

    # -- the BOG -------------------------------------------------------------------------
    def run_bog(self, execrunid: str) -> dict[str, str] | None:
        """SWAMP's BOG keys for the run from ``exec_run_view``; None when the view has no such
        (incomplete) run.  The daemon adds what came from swamp.conf in SWAMP (resultsfolder,
        platform_type, platform_image, use_docker_universe) and its own ``swampd_*`` keys."""
        check_run_id(execrunid)
        view = f"`{self.config.assessment_database}`.exec_run_view"
        with self._connection() as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
            try:
                cur.execute(f"SELECT * FROM {view} WHERE execution_record_uuid = %s", (execrunid,))
            except pymysql.err.MySQLError as exc:
                if exc.args and exc.args[0] == _SUBQUERY_ROWS:
                    raise DatabaseRefused(
                        f"exec_run_view for {execrunid}: the run's user has more than one sonatype-user "
                        "permission (user_cnf); an administrator must remove the extra one") from None
                raise
            rows = list(cur.fetchall())
            conn.commit()
        if not rows:
            return None
        return bog_from_rows(execrunid, rows)

    # -- status fields -------------------------------------------------------------------
    def update_field(self, execrunid: str, field: str, value: str | int | datetime | None) -> None:
        """``update_execution_run_status``: one field of the run (``STATUS_FIELDS``).

        A datetime is written as UTC ``YYYY-MM-DD HH:MM:SS`` (a naive one is taken as
        UTC); text is fitted to its column.  'ERROR: Record Not Found' -> DatabaseRefused.
        """
        check_run_id(execrunid)
        if field not in STATUS_FIELDS:
            raise BadRunArgument(f"{field[:40]!r} is not a field update_execution_run_status takes")
        procedure = f"`{self.config.assessment_database}`.update_execution_run_status"
        with self._connection() as conn, conn.cursor() as cur:
            text = _field_value(value, STATUS_FIELDS[field], self._charset(cur))
            answer = call_procedure(cur, procedure, (execrunid, field, text))
            if answer != "SUCCESS":
                conn.rollback()
                raise DatabaseRefused(f"update_execution_run_status {field} of {execrunid}: {answer or 'no answer'}")
            conn.commit()

    # -- flags ---------------------------------------------------------------------------
    def set_flags(self, execrunid: str, launch_flag: int | bool | None = None,
                  submitted_to_condor_flag: int | bool | None = None,
                  complete_flag: int | bool | None = None) -> None:
        """The direct UPDATEs SWAMP's Perl made; a run that is not there is DatabaseRefused."""
        check_run_id(execrunid)
        values = {"launch_flag": launch_flag, "submitted_to_condor_flag": submitted_to_condor_flag,
                  "complete_flag": complete_flag}
        chosen = {name: int(bool(value)) for name, value in values.items() if value is not None}
        for name, value in values.items():
            if value is not None and value not in (0, 1):
                raise BadRunArgument(f"{name} must be 0 or 1, not {value!r}")
        if not chosen:
            return
        table, key = self._run_table(execrunid)
        assignments = ", ".join(f"{name} = %s" for name in chosen)
        with self._connection() as conn, conn.cursor() as cur:
            matched = cur.execute(f"UPDATE {table} SET {assignments} WHERE {key} = %s",
                                  (*chosen.values(), execrunid))
            if matched != 1:
                conn.rollback()
                raise DatabaseRefused(f"no {table.split('.')[-1]} row {execrunid} to set {', '.join(chosen)} on")
            conn.commit()

    def _run_table(self, execrunid: str) -> tuple[str, str]:
        if is_metric_run(execrunid):
            return f"`{self.config.metric_database}`.metric_run", "metric_run_uuid"
        return f"`{self.config.assessment_database}`.execution_record", "execution_record_uuid"

    # -- results -------------------------------------------------------------------------
    def save_results(self, execrunid: str, stored: StoredResult) -> None:
        """``insert_results`` (ARun) or the metric_run update (MRun), exactly once.

        Called again for a result already recorded (a crash between the call and
        the caller's record of it), it finds the assessment_result row in the same
        transaction and inserts nothing.
        """
        check_run_id(execrunid)
        if not is_identifier(stored.result_uuid):
            raise BadRunArgument(f"result uuid {stored.result_uuid[:60]!r} is not an identifier")
        for name in ("result_path", "source_archive_path", "log_path"):
            path = getattr(stored, name)
            if len(path) > PATH_CHARS:
                raise DatabaseRefused(f"{name} is {len(path)} characters; the database holds {PATH_CHARS}: {path}")
        if is_metric_run(execrunid):
            self._save_metric(execrunid, stored)
        else:
            self._save_assessment(execrunid, stored)

    def _save_assessment(self, execrunid: str, stored: StoredResult) -> None:
        db = self.config.assessment_database
        with self._connection() as conn, conn.cursor() as cur:
            if self._result_recorded(cur, execrunid, stored.result_uuid):
                conn.commit()
                return
            charset = self._charset(cur)
            args = (
                execrunid, stored.result_uuid,
                _path(stored.result_path, charset), stored.result_checksum or None,
                _path(stored.source_archive_path, charset), stored.source_archive_checksum or None,
                _path(stored.log_path, charset), stored.log_checksum or None,
                None if stored.weakness_count < 0 else stored.weakness_count,
                # SWAMP passed -1 ("not counted") and so set code_lines = -1 on every
                # run that was not Coverity's; NULL leaves code_lines unknown instead.
                None if stored.lines_of_code < 0 else stored.lines_of_code,
                fit_text(stored.status_out.strip(), STATUS_OUT_CHARS, charset),
                fit_text(stored.status_out_error.strip(), ERROR_MSG_CHARS, charset) or None,
            )
            try:
                answer = call_procedure(cur, f"`{db}`.insert_results", args)
            except pymysql.err.IntegrityError as exc:
                if not (exc.args and exc.args[0] == _DUPLICATE_KEY):
                    raise
                conn.rollback()  # another caller recorded it between our check and our insert
                if self._result_recorded(cur, execrunid, stored.result_uuid):
                    conn.commit()
                    return
                raise
            if answer != "SUCCESS":
                conn.rollback()
                raise DatabaseRefused(f"insert_results for {execrunid}: {answer or 'no answer'}")
            conn.commit()

    def _result_recorded(self, cur: pymysql.cursors.Cursor, execrunid: str, result_uuid: str) -> bool:
        """True when the result row is there for this run; DatabaseRefused when another run has it."""
        cur.execute(f"SELECT execution_record_uuid FROM `{self.config.assessment_database}`.assessment_result"
                    " WHERE assessment_result_uuid = %s", (result_uuid,))
        row = cur.fetchone()
        if row is None:
            return False
        if row[0] != execrunid:
            raise DatabaseRefused(f"assessment_result {result_uuid} already belongs to run {row[0]}, not {execrunid}")
        return True

    def _save_metric(self, execrunid: str, stored: StoredResult) -> None:
        """swamp-assessment.md §3.6 (and §3.5's cloc line counts); a missing row is refused
        (SWAMP's update reported success whatever happened)."""
        table = f"`{self.config.metric_database}`.metric_run"
        with self._connection() as conn, conn.cursor() as cur:
            charset = self._charset(cur)
            values: dict[str, Any] = {
                "file_host": "SWAMP",
                "result_path": _path(stored.result_path, charset),
                "result_checksum": stored.result_checksum or None,
                "status_out": fit_text(stored.status_out.strip(), STATUS_OUT_CHARS, charset),
                "status_out_error_msg": fit_text(stored.status_out_error.strip(), ERROR_MSG_CHARS, charset) or None,
            }
            lines = stored.package_lines
            if lines is not None:
                values.update(pkg_code_lines=lines.code, pkg_comment_lines=lines.comment,
                              pkg_blank_lines=lines.blank, pkg_total_lines=lines.total)
            assignments = ", ".join(f"{name} = %s" for name in values)
            matched = cur.execute(f"UPDATE {table} SET {assignments} WHERE metric_run_uuid = %s",
                                  (*values.values(), execrunid))
            if matched != 1:
                conn.rollback()
                raise DatabaseRefused(f"no metric_run row {execrunid} to store results on")
            conn.commit()


# -- the BOG from view rows -------------------------------------------------------------
def bog_from_rows(execrunid: str, rows: list[dict[str, Any]]) -> dict[str, str]:
    """The BOG keys of ``VIEW_TO_BOG`` from the run's exec_run_view rows.

    Several rows happen when a package version has two dependency rows for the
    run's platform (swamp-assessment.md §4 ⚠; SWAMP took whichever came first):
    their dependency lists are merged, in order, without repeats.  Rows that
    differ in anything else are refused.
    """
    row = dict(rows[0])
    if len(rows) > 1:
        others = [{k: v for k, v in r.items() if k != "dependency_list"} for r in rows]
        if any(other != others[0] for other in others[1:]):
            raise DatabaseRefused(f"exec_run_view has {len(rows)} different rows for {execrunid}")
        words: list[str] = []
        for r in rows:
            for word in (_text(r.get("dependency_list")) or "").split():
                if word not in words:
                    words.append(word)
        row["dependency_list"] = " ".join(words) or None
        log.warning("exec_run_view has %d rows for %s (dependency lists merged: %s)",
                    len(rows), execrunid, row["dependency_list"])
    bog: dict[str, str] = {"execrunid": execrunid, "version": BOG_VERSION}
    for column, key in VIEW_TO_BOG_OPTIONAL:
        value = _text(row.get(column))
        if value is not None:
            bog[key] = _one_line(key, value)
    for column, key in VIEW_TO_BOG:
        raw = row.get(column)
        if column in BOOLEAN_COLUMNS:
            bog[key] = "null" if raw is None else ("true" if _truthy(raw) else "false")
        else:
            value = _text(raw)
            bog[key] = "null" if value is None else _one_line(key, value)
    for column, key in VIEW_TO_CHECKSUM:
        value = _text(row.get(column))
        if value and value.strip():
            bog[key] = value.strip().lower()
    return bog


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _truthy(value: Any) -> bool:
    text = _text(value) or ""
    return text.strip().lower() not in ("", "0", "false", "null")


def _one_line(key: str, value: str) -> str:
    """A value as the BOG can carry it and PreAssessment read it.

    PreAssessment trimmed every value, so surrounding white space goes; SWAMP's
    writer escaped it (``key:=``) in a way its reader did not undo (⚠).  A JSON
    value (``user_cnf``, ``packagebuild_settings``) is re-written on one line,
    which keeps its meaning; SWAMP's ``key:NL=`` form for multi-line values was
    corrupted on reading (⚠).  Other multi-line text is left as it is.
    """
    value = value.strip()
    if key in JSON_KEYS and ("\n" in value or "\r" in value):
        try:
            value = json.dumps(json.loads(value), ensure_ascii=False, separators=(",", ":"))
        except ValueError:
            pass
    return value


# -- fitting values to the database ------------------------------------------------------
#: The five bytes MariaDB's latin1 (cp1252) maps to C1 controls where Python's cp1252 has none.
_LATIN1_EXTRA = frozenset("\x81\x8d\x8f\x90\x9d")


def _representable(char: str, charset: str) -> bool:
    if charset == "latin1":
        if char in _LATIN1_EXTRA:
            return True
        try:
            char.encode("cp1252")
            return True
        except UnicodeEncodeError:
            return False
    if charset in ("utf8", "utf8mb3"):
        return ord(char) <= 0xFFFF
    if charset == "ascii":
        return ord(char) < 128
    return True  # utf8mb4 and the rest: anything a client sends


def fit_text(text: str, limit: int, charset: str) -> str:
    """``text`` with characters ``charset`` cannot hold replaced by '?', cut to ``limit`` characters."""
    if charset not in ("utf8mb4", "utf16", "utf32", "ucs2") or len(text) > limit:
        text = text[:limit]
        if not all(_representable(c, charset) for c in text):
            text = "".join(c if _representable(c, charset) else "?" for c in text)
    return text


def _path(path: str, charset: str) -> str | None:
    if not path:
        return None
    if fit_text(path, PATH_CHARS, charset) != path:
        raise DatabaseRefused(f"the database ({charset}) cannot hold the path {path!r} as it is")
    return path


def _field_value(value: str | int | datetime | None, limit: int | None, charset: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRunArgument(f"a status field value must be text, a number or a datetime, not {type(value).__name__}")
    text = str(value)
    return fit_text(text, min(limit or 128, 128), charset)
