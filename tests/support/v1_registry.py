"""A registry as release 1 (schema version 1, viewer-only tables) wrote it: the migration's input.

Release 1 kept viewers in a ``viewers`` table keyed by (projectid, viewer)
and keyed outbox, history, results and snapshots the same way.  This module
writes such a file with release 1's own table definitions and the rows its
code wrote for a small facility: a READY viewer, a LAUNCHING one whose job
was submitted, a SHUTDOWN one with a saved database, pending outbox rows of
every kind (including release 1's ``verify_snapshot``), results with upload
bookkeeping, and history.  It is a generator rather than a binary blob so
that what the migration is tested against can be read.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

V1_SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS viewers (
        projectid TEXT NOT NULL,
        viewer TEXT NOT NULL,
        execrunid TEXT NOT NULL UNIQUE,
        epoch INTEGER NOT NULL,
        launch_id TEXT NOT NULL,
        token TEXT NOT NULL,
        apikey TEXT NOT NULL,
        url_uuid TEXT NOT NULL,
        state INTEGER NOT NULL,
        status TEXT NOT NULL,
        desired TEXT NOT NULL,
        userid TEXT NOT NULL,
        viewer_uuid TEXT NOT NULL,
        db_path TEXT NOT NULL,
        db_checksum TEXT NOT NULL,
        vmip TEXT NOT NULL,
        url TEXT NOT NULL,
        job_ref TEXT NOT NULL,
        submitted_at REAL NOT NULL,
        launched_at REAL NOT NULL,
        ready_at REAL NOT NULL,
        last_request_at REAL NOT NULL,
        stop_requested_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        observation TEXT NOT NULL,
        PRIMARY KEY (projectid, viewer)
    )""",
    "CREATE INDEX IF NOT EXISTS viewers_state ON viewers (state)",
    "CREATE INDEX IF NOT EXISTS viewers_launch ON viewers (launch_id)",
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        projectid TEXT NOT NULL,
        viewer TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_at REAL NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL,
        done_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (projectid, viewer) WHERE done_at IS NULL",
    """CREATE TABLE IF NOT EXISTS history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        projectid TEXT NOT NULL,
        viewer TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        at REAL NOT NULL,
        state INTEGER NOT NULL,
        status TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS history_key ON history (projectid, viewer)",
    """CREATE TABLE IF NOT EXISTS results (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        projectid TEXT NOT NULL,
        viewer TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        uploaded_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        projectid TEXT NOT NULL,
        viewer TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        viewer_uuid TEXT NOT NULL,
        path TEXT NOT NULL,
        checksum TEXT NOT NULL,
        platform TEXT NOT NULL,
        version TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    # Upload bookkeeping of each result (added without a version bump: a new
    # table created if missing, nothing existing changes shape).
    """CREATE TABLE IF NOT EXISTS uploads (
        result_id INTEGER PRIMARY KEY,
        state TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        attempt TEXT NOT NULL,
        project_id INTEGER,
        before_ids TEXT NOT NULL,
        analysis_id INTEGER,
        job_id TEXT NOT NULL,
        detail TEXT NOT NULL,
        updated_at REAL NOT NULL
    )""",
)

V1_COLUMNS = ("projectid", "viewer", "execrunid", "epoch", "launch_id", "token", "apikey", "url_uuid", "state",
              "status", "desired", "userid", "viewer_uuid", "db_path", "db_checksum", "vmip", "url", "job_ref",
              "submitted_at", "launched_at", "ready_at", "last_request_at", "stop_requested_at", "updated_at",
              "observation")


@dataclass
class V1State:
    """What was written, so a test can compare the migrated registry with it."""

    path: Path
    viewers: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: list[tuple[str, str, str]] = field(default_factory=list)  # (execrunid, kind, payload)
    snapshot_path: str = ""


def viewer_row(projectid: str, viewer: str, epoch: int, state: int, status: str, now: float,
               **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "projectid": projectid, "viewer": viewer, "execrunid": f"vrun_{projectid}_{viewer}", "epoch": epoch,
        "launch_id": f"{epoch:02d}{projectid[:6]:0>6}".ljust(32, "a")[:32], "token": f"token-{projectid}-{epoch}",
        "apikey": f"apikey-{projectid}", "url_uuid": f"proxy-{projectid}", "state": state, "status": status,
        "desired": "running", "userid": "user-1", "viewer_uuid": f"vi-{projectid}", "db_path": "", "db_checksum": "",
        "vmip": "", "url": "", "job_ref": "", "submitted_at": 0.0, "launched_at": now - 600, "ready_at": 0.0,
        "last_request_at": now - 600, "stop_requested_at": 0.0, "updated_at": now - 60, "observation": "",
    }
    row.update(extra)
    return row


