"""The durable registry: runs of every kind, their launches, the outbox, history.

SQLite in WAL mode in the state dir.  Every change goes through
``Store.transaction()``, which takes SQLite's write lock at BEGIN (``BEGIN
IMMEDIATE``), so a read-check-write inside one transaction is a true
compare-and-set: two claimants of the same run are serialised and the second
sees the first one's record.  The lock lives in the file, so it holds across
threads, processes and restarts alike.

``Transaction.transition`` is the one place a run's state changes: it writes
the record, a history row with the old state, the new one, the reason and
the source, and the side effects every change of that kind needs, all in
the caller's transaction.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, NamedTuple

from swampd import metrics
from swampd.identifiers import execrunid as viewer_execrunid
from swampd.store.migrations import MigrationError, migrate
from swampd.store.records import (
    RECORD_KINDS,
    RUN_COLUMNS,
    HistoryEntry,
    LaunchEntry,
    OutboxItem,
    RunRecord,
    ViewerRecord,
    record_class,
)
from swampd.statedir import secure_registry
from swampd.store.schema import SCHEMA, SCHEMA_VERSION

log = logging.getLogger(__name__)

_OUTBOX_COLUMNS = "id, run_id, epoch, effect, payload, attempts, next_at, last_error"
_RUN_NAMES = tuple(c for c in RUN_COLUMNS if c != "id")
_RUN_SELECT = ", ".join(f"r.{c}" for c in _RUN_NAMES)
#: Run kind -> outbox effects enqueued with every state change of a run of that kind.
ChangeEffects = Mapping[str, tuple[str, ...]]


class RegistryError(RuntimeError):
    """The registry file cannot be used by this release."""


def _chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class RunLabel(NamedTuple):
    key: str
    epoch: int
    launch_id: str


class _Reader:
    """Queries shared by transactions and the store's plain reads."""

    _conn: sqlite3.Connection

    def _records(self, where: str = "", params: Iterable[Any] = (), kinds: Iterable[str] | None = None,
                 order: str = "r.id") -> list[RunRecord]:
        found: list[RunRecord] = []
        for kind in (kinds if kinds is not None else RECORD_KINDS):
            cls = record_class(kind)
            for row in self._conn.execute(_select(cls, where, order), (kind, *params)):
                found.append(_record_from_row(cls, row))
        return found

    def get_run(self, kind: str, key: str) -> RunRecord | None:
        found = self._records("r.key = ?", (key,), kinds=(kind,))
        return found[0] if found else None

    def run_label(self, run_id: int) -> RunLabel | None:
        """What a log line says of a run (its key, epoch and launch), without reading its record."""
        row = self._conn.execute("SELECT key, epoch, launch_id FROM runs WHERE id = ?", (run_id,)).fetchone()
        return RunLabel(*row) if row is not None else None

    def get_run_by_id(self, run_id: int) -> RunRecord | None:
        kind = self.kind_of(run_id)
        if kind not in RECORD_KINDS:
            return None
        found = self._records("r.id = ?", (run_id,), kinds=(kind,))
        return found[0] if found else None

    #: Kinds of committed runs by id (the store's own reads fill it; a transaction's do not, since
    #: what it sees may still be rolled back).  A run's kind never changes and ids are never reused
    #: (AUTOINCREMENT, no run is deleted), so an entry never goes stale.
    _kinds: dict[int, str] | None = None

    #: Kinds a transaction may take from the store's committed ones (never adding its own).
    _committed_kinds: Mapping[int, str] = {}

    def kind_of(self, run_id: int) -> str | None:
        """The kind of run ``run_id``, None when there is no such run."""
        known = self._kinds if self._kinds is not None else self._committed_kinds
        kind = known.get(run_id)
        if kind is not None:
            return kind
        row = self._conn.execute("SELECT kind FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        if self._kinds is not None:
            self._kinds[run_id] = row[0]
        return str(row[0])

    def get_viewer(self, projectid: str, viewer: str) -> ViewerRecord | None:
        record = self.get_run(ViewerRecord.KIND, viewer_execrunid(projectid, viewer))
        assert record is None or isinstance(record, ViewerRecord)
        return record

    def launch(self, run_id: int, epoch: int) -> LaunchEntry | None:
        row = self._conn.execute(
            "SELECT epoch, launch_id, token, job_ref, submitted_at, created_at FROM launches"
            " WHERE run_id = ? AND epoch = ?", (run_id, epoch)).fetchone()
        return LaunchEntry(*row) if row else None

    def launches(self, run_id: int) -> list[LaunchEntry]:
        rows = self._conn.execute(
            "SELECT epoch, launch_id, token, job_ref, submitted_at, created_at FROM launches"
            " WHERE run_id = ? ORDER BY epoch", (run_id,)).fetchall()
        return [LaunchEntry(*row) for row in rows]

    def latest_snapshot(self, run_id: int) -> dict[str, Any] | None:
        """The last viewer database recorded for this run, if any."""
        row = self._conn.execute(
            "SELECT id, epoch, viewer_uuid, path, checksum, platform, version FROM snapshots"
            " WHERE run_id = ? ORDER BY id DESC LIMIT 1", (run_id,)).fetchone()
        keys = ("id", "epoch", "viewer_uuid", "path", "checksum", "platform", "version")
        return dict(zip(keys, row)) if row else None

    def count_runs(self, kinds: Iterable[str], states: Iterable[int], tool: str | None = None) -> int:
        """How many runs of ``kinds`` are in ``states`` (and, for assessments, of ``tool``)."""
        kinds, codes = list(kinds), [int(s) for s in states]
        sql = (f"SELECT COUNT(*) FROM runs r WHERE r.kind IN ({', '.join('?' for _ in kinds)})"
               f" AND r.state IN ({', '.join('?' for _ in codes)})")
        params: list[Any] = [*kinds, *codes]
        if tool is not None:
            sql += " AND EXISTS (SELECT 1 FROM assessment_runs a WHERE a.run_id = r.id AND a.tool = ?)"
            params.append(tool)
        return int(self._conn.execute(sql, params).fetchone()[0])

    def queued_assessments(self, state: int, limit: int) -> list[int]:
        """Ids of assessment runs in ``state`` whose inputs are ready, in the order they get slots:
        ARuns before MRuns (SWAMP ran metrics last), then first come, first served."""
        rows = self._conn.execute(
            "SELECT r.id FROM runs r JOIN assessment_runs a ON a.run_id = r.id"
            " WHERE r.kind IN ('arun', 'mrun') AND r.state = ? AND a.bog != ''"
            " ORDER BY r.kind = 'mrun', r.id LIMIT ?", (int(state), limit)).fetchall()
        return [r[0] for r in rows]

    def failed_submit(self, record: RunRecord) -> tuple[int, str] | None:
        """The current launch's submit that has not succeeded yet and has failed: its failed attempts
        and its last error (None when it has not failed, or is done)."""
        row = self._conn.execute(
            "SELECT attempts, last_error FROM outbox WHERE run_id = ? AND epoch = ? AND effect = 'submit'"
            " AND done_at IS NULL AND attempts > 0", (record.id, record.epoch)).fetchone()
        return (int(row[0]), str(row[1] or "")) if row is not None else None

    def has_pending(self, record: RunRecord, effect: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM outbox WHERE run_id = ? AND epoch = ? AND effect = ? AND done_at IS NULL",
            (record.id, record.epoch, effect)).fetchone()
        return row is not None


class Transaction(_Reader):
    """The operations allowed inside one write transaction."""

    def __init__(self, conn: sqlite3.Connection, change_effects: ChangeEffects,
                 clock: Any = time.time, committed_kinds: Mapping[int, str] | None = None) -> None:
        self._conn = conn
        if committed_kinds is not None:
            self._committed_kinds = committed_kinds
        self._change_effects = change_effects
        self._clock = clock
        #: Runs whose state this transaction changed (announced after it commits).
        self.changed: set[int] = set()
        #: (kind, from, to, launched_at, at) of each state change, counted once committed.
        self.transitions: list[tuple[str, int | None, int, float, float]] = []
        #: Runs this transaction gave outbox items (a reconciler turn has work for them).
        self.enqueued: set[int] = set()
        #: The record ``saving_once`` holds back, and whether it changed meanwhile.
        self._held: RunRecord | None = None
        self._held_dirty = False
        #: Each run's detail row as this transaction last read or wrote it: a put that would write
        #: it again unchanged (a submit, most reports) leaves it alone.
        self._details: dict[int, tuple[Any, ...]] = {}

    def _records(self, where: str = "", params: Iterable[Any] = (), kinds: Iterable[str] | None = None,
                 order: str = "r.id") -> list[RunRecord]:
        found = super()._records(where, params, kinds, order)
        for record in found:
            self._details[record.id] = _detail_values(record)
        return found

    @contextmanager
    def saving_once(self, record: RunRecord) -> Iterator[None]:
        """Within the block, saving ``record`` (``put_run``, also through ``transition``) is done
        once, at its end: several reports of one instant each make a transition with its history row,
        and the run's two rows need writing only for the last.  Nothing in the block may read the
        run back from the registry (it would see the rows as they were)."""
        assert self._held is None and record.id, "one held, already saved record at a time"
        self._held, self._held_dirty = record, False
        try:
            yield
        finally:
            held, dirty = self._held, self._held_dirty
            self._held, self._held_dirty = None, False
        if dirty:  # not after an exception: the transaction is rolled back then anyway
            self.put_run(held)

    # -- the one place a state changes -----------------------------------
    def transition(self, record: RunRecord, state: int, status: str, source: str, reason: str = "") -> None:
        """Move ``record`` to ``state``: save it, its history row (old -> new, reason, source),
        and the side effects every change of its kind needs, all in this transaction."""
        from_state = record.state if record.id else None
        record.state = int(state)
        record.status = status
        self.put_run(record)
        self.changed.add(record.id)
        self.transitions.append((record.kind, from_state, record.state, record.launched_at, self._clock()))
        self._history(record, from_state, source, reason or status)
        for effect in self._change_effects.get(record.kind, ()):
            self.enqueue(record, effect, {"state": record.state, "status": record.status, "from_state": from_state})

    # -- runs ---------------------------------------------------------------
    def put_run(self, record: RunRecord) -> None:
        """Insert or update the run and its detail row (never its state's history: see transition)."""
        record.updated_at = self._clock()
        if record is self._held:
            self._held_dirty = True
            return
        # Plain attribute reads: the fields are scalars, and asdict's deep copy was a third of a launch.
        names = _RUN_NAMES
        run_values = [getattr(record, c) for c in names]
        if not record.id:
            cur = self._conn.execute(
                f"INSERT INTO runs (kind, key, {', '.join(names)}) VALUES (?, ?, {', '.join('?' for _ in names)})",
                (record.kind, record.key, *run_values))
            record.id = int(cur.lastrowid or 0)
        else:
            self._conn.execute(f"UPDATE runs SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
                               (*run_values, record.id))
        values = _detail_values(record)
        if self._details.get(record.id) == values:
            return  # as this transaction read or wrote it
        detail = type(record).detail_columns()
        self._conn.execute(
            f"INSERT OR REPLACE INTO {record.DETAIL_TABLE} (run_id, {', '.join(detail)})"
            f" VALUES (?, {', '.join('?' for _ in detail)})",
            (record.id, *values))
        self._details[record.id] = values

    def record_launch(self, record: RunRecord) -> None:
        """Keep the current launch's id and token beside the run's earlier launches."""
        self._conn.execute(
            "INSERT OR REPLACE INTO launches (run_id, epoch, launch_id, token, job_ref, submitted_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.id, record.epoch, record.launch_id, record.token, record.job_ref, record.submitted_at,
             self._clock()))

    def set_job(self, record: RunRecord, job_ref: str, submitted_at: float) -> None:
        """The scheduler took the current launch's job: remember its reference on both rows."""
        record.job_ref = job_ref
        record.submitted_at = submitted_at
        record.attempts += 1
        self.put_run(record)
        self._conn.execute("UPDATE launches SET job_ref = ?, submitted_at = ? WHERE run_id = ? AND epoch = ?",
                           (job_ref, submitted_at, record.id, record.epoch))

    # -- outbox ---------------------------------------------------------------
    def enqueue(self, record: RunRecord, effect: str, payload: dict[str, Any] | None = None,
                not_before: float = 0.0) -> int:
        """Record a side effect to perform for ``record``'s current launch (not before ``not_before``)."""
        self.enqueued.add(record.id)
        cur = self._conn.execute(
            "INSERT INTO outbox (run_id, epoch, effect, payload, attempts, next_at, created_at)"
            " VALUES (?, ?, ?, ?, 0, ?, ?)",
            (record.id, record.epoch, effect, json.dumps(payload or {}), not_before, self._clock()))
        return int(cur.lastrowid or 0)

    def complete(self, item_id: int) -> None:
        self._conn.execute("UPDATE outbox SET done_at = ? WHERE id = ?", (self._clock(), item_id))

    def retry_later(self, item_id: int, error: str, next_at: float, count: bool = True) -> None:
        """Try the item again at ``next_at``; ``count`` False for a wait that is not a failure."""
        self._conn.execute(
            f"UPDATE outbox SET attempts = attempts + {1 if count else 0}, last_error = ?, next_at = ? WHERE id = ?",
            (error[:2000], next_at, item_id))

    # -- history, snapshots, results -----------------------------------------
    def _history(self, record: RunRecord, from_state: int | None, source: str, detail: str) -> None:
        self._conn.execute(
            "INSERT INTO history (run_id, epoch, at, from_state, state, status, source, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.id, record.epoch, self._clock(), from_state, record.state, record.status, source,
             detail[:2000]))

    def reported_before(self, record: RunRecord, event: str) -> bool:
        """Whether the current launch's node already moved the run with ``event`` (a guest event is
        news once per launch: one sent again after a restart must not put an older status back)."""
        return self._conn.execute(
            "SELECT 1 FROM history WHERE run_id = ? AND epoch = ? AND source = 'node' AND detail = ? LIMIT 1",
            (record.id, record.epoch, f"event {event}")).fetchone() is not None

    def note(self, record: RunRecord, source: str, detail: str) -> None:
        """A history line that is not a state change (a saved database, an upload's outcome)."""
        self._history(record, record.state, source, detail)

    def add_snapshot(self, record: RunRecord, epoch: int, viewer_uuid: str, path: str, checksum: str,
                     platform: str, version: str) -> int:
        """Record a saved viewer database handed over by ``vruntask finish`` of launch ``epoch``."""
        cur = self._conn.execute(
            "INSERT INTO snapshots (run_id, epoch, viewer_uuid, path, checksum, platform, version, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.id, epoch, viewer_uuid, path, checksum, platform, version, self._clock()))
        return int(cur.lastrowid or 0)

    def set_meta(self, name: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def add_results(self, record: RunRecord, results: list[dict[str, Any]]) -> int:
        """Keep the results a launch must upload; the daemon owns them from now on.

        SWAMP's web server sends the project's results with every click on View: a result
        this launch already keeps (the same description) is not kept again.  Returns how
        many were new."""
        added = 0
        for result in results:
            payload = json.dumps(result, sort_keys=True)
            if self._conn.execute("SELECT 1 FROM results WHERE run_id = ? AND epoch = ? AND payload = ?",
                                  (record.id, record.epoch, payload)).fetchone():
                continue
            self._conn.execute("INSERT INTO results (run_id, epoch, payload, created_at) VALUES (?, ?, ?, ?)",
                               (record.id, record.epoch, payload, self._clock()))
            added += 1
        return added

    def set_upload(self, result_id: int, **fields: Any) -> None:
        """Create or update the upload bookkeeping of one result (see agentmonitor.uploads)."""
        row = self._conn.execute("SELECT 1 FROM uploads WHERE result_id = ?", (result_id,)).fetchone()
        fields["updated_at"] = self._clock()
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
            sets = ", ".join(f"{name} = ?" for name in fields)
            self._conn.execute(f"UPDATE uploads SET {sets} WHERE result_id = ?", (*fields.values(), result_id))
        if fields.get("state") == "done":
            self._conn.execute("UPDATE results SET uploaded_at = ? WHERE id = ?", (self._clock(), result_id))


@functools.lru_cache(maxsize=256)
def _select(cls: type[RunRecord], where: str, order: str) -> str:
    """The query of ``_records`` for one kind (made once: a launch reads its record a dozen times)."""
    cols = _RUN_SELECT + "".join(f", d.{c}" for c in cls.detail_columns())
    return (f"SELECT r.id, {cols} FROM runs r JOIN {cls.DETAIL_TABLE} d ON d.run_id = r.id"
            f" WHERE r.kind = ?{' AND ' + where if where else ''} ORDER BY {order}")


def _detail_values(record: RunRecord) -> tuple[Any, ...]:
    """The record's detail row's values (its kind's own columns), in column order."""
    return tuple(getattr(record, c) for c in type(record).detail_columns())


def _record_from_row(cls: type[RunRecord], row: Any) -> RunRecord:
    """The record of a row, its fields set straight from the columns: a row holds every field
    (``_row_names`` checks), so the keyword ``__init__`` of some thirty fields, a launch reads a
    dozen records and it was a twentieth of the daemon's work in a burst, is not run; its
    ``__post_init__`` is."""
    record = object.__new__(cls)
    record.__dict__.update(zip(_row_names(cls), row))
    post_init = getattr(record, "__post_init__", None)
    if post_init is not None:
        post_init()
    return record


@functools.cache
def _row_names(cls: type[RunRecord]) -> tuple[str, ...]:
    """The names of a row of ``_records`` for ``cls``, in order: every field of the record."""
    names = ("id", *_RUN_NAMES, *cls.detail_columns())
    assert set(names) == {f.name for f in dataclasses.fields(cls)}, f"{cls.__name__}: a field is not a column"
    return names


class Store(_Reader):
    """Opens the registry file and hands out per-thread connections."""

    def __init__(self, path: Path, change_effects: ChangeEffects | None = None, clock: Any = time.time) -> None:
        """``change_effects``: run kind -> outbox effects enqueued with every state change."""
        self.path = Path(path)
        self.change_effects: ChangeEffects = dict(change_effects or {})
        self.clock = clock
        #: Called with the ids of the runs a committed transaction changed (the change feed).
        self.on_commit: Any = None
        self._writer = threading.Lock()
        #: The one connection every write transaction of this process uses (under ``_writer``): its
        #: page cache stays valid from one commit to the next, where each thread's own connection
        #: had to read the pages another had changed again (85 reads a launch in a burst).
        self._write_conn: sqlite3.Connection | None = None
        #: Group commit: commits counted under ``_writer``; ``_synced`` of them are on disk.
        self._commits = 0
        self._synced = 0
        self._sync_lock = threading.Lock()
        self._dir_synced = False
        self._local = threading.local()
        self._kinds: dict[int, str] | None = {}
        #: Per run, how many committed transactions gave it outbox items, and the count at which its
        #: outbox was last read empty: a reconciler turn reads an outbox nobody added to since as empty
        #: without asking SQLite.  Only this process writes the registry (the state directory's lock).
        self._outbox_added: dict[int, int] = {}
        self._outbox_empty_at: dict[int, int] = {}
        self._init_schema()

    @property
    def _conn(self) -> sqlite3.Connection:  # type: ignore[override]
        """This thread's connection for reads; while the thread holds a write transaction, that
        transaction's (so that it reads its own changes, as it always did)."""
        conn: sqlite3.Connection | None = getattr(self._local, "in_transaction", None)
        if conn is not None:
            return conn
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect(check_same_thread=True)
        return conn

    def _connect(self, check_same_thread: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=check_same_thread)
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            conn.close()
            raise RegistryError(f"{self.path}: the registry needs SQLite's WAL mode, which this file system refuses")
        # Commits do not wait for the disk here: a durable one is synced by ``_make_durable``.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _init_schema(self) -> None:
        secure_registry(self.path)  # 0600, ours, never through a symlink (issue 9 finding 4)
        with self.transaction() as tx:
            conn = tx._conn
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None and conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'viewers'").fetchone():
                row = ("1",)  # version 1 wrote its tables before its version row: trust the tables
            found = int(row[0]) if row else SCHEMA_VERSION
            try:
                passed = migrate(conn, found, SCHEMA_VERSION)
            except MigrationError as exc:
                raise RegistryError(f"{self.path}: {exc}") from None
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        if passed:
            log.info("%s: registry migrated from schema version %d to %d", self.path, found, SCHEMA_VERSION)

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[Transaction]:
        """A write transaction; committed on success, rolled back on error.

        ``durable``: the commit is on disk before this returns: every change
        a caller is told about (a claim, a stop, a saved database).  Changes
        the daemon makes on its own and can make again (a job's reference, a
        status on the way, a retry's time) do not wait for the disk (safe
        against a crash of the process, and made durable by the next durable
        commit).

        Every commit writes the WAL without waiting for the disk (SQLite's
        ``synchronous=NORMAL``); a durable one then waits, outside the write
        lock, until the WAL is synced past it (``_make_durable``): one sync
        serves every commit made before it, and other writers go on
        meanwhile.  Before, each durable commit synced inside the lock (FULL):
        a burst of launches queued behind 500 syncs of 1.5 ms each.
        """
        # Writers of this process queue on a mutex: SQLite's own busy handler would make a
        # waiting writer sleep 1 to 100 ms at a time.  Other processes still meet BEGIN IMMEDIATE.
        with self._writer:
            conn = self._write_conn
            if conn is None:
                conn = self._write_conn = self._connect(check_same_thread=False)
            conn.execute("BEGIN IMMEDIATE")
            tx = Transaction(conn, self.change_effects, self.clock, self._kinds)
            self._local.in_transaction = conn
            try:
                yield tx
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # also after a failed COMMIT: the connection is every writer's
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._local.in_transaction = None
            self._commits += 1
            committed = self._commits
            if tx.enqueued:
                self._outbox_grew(tx.enqueued)
        if durable:
            self._make_durable(committed)
        metrics.committed(tx.transitions)
        if tx.changed and self.on_commit is not None:
            self.on_commit(tx.changed)

    def _make_durable(self, commit: int) -> None:
        """Return once the ``commit``-th commit is on disk (group commit).

        The WAL holds every commit in order, so syncing it makes all commits
        written so far durable at once, as SQLite's own sync at a FULL commit
        would.  One thread syncs at a time; a thread that finds its commit
        covered by a sync that ran meanwhile returns at once.
        """
        with self._sync_lock:
            if self._synced >= commit:
                return
            upto = self._commits  # every commit counted has passed its COMMIT: all are in the WAL
            wal = self.path.with_name(self.path.name + "-wal")
            try:
                fd = os.open(wal, os.O_RDONLY)
            except FileNotFoundError:  # checkpointed and removed meanwhile: the data is in the file
                fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
            if not self._dir_synced:  # the WAL's own name, once: a new file's entry must last too
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
                self._dir_synced = True
            self._synced = upto

    # -- reads outside a transaction --------------------------------------
    def list_runs(self, kind: str | None = None, states: Iterable[int] | None = None,
                  projectid: str | None = None) -> list[RunRecord]:
        where, params = [], []
        if states is not None:
            codes = [int(s) for s in states]
            where.append(f"r.state IN ({', '.join('?' for _ in codes)})")
            params += codes
        if projectid is not None:
            where.append("r.projectid = ?")
            params.append(projectid)
        return self._records(" AND ".join(where), params, kinds=(kind,) if kind else None,
                             order="r.projectid, r.key")

    def list_viewers(self) -> list[ViewerRecord]:
        return [r for r in self.list_runs(ViewerRecord.KIND) if isinstance(r, ViewerRecord)]

    def ids_in_states(self, states_by_kind: Mapping[str, Iterable[int]]) -> list[int]:
        """Ids of runs whose state is in their kind's group."""
        found: list[int] = []
        for kind, states in states_by_kind.items():
            codes = [int(s) for s in states]
            rows = self._conn.execute(
                f"SELECT id FROM runs WHERE kind = ? AND state IN ({', '.join('?' for _ in codes)})",
                (kind, *codes)).fetchall()
            found += [r[0] for r in rows]
        return found

    def ids_of_launches(self, launch_ids: Iterable[str], states_by_kind: Mapping[str, Iterable[int]]) -> list[int]:
        """Ids of runs whose current launch is one of ``launch_ids`` and whose state is in their kind's group."""
        found: list[int] = []
        ids = sorted(launch_ids)
        for kind, states in states_by_kind.items():
            codes = [int(s) for s in states]
            for chunk in _chunks(ids):
                rows = self._conn.execute(
                    f"SELECT id FROM runs WHERE kind = ? AND launch_id IN ({', '.join('?' for _ in chunk)})"
                    f" AND state IN ({', '.join('?' for _ in codes)})", (kind, *chunk, *codes)).fetchall()
                found += [r[0] for r in rows]
        return found

    def meta(self, name: str, default: str = "") -> str:
        """A daemon-wide setting kept in the registry (whether SWAMP is paused)."""
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else default

    def ids_by_launch(self, launch_ids: Iterable[str]) -> list[int]:
        """Ids of runs whose current launch is one of ``launch_ids``, whatever their state."""
        found: list[int] = []
        for chunk in _chunks(sorted(launch_ids)):
            rows = self._conn.execute(
                f"SELECT id FROM runs WHERE launch_id IN ({', '.join('?' for _ in chunk)})", chunk).fetchall()
            found += [r[0] for r in rows]
        return found

    def tracked_jobs(self, states_by_kind: Mapping[str, Iterable[int]]) -> dict[str, str]:
        """Launch id -> job ref of every submitted launch of a run in its kind's group."""
        out: dict[str, str] = {}
        for kind, states in states_by_kind.items():
            codes = [int(s) for s in states]
            rows = self._conn.execute(
                f"SELECT launch_id, job_ref FROM runs WHERE kind = ? AND job_ref != ''"
                f" AND state IN ({', '.join('?' for _ in codes)})", (kind, *codes)).fetchall()
            out.update({lid: ref for lid, ref in rows})
        return out

    def outbox_of(self, run_id: int) -> list[OutboxItem]:
        """The run's pending outbox items, due or not, oldest first."""
        added = self.outbox_generation(run_id)  # before the read: an item committed meanwhile counts
        if self._outbox_empty_at.get(run_id) == added:
            return []
        rows = self._conn.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE run_id = ? AND done_at IS NULL ORDER BY id",
            (run_id,)).fetchall()
        if not rows:
            self._outbox_empty_at[run_id] = added
        return [OutboxItem.from_row(r) for r in rows]

    def outbox_emptied(self, run_id: int, added: int) -> None:
        """Every item read at generation ``added`` was done: the outbox is empty as of it (a commit
        that added items since has moved the generation on, and the next read happens)."""
        if self.outbox_generation(run_id) == added:
            self._outbox_empty_at[run_id] = added

    def outbox_generation(self, run_id: int) -> int:
        """How many committed transactions gave the run outbox items (in this process's life): a
        reconciler turn that finds it unchanged knows nothing new was added meanwhile."""
        return self._outbox_added.get(run_id, 0)

    #: Runs remembered at most; then both counts start again (every outbox is read once more).
    OUTBOX_MEMORY = 100_000

    def _outbox_grew(self, run_ids: set[int]) -> None:
        """After a commit (under the writer's lock): these runs were given outbox items."""
        if len(self._outbox_added) > self.OUTBOX_MEMORY:
            self._outbox_empty_at.clear()  # first: no run may meet an old "empty" at a restarted count
            self._outbox_added.clear()
        for run_id in run_ids:
            self._outbox_added[run_id] = self._outbox_added.get(run_id, 0) + 1

    def pending_outbox(self) -> list[OutboxItem]:
        rows = self._conn.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE done_at IS NULL ORDER BY id").fetchall()
        return [OutboxItem.from_row(r) for r in rows]

    def history(self, run_id: int, limit: int = 100) -> list[HistoryEntry]:
        rows = self._conn.execute(
            "SELECT at, epoch, from_state, state, status, source, detail FROM history WHERE run_id = ?"
            " ORDER BY id DESC LIMIT ?", (run_id, limit)).fetchall()
        return [HistoryEntry(*r) for r in reversed(rows)]

    def results(self, run_id: int) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT epoch, payload FROM results WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        return [{"epoch": epoch, **json.loads(payload)} for epoch, payload in rows]

    def uploads(self, run_id: int) -> list[dict[str, Any]]:
        """Every result of this run with its upload bookkeeping (state 'pending' when none yet)."""
        rows = self._conn.execute(
            "SELECT r.id, r.epoch, r.payload, u.state, u.fingerprint, u.epoch, u.attempt, u.project_id,"
            " u.before_ids, u.analysis_id, u.job_id, u.detail FROM results r"
            " LEFT JOIN uploads u ON u.result_id = r.id WHERE r.run_id = ? ORDER BY r.id",
            (run_id,)).fetchall()
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

    def snapshots(self, run_id: int) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT id, epoch, viewer_uuid, path, checksum, platform, version, created_at FROM snapshots"
            " WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        keys = ("id", "epoch", "viewer_uuid", "path", "checksum", "platform", "version", "created_at")
        return [dict(zip(keys, r)) for r in rows]

    # -- what operators look at (dashboard, /metrics) ---------------------------------
    def run_counts(self) -> list[tuple[str, int, int]]:
        """(kind, state, number of runs) for every state some run is in."""
        return [tuple(r) for r in self._conn.execute(  # type: ignore[misc]
            "SELECT kind, state, COUNT(*) FROM runs GROUP BY kind, state ORDER BY kind, state")]

    def outbox_summary(self) -> list[tuple[str, int, float]]:
        """(effect, pending rows, when the oldest was written) for every effect with rows pending."""
        return [tuple(r) for r in self._conn.execute(  # type: ignore[misc]
            "SELECT effect, COUNT(*), MIN(created_at) FROM outbox WHERE done_at IS NULL GROUP BY effect"
            " ORDER BY effect")]

    def pending_by_run(self) -> dict[int, tuple[int, int]]:
        """Run id -> (pending outbox rows, attempts they have failed so far), for runs with any."""
        rows = self._conn.execute(
            "SELECT run_id, COUNT(*), SUM(attempts) FROM outbox WHERE done_at IS NULL GROUP BY run_id")
        return {run_id: (count, int(attempts or 0)) for run_id, count, attempts in rows}

    def state_since(self) -> dict[int, float]:
        """Run id -> when it entered its current state (its last history row that changed the state)."""
        rows = self._conn.execute(
            "SELECT run_id, MAX(at) FROM history WHERE from_state IS NULL OR from_state != state GROUP BY run_id")
        return {run_id: at for run_id, at in rows}

    def pending_items(self, run_id: int, limit: int = 200) -> list[tuple[OutboxItem, float]]:
        """The run's pending outbox items with when each was written, oldest first, at most ``limit``."""
        rows = self._conn.execute(
            f"SELECT {_OUTBOX_COLUMNS}, created_at FROM outbox WHERE run_id = ? AND done_at IS NULL"
            " ORDER BY id LIMIT ?", (run_id, limit)).fetchall()
        return [(OutboxItem.from_row(r[:-1]), r[-1]) for r in rows]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        with self._writer:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
