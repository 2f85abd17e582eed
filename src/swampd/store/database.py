"""The durable registry: viewers, the outbox of side effects, and history.

SQLite in WAL mode in the state dir.  Every change goes through
``Store.transaction()``, which takes SQLite's write lock at BEGIN (``BEGIN
IMMEDIATE``), so a read-check-write inside one transaction is a true
compare-and-set: two claimants of the same key are serialised and the second
sees the first one's record.  The lock lives in the file, so it holds across
threads, processes and restarts alike.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from swampd.store.records import (
    VIEWER_COLUMNS,
    HistoryEntry,
    OutboxItem,
    ViewerRecord,
    record_from_row,
    record_to_row,
)
from swampd.statedir import secure_registry
from swampd.store.schema import SCHEMA, SCHEMA_VERSION

_OUTBOX_COLUMNS = "id, projectid, viewer, epoch, kind, payload, attempts, next_at, last_error"


class Transaction:
    """The operations allowed inside one write transaction."""

    def __init__(self, conn: sqlite3.Connection, change_effects: tuple[str, ...] = ()) -> None:
        self._conn = conn
        self._change_effects = change_effects

    def record_change(self, record: ViewerRecord, source: str, detail: str = "") -> None:
        """Save a state change: the record, its history line, and the side
        effects every change needs (collector ads, database status rows),
        all in this one transaction."""
        self.put_viewer(record)
        self.append_history(record, source, detail)
        for kind in self._change_effects:
            self.enqueue(record, kind, {"state": record.state})

    # -- viewers ---------------------------------------------------------
    def get_viewer(self, projectid: str, viewer: str) -> ViewerRecord | None:
        row = self._conn.execute(
            f"SELECT {', '.join(VIEWER_COLUMNS)} FROM viewers WHERE projectid=? AND viewer=?",
            (projectid, viewer),
        ).fetchone()
        return record_from_row(row) if row else None

    def get_viewer_by_execrunid(self, execrunid: str) -> ViewerRecord | None:
        row = self._conn.execute(
            f"SELECT {', '.join(VIEWER_COLUMNS)} FROM viewers WHERE execrunid=?", (execrunid,)
        ).fetchone()
        return record_from_row(row) if row else None

    def put_viewer(self, record: ViewerRecord) -> None:
        record.updated_at = time.time()
        placeholders = ", ".join("?" for _ in VIEWER_COLUMNS)
        self._conn.execute(
            f"INSERT OR REPLACE INTO viewers ({', '.join(VIEWER_COLUMNS)}) VALUES ({placeholders})",
            record_to_row(record),
        )

    # -- outbox ----------------------------------------------------------
    def enqueue(self, record: ViewerRecord, kind: str, payload: dict[str, Any] | None = None) -> int:
        """Record a side effect to perform for ``record``'s current launch."""
        cur = self._conn.execute(
            "INSERT INTO outbox (projectid, viewer, epoch, kind, payload, attempts, next_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, 0, 0, ?)",
            (record.projectid, record.viewer, record.epoch, kind, json.dumps(payload or {}), time.time()),
        )
        return int(cur.lastrowid or 0)

    def has_pending(self, record: ViewerRecord, kind: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM outbox WHERE projectid=? AND viewer=? AND epoch=? AND kind=? AND done_at IS NULL",
            (record.projectid, record.viewer, record.epoch, kind),
        ).fetchone()
        return row is not None

    def complete(self, item_id: int) -> None:
        self._conn.execute("UPDATE outbox SET done_at=? WHERE id=?", (time.time(), item_id))

    def retry_later(self, item_id: int, error: str, next_at: float) -> None:
        self._conn.execute(
            "UPDATE outbox SET attempts=attempts+1, last_error=?, next_at=? WHERE id=?",
            (error[:2000], next_at, item_id),
        )

    # -- history and results ---------------------------------------------
    def append_history(self, record: ViewerRecord, source: str, detail: str = "") -> None:
        self._conn.execute(
            "INSERT INTO history (projectid, viewer, epoch, at, state, status, source, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.projectid, record.viewer, record.epoch, time.time(), record.state,
             record.status, source, detail[:2000]),
        )

    def add_snapshot(self, record: ViewerRecord, path: str, checksum: str, platform: str, version: str) -> int:
        """Record a saved viewer database handed over by ``vruntask finish``."""
        cur = self._conn.execute(
            "INSERT INTO snapshots (projectid, viewer, epoch, viewer_uuid, path, checksum, platform, version,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.projectid, record.viewer, record.epoch, record.viewer_uuid, path, checksum, platform,
             version, time.time()),
        )
        return int(cur.lastrowid or 0)

    def latest_snapshot(self, projectid: str, viewer: str) -> dict[str, Any] | None:
        """The last viewer database recorded for this key, if any."""
        row = self._conn.execute(
            "SELECT id, epoch, viewer_uuid, path, checksum, platform, version FROM snapshots"
            " WHERE projectid=? AND viewer=? ORDER BY id DESC LIMIT 1",
            (projectid, viewer),
        ).fetchone()
        keys = ("id", "epoch", "viewer_uuid", "path", "checksum", "platform", "version")
        return dict(zip(keys, row)) if row else None

    def set_upload(self, result_id: int, **fields: Any) -> None:
        """Create or update the upload bookkeeping of one result (see agentmonitor.uploads)."""
        row = self._conn.execute("SELECT 1 FROM uploads WHERE result_id=?", (result_id,)).fetchone()
        fields["updated_at"] = time.time()
        if "before_ids" in fields:
            fields["before_ids"] = json.dumps(fields["before_ids"])
        if row is None:
            base: dict[str, Any] = {"state": "pending", "fingerprint": "", "epoch": 0, "attempt": "",
                                    "project_id": None, "before_ids": "[]", "analysis_id": None,
                                    "job_id": "", "detail": ""}
            base.update(fields)
            names = ", ".join(base)
            self._conn.execute(f"INSERT INTO uploads (result_id, {names}) VALUES (?, {', '.join('?' for _ in base)})",
                               (result_id, *base.values()))
        else:
            sets = ", ".join(f"{name}=?" for name in fields)
            self._conn.execute(f"UPDATE uploads SET {sets} WHERE result_id=?", (*fields.values(), result_id))
        if fields.get("state") == "done":
            self._conn.execute("UPDATE results SET uploaded_at=? WHERE id=?", (time.time(), result_id))

    def add_results(self, record: ViewerRecord, results: list[dict[str, Any]]) -> None:
        """Keep the results a launch must upload; the daemon owns them from now on."""
        for result in results:
            self._conn.execute(
                "INSERT INTO results (projectid, viewer, epoch, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                (record.projectid, record.viewer, record.epoch, json.dumps(result), time.time()),
            )