def write_v1_registry(path: Path, now: float | None = None) -> V1State:
    """Write a release-1 registry at ``path`` (mode 0600, as release 1 made it)."""
    now = time.time() if now is None else now
    path.touch(mode=0o600)
    state = V1State(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE")
    for statement in V1_SCHEMA:
        conn.execute(statement)
    conn.execute("INSERT INTO meta (name, value) VALUES ('schema_version', '1')")
    ready = viewer_row("proj-ready", "CodeDX", 3, 2, "Viewer is up", now, vmip="127.0.0.1:40411",
                       url="http://127.0.0.1:40411/", job_ref="job-ready", submitted_at=now - 590, ready_at=now - 500)
    launching = viewer_row("proj-launching", "CodeDX", 1, 1, "Waiting for the viewer machine", now,
                           job_ref="job-launching", submitted_at=now - 30, launched_at=now - 40)
    shutdown = viewer_row("proj-saved", "CodeDX", 2, -3, "Viewer shutdown completed", now,
                          db_path="/swamp/SCAProjects/proj-saved/V-Runs/vi-proj-saved/codedx_viewerdb_1.tar.gz",
                          db_checksum="ab" * 64, job_ref="job-saved", submitted_at=now - 900)
    for row in (ready, launching, shutdown):
        conn.execute(f"INSERT INTO viewers ({', '.join(V1_COLUMNS)}) VALUES ({', '.join('?' for _ in V1_COLUMNS)})",
                     tuple(row[c] for c in V1_COLUMNS))
        state.viewers[row["execrunid"]] = row
    history = [(ready, 1, "Launching viewer", "api"), (ready, 2, "Viewer is up", "node"),
               (launching, 1, "Launching viewer", "api"), (shutdown, -3, "Viewer shutdown completed", "reconciler")]
    for row, code, status, source in history:
        conn.execute("INSERT INTO history (projectid, viewer, epoch, at, state, status, source, detail)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (row["projectid"], row["viewer"], row["epoch"], now - 100, code, status, source, status))
    outbox = [
        (ready, "advertise", {"state": 2}, None),
        (ready, "upload", {}, None),
        (launching, "advertise", {"state": 1}, now - 35),  # done
        (launching, "verify_snapshot", {"path": "/swamp/db.tar.gz", "checksum": "cd" * 64}, now - 38),  # done
        (launching, "submit", {}, now - 30),  # done
        (shutdown, "store_viewer", {"path": shutdown["db_path"], "checksum": shutdown["db_checksum"],
                                    "platform": "", "version": "3.5.5"}, None),
    ]
    for row, kind, payload, done_at in outbox:
        conn.execute("INSERT INTO outbox (projectid, viewer, epoch, kind, payload, attempts, next_at, last_error,"
                     " created_at, done_at) VALUES (?, ?, ?, ?, ?, 2, 0, 'earlier failure', ?, ?)",
                     (row["projectid"], row["viewer"], row["epoch"], kind, json.dumps(payload), now - 50, done_at))
        if done_at is None:
            state.pending.append((row["execrunid"], kind, json.dumps(payload)))
    conn.execute("INSERT INTO snapshots (projectid, viewer, epoch, viewer_uuid, path, checksum, platform, version,"
                 " created_at) VALUES (?, ?, ?, ?, ?, ?, '', '3.5.5', ?)",
                 (shutdown["projectid"], shutdown["viewer"], 2, shutdown["viewer_uuid"], shutdown["db_path"],
                  shutdown["db_checksum"], now - 200))
    state.snapshot_path = shutdown["db_path"]
    result = {"package": "zlib", "package_type": "C/C++", "tool_name": "cppcheck",
              "files": ["/swamp/results/zlib/parsed.xml"], "source_archive": ""}
    conn.execute("INSERT INTO results (projectid, viewer, epoch, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                 (ready["projectid"], ready["viewer"], 3, json.dumps(result), now - 400))
    conn.execute("INSERT INTO uploads (result_id, state, fingerprint, epoch, attempt, project_id, before_ids,"
                 " analysis_id, job_id, detail, updated_at) VALUES (1, 'posted', 'fp', 3, 'swampd-1-abc', 7, '[1]',"
                 " 12, 'job-12', '', ?)", (now - 300,))
    conn.execute("COMMIT")
    conn.close()
    return state
