"""The registry's tables (schema version 2).

One ``runs`` table holds every kind of run, keyed by (kind, key); what only
one kind needs lives in that kind's detail table (``viewer_runs``), one row
per run.  Launches, the outbox, history, results and snapshots hang off the
run's id.  A change of any table bumps ``SCHEMA_VERSION`` and adds a step to
``swampd.store.migrations``: a state dir written by an older release is
migrated in place at start, one written by a newer one is refused.
"""
from __future__ import annotations

SCHEMA_VERSION = 2

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        launch_id TEXT NOT NULL,
        token TEXT NOT NULL,
        state INTEGER NOT NULL,
        status TEXT NOT NULL,
        desired TEXT NOT NULL,
        projectid TEXT NOT NULL,
        userid TEXT NOT NULL,
        job_ref TEXT NOT NULL,
        submitted_at REAL NOT NULL,
        launched_at REAL NOT NULL,
        stop_requested_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        attempts INTEGER NOT NULL,
        observation TEXT NOT NULL,
        UNIQUE (kind, key)
    )""",
    "CREATE INDEX IF NOT EXISTS runs_state ON runs (kind, state)",
    "CREATE INDEX IF NOT EXISTS runs_launch ON runs (launch_id)",
    "CREATE INDEX IF NOT EXISTS runs_project ON runs (projectid)",
    """CREATE TABLE IF NOT EXISTS viewer_runs (
        run_id INTEGER PRIMARY KEY REFERENCES runs (id),
        viewer TEXT NOT NULL,
        execrunid TEXT NOT NULL,
        apikey TEXT NOT NULL,
        url_uuid TEXT NOT NULL,
        viewer_uuid TEXT NOT NULL,
        db_path TEXT NOT NULL,
        db_checksum TEXT NOT NULL,
        vmip TEXT NOT NULL,
        url TEXT NOT NULL,
        ready_at REAL NOT NULL,
        last_request_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS assessment_runs (
        run_id INTEGER PRIMARY KEY REFERENCES runs (id),
        execrunid TEXT NOT NULL,
        source TEXT NOT NULL,
        tool TEXT NOT NULL,
        package_path TEXT NOT NULL,
        package_sha512 TEXT NOT NULL,
        tool_path TEXT NOT NULL,
        tool_sha512 TEXT NOT NULL,
        bog TEXT NOT NULL,
        notify INTEGER NOT NULL,
        results TEXT NOT NULL,
        result_uuid TEXT NOT NULL,
        outcome TEXT NOT NULL,
        weaknesses INTEGER NOT NULL,
        queued_at REAL NOT NULL,
        started_at REAL NOT NULL,
        collecting_at REAL NOT NULL,
        finished_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS launches (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        epoch INTEGER NOT NULL,
        launch_id TEXT NOT NULL,
        token TEXT NOT NULL,
        job_ref TEXT NOT NULL,
        submitted_at REAL NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, epoch)
    )""",
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        epoch INTEGER NOT NULL,
        effect TEXT NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_at REAL NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL,
        done_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (run_id) WHERE done_at IS NULL",
    """CREATE TABLE IF NOT EXISTS history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        epoch INTEGER NOT NULL,
        at REAL NOT NULL,
        from_state INTEGER,
        state INTEGER NOT NULL,
        status TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS history_run ON history (run_id)",
    """CREATE TABLE IF NOT EXISTS results (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        epoch INTEGER NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        uploaded_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS results_run ON results (run_id)",
    """CREATE TABLE IF NOT EXISTS snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        epoch INTEGER NOT NULL,
        viewer_uuid TEXT NOT NULL,
        path TEXT NOT NULL,
        checksum TEXT NOT NULL,
        platform TEXT NOT NULL,
        version TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS snapshots_run ON snapshots (run_id)",
    # Upload bookkeeping of each result (see agentmonitor.uploads).
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