class Store:
    """Opens the registry file and hands out per-thread connections."""

    def __init__(self, path: Path, change_effects: tuple[str, ...] = ()) -> None:
        """``change_effects``: outbox kinds enqueued with every state change."""
        self.path = Path(path)
        self.change_effects = change_effects
        self._local = threading.local()
        self._init_schema()

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def _init_schema(self) -> None:
        secure_registry(self.path)  # 0600, ours, never through a symlink (issue 9 finding 4)
        conn = self._connect()
        with self.transaction():
            for statement in SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta (name, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: registry schema version {row[0]} is not {SCHEMA_VERSION}; "
                    "this swampd cannot use it"
                )

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction; committed on success, rolled back on error."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield Transaction(conn, self.change_effects)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- reads outside a transaction --------------------------------------
    def get_viewer(self, projectid: str, viewer: str) -> ViewerRecord | None:
        return Transaction(self._connect()).get_viewer(projectid, viewer)

    def list_viewers(self) -> list[ViewerRecord]:
        rows = self._connect().execute(
            f"SELECT {', '.join(VIEWER_COLUMNS)} FROM viewers ORDER BY projectid, viewer"
        ).fetchall()
        return [record_from_row(r) for r in rows]

    def list_keys_in_states(self, states: frozenset[int] | set[int]) -> list[tuple[str, str]]:
        marks = ", ".join("?" for _ in states)
        rows = self._connect().execute(
            f"SELECT projectid, viewer FROM viewers WHERE state IN ({marks})", tuple(int(s) for s in states)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def keys_of_launches(self, launch_ids: set[str], states: frozenset[int] | set[int]) -> list[tuple[str, str]]:
        """Keys whose current launch is one of ``launch_ids`` and whose state is in ``states``."""
        conn, ids, found = self._connect(), sorted(launch_ids), []
        state_marks = ", ".join("?" for _ in states)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = conn.execute(
                f"SELECT projectid, viewer FROM viewers WHERE launch_id IN ({', '.join('?' for _ in chunk)})"
                f" AND state IN ({state_marks})",
                (*chunk, *(int(s) for s in states)),
            ).fetchall()
            found += [(r[0], r[1]) for r in rows]
        return found

    def outbox_of(self, projectid: str, viewer: str) -> list[OutboxItem]:
        """The key's pending outbox items, due or not, oldest first."""
        rows = self._connect().execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE projectid=? AND viewer=? AND done_at IS NULL ORDER BY id",
            (projectid, viewer),
        ).fetchall()
        return [OutboxItem.from_row(r) for r in rows]

    def pending_outbox(self) -> list[OutboxItem]:
        rows = self._connect().execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE done_at IS NULL ORDER BY id"
        ).fetchall()
        return [OutboxItem.from_row(r) for r in rows]

    def history(self, projectid: str, viewer: str, limit: int = 100) -> list[HistoryEntry]:
        rows = self._connect().execute(
            "SELECT at, epoch, state, status, source FROM history WHERE projectid=? AND viewer=?"
            " ORDER BY id DESC LIMIT ?",
            (projectid, viewer, limit),
        ).fetchall()
        return [HistoryEntry(*r) for r in reversed(rows)]

    def results(self, projectid: str, viewer: str) -> list[dict[str, Any]]:
        rows = self._connect().execute(
            "SELECT epoch, payload FROM results WHERE projectid=? AND viewer=? ORDER BY id",
            (projectid, viewer),
        ).fetchall()
        return [{"epoch": epoch, **json.loads(payload)} for epoch, payload in rows]

    def uploads(self, projectid: str, viewer: str) -> list[dict[str, Any]]:
        """Every result of this key with its upload bookkeeping (state 'pending' when none yet)."""
        rows = self._connect().execute(
            "SELECT r.id, r.epoch, r.payload, u.state, u.fingerprint, u.epoch, u.attempt, u.project_id,"
            " u.before_ids, u.analysis_id, u.job_id, u.detail FROM results r"
            " LEFT JOIN uploads u ON u.result_id = r.id WHERE r.projectid=? AND r.viewer=? ORDER BY r.id",
            (projectid, viewer),
        ).fetchall()
        out = []
        for (rid, epoch, payload, state, fingerprint, up_epoch, attempt, project_id, before_ids, analysis_id,
             job_id, detail) in rows:
            out.append({
                "result_id": rid, "result_epoch": epoch, "result": json.loads(payload),
                "state": state or "pending", "fingerprint": fingerprint or "", "epoch": up_epoch or 0,
                "attempt": attempt or "", "project_id": project_id,
                "before_ids": json.loads(before_ids) if before_ids else [],
                "analysis_id": analysis_id, "job_id": job_id or "", "detail": detail or "",
            })
        return out

    def snapshots(self, projectid: str, viewer: str) -> list[dict[str, Any]]:
        rows = self._connect().execute(
            "SELECT id, epoch, viewer_uuid, path, checksum, platform, version, created_at FROM snapshots"
            " WHERE projectid=? AND viewer=? ORDER BY id",
            (projectid, viewer),
        ).fetchall()
        keys = ("id", "epoch", "viewer_uuid", "path", "checksum", "platform", "version", "created_at")
        return [dict(zip(keys, r)) for r in rows]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
