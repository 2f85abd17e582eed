"""Version 1 (viewer-only tables keyed by project and viewer) to version 2 (runs).

Every viewer row becomes a ``vrun`` run with its ``viewer_runs`` detail and
its current launch in ``launches``; outbox, history, results and snapshots
are re-keyed from (projectid, viewer) to the run's id, keeping their ids,
order and pending state, so a daemon restarted on a migrated state dir
adopts every viewer unchanged (same epoch, URL, token) and performs the
same pending side effects.  ``uploads`` is keyed by result id and keeps its
rows as they are.
"""
from __future__ import annotations

import sqlite3

from swampd.store.schema import SCHEMA

#: Effect names that changed: version 1's snapshot check is version 2's restore step.
RENAMED_EFFECTS = {"verify_snapshot": "restore"}
_V1_INDEXES = ("viewers_state", "viewers_launch", "outbox_pending", "history_key")
_CHILDREN = ("outbox", "history", "results", "snapshots")


def step(conn: sqlite3.Connection) -> None:
    for index in _V1_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for table in _CHILDREN:
        conn.execute(f"ALTER TABLE {table} RENAME TO v1_{table}")
    for statement in SCHEMA:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO runs (kind, key, epoch, launch_id, token, state, status, desired, projectid, userid,"
        " job_ref, submitted_at, launched_at, stop_requested_at, updated_at, attempts, observation)"
        " SELECT 'vrun', execrunid, epoch, launch_id, token, state, status, desired, projectid, userid, job_ref,"
        " submitted_at, launched_at, stop_requested_at, updated_at, CASE WHEN job_ref != '' THEN 1 ELSE 0 END,"
        " observation FROM viewers ORDER BY rowid")
    conn.execute(
        "INSERT INTO viewer_runs (run_id, viewer, execrunid, apikey, url_uuid, viewer_uuid, db_path, db_checksum,"
        " vmip, url, ready_at, last_request_at)"
        " SELECT r.id, v.viewer, v.execrunid, v.apikey, v.url_uuid, v.viewer_uuid, v.db_path, v.db_checksum,"
        " v.vmip, v.url, v.ready_at, v.last_request_at FROM viewers v JOIN runs r"
        " ON r.kind = 'vrun' AND r.key = v.execrunid")
    conn.execute(
        "INSERT INTO launches (run_id, epoch, launch_id, token, job_ref, submitted_at, created_at)"
        " SELECT r.id, v.epoch, v.launch_id, v.token, v.job_ref, v.submitted_at, v.launched_at"
        " FROM viewers v JOIN runs r ON r.kind = 'vrun' AND r.key = v.execrunid WHERE v.epoch > 0")
    run_of = "JOIN viewers v ON v.projectid = o.projectid AND v.viewer = o.viewer JOIN runs r ON r.key = v.execrunid"
    effect = "CASE o.kind " + " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in RENAMED_EFFECTS.items()) \
        + " ELSE o.kind END"
    conn.execute(
        "INSERT INTO outbox (id, run_id, epoch, effect, payload, attempts, next_at, last_error, created_at, done_at)"
        f" SELECT o.id, r.id, o.epoch, {effect}, o.payload, o.attempts, o.next_at, o.last_error, o.created_at,"
        f" o.done_at FROM v1_outbox o {run_of} ORDER BY o.id")
    conn.execute(
        "INSERT INTO history (id, run_id, epoch, at, from_state, state, status, source, detail)"
        f" SELECT o.id, r.id, o.epoch, o.at, NULL, o.state, o.status, o.source, o.detail FROM v1_history o {run_of}"
        " ORDER BY o.id")
    conn.execute(
        "INSERT INTO results (id, run_id, epoch, payload, created_at, uploaded_at)"
        f" SELECT o.id, r.id, o.epoch, o.payload, o.created_at, o.uploaded_at FROM v1_results o {run_of}"
        " ORDER BY o.id")
    conn.execute(
        "INSERT INTO snapshots (id, run_id, epoch, viewer_uuid, path, checksum, platform, version, created_at)"
        f" SELECT o.id, r.id, o.epoch, o.viewer_uuid, o.path, o.checksum, o.platform, o.version, o.created_at"
        f" FROM v1_snapshots o {run_of} ORDER BY o.id")
    for table in _CHILDREN:
        conn.execute(f"DROP TABLE v1_{table}")
    conn.execute("DROP TABLE viewers")
