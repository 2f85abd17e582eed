"""SWAMP's MariaDB: the connection and error rules, and the ``viewer_store`` procedures and rows.

``swampd.clients.assessment_db`` (the assessment and metric runs) uses the
same ``connection`` and ``call_procedure``, so both kinds of call fail the
same way.

One short connection per call, with connect and read timeouts, so that a
database that is down or hung costs a caller seconds, never a stuck worker,
and nothing has to notice that a pooled connection went stale.  Two kinds of
failure are kept apart because the callers treat them differently:
``DatabaseUnavailable`` (cannot reach it, lost the connection, server
shutting down: retry later) and ``DatabaseRefused`` (the database answered
no: retrying the same call will not help).
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import pymysql
import pymysql.cursors
import pymysql.err

from swampd.config import MariaDBConfig

log = logging.getLogger(__name__)

#: Server error numbers an operator fixes: access denied, unknown database, missing procedure.
_MISCONFIGURED_ERRNOS = frozenset({1044, 1045, 1049, 1142, 1146, 1305, 1370})
#: Server error numbers that mean "the database is not there right now".
_UNAVAILABLE_ERRNOS = frozenset({
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1213,  # deadlock
    2002, 2003, 2006, 2013, 2055,  # cannot connect / gone away / lost connection
    1927,  # connection was killed
})


class DatabaseError(Exception):
    """A call to MariaDB did not succeed."""


class DatabaseUnavailable(DatabaseError):
    """MariaDB could not be reached or dropped the call; try again later."""


class DatabaseMisconfigured(DatabaseUnavailable):
    """MariaDB refused us in a way an operator fixes (grants, password, missing
    procedure); retried like an outage so the work is done once it is fixed."""


class DatabaseRefused(DatabaseError):
    """MariaDB answered, and the answer was no (an error or a non-SUCCESS return_string)."""


@dataclass(frozen=True)
class LaunchRow:
    """One ``viewer_launch_history`` row."""

    viewer_version_uuid: str
    project_uuid: str
    viewer_instance_uuid: str
    user_uuid: str
    run_date: str  # 'YYYY-MM-DD HH:MM:SS', UTC as SWAMP's servers keep it


def read_password(path: str) -> str:
    """The password from ``path``, which must be readable by its owner only."""
    if not path:
        return ""
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="utf-8") as fh:
            password = fh.read().strip()
    except OSError as exc:
        raise DatabaseRefused(f"mariadb.password_file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise DatabaseRefused(f"mariadb.password_file {path}: must not be readable by group or others")
    return password


class ViewerStore:
    """SWAMP's ``viewer_store`` database, as the daemon uses it."""

    def __init__(self, config: MariaDBConfig) -> None:
        self.config = config

    @contextmanager
    def _connection(self) -> Iterator[pymysql.connections.Connection]:
        with connection(self.config, self.config.database) as conn:
            yield conn

    def ping(self) -> None:
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")

    def store_viewer(self, viewer_instance_uuid: str, path: str, checksum: str,
                     platform: str, version: str) -> None:
        """``CALL store_viewer(...)``; anything but ``SUCCESS`` is DatabaseRefused."""
        self._call_expecting_success("store_viewer", (viewer_instance_uuid, path, checksum, platform, version))

    def update_status(self, viewer_instance_uuid: str, status: str, status_code: int,
                      vm_ip_address: str, proxy_url: str) -> None:
        """``CALL update_viewer_instance(...)``: the legacy status columns the web may read."""
        self._call_expecting_success(
            "update_viewer_instance",
            (viewer_instance_uuid, status[:100], status_code, vm_ip_address[:50], proxy_url[:100]))

    def _call_expecting_success(self, procedure: str, args: tuple[object, ...]) -> None:
        """``CALL procedure(args..., @out)`` of SWAMP's kind; anything but ``SUCCESS`` is DatabaseRefused.

        ``procedure`` is one of our own literal names, never caller input.
        """
        with self._connection() as conn, conn.cursor() as cur:
            answer = call_procedure(cur, procedure, args)
            conn.commit()
        if answer != "SUCCESS":
            raise DatabaseRefused(f"{procedure} returned {answer or 'nothing'!r}")

    def add_launch(self, row: LaunchRow) -> bool:
        """Insert a ``viewer_launch_history`` row unless that launch is already there.

        Idempotent, because the outbox may run this again after a crash: a
        launch is (instance, run_date, no result uuid).  True when inserted.
        """
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM viewer_launch_history WHERE viewer_instance_uuid=%s AND run_date=%s"
                " AND assessment_result_uuid IS NULL",
                (row.viewer_instance_uuid, row.run_date))
            (count,) = cur.fetchone()
            if count:
                conn.commit()
                return False
            cur.execute(
                "INSERT INTO viewer_launch_history (viewer_version_uuid, project_uuid, viewer_instance_uuid,"
                " assessment_result_uuid, user_uuid, run_date) VALUES (%s, %s, %s, NULL, %s, %s)",
                (row.viewer_version_uuid, row.project_uuid, row.viewer_instance_uuid, row.user_uuid or None,
                 row.run_date))
            conn.commit()
        return True


