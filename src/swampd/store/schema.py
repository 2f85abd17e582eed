"""The registry's tables.  Bump SCHEMA_VERSION when a table changes."""
from __future__ import annotations

SCHEMA_VERSION = 1

SCHEMA: tuple[str, ...] = (
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