@contextmanager
def connection(cfg: MariaDBConfig, database: str, init_command: str | None = None,
               client_flag: int = 0) -> Iterator[pymysql.connections.Connection]:
    """One short connection to ``database`` with the configured account and timeouts.

    Not autocommitting: the caller commits.  MySQL errors leaving the block
    are rolled back and translated into ``DatabaseUnavailable`` (retry) or
    ``DatabaseRefused`` (the database said no).
    """
    kwargs: dict[str, Any] = dict(
        user=cfg.user, password=read_password(cfg.password_file), database=database,
        connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout,
        write_timeout=cfg.read_timeout, autocommit=False, charset="utf8mb4",
        init_command=init_command, client_flag=client_flag,
    )
    if cfg.unix_socket:
        kwargs["unix_socket"] = cfg.unix_socket
    else:
        kwargs.update(host=cfg.host, port=cfg.port)
    try:
        conn = pymysql.connect(**kwargs)
    except pymysql.err.MySQLError as exc:
        raise _translate(exc, "connect") from None
    try:
        yield conn
    except pymysql.err.MySQLError as exc:
        try:
            conn.rollback()
        except pymysql.err.MySQLError:
            pass
        raise _translate(exc, "call") from None
    finally:
        try:
            conn.close()
        except pymysql.err.MySQLError:
            pass


def call_procedure(cur: pymysql.cursors.Cursor, procedure: str, args: tuple[object, ...]) -> str:
    """``CALL procedure(args..., @swampd_rs)`` and its ``return_string``, trimmed ('' for NULL).

    ``procedure`` is one of our own literal names (schema-qualified or not), never caller input.
    """
    marks = ", ".join("%s" for _ in args)
    cur.execute(f"CALL {procedure}({marks}{', ' if args else ''}@swampd_rs)", args)
    while cur.nextset():
        pass
    cur.execute("SELECT @swampd_rs")
    row = cur.fetchone()
    answer = (row[0] if row else None) or ""
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    return str(answer).strip()


def _translate(exc: pymysql.err.MySQLError, during: str) -> DatabaseError:
    errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    message = exc.args[1] if len(exc.args) > 1 else str(exc)
    if isinstance(exc, (pymysql.err.InterfaceError,)) or errno in _UNAVAILABLE_ERRNOS:
        return DatabaseUnavailable(f"MariaDB unavailable ({during}): {errno} {message}")
    if errno in _MISCONFIGURED_ERRNOS:
        return DatabaseMisconfigured(f"MariaDB refused the {during} (check grants and settings): {errno} {message}")
    if isinstance(exc, pymysql.err.OperationalError) and errno == 0:
        return DatabaseUnavailable(f"MariaDB unavailable ({during}): {message}")
    return DatabaseRefused(f"MariaDB refused the {during}: {errno} {message}")
