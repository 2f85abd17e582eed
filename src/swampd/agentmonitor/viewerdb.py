"""Saved viewer databases and the SWAMP database rows about viewers.

Three outbox handlers live here:

* ``store_viewer`` — a snapshot handed over by ``vruntask finish`` is written
  to ``viewer_store.viewer_instance`` through SWAMP's ``store_viewer``
  procedure.  The snapshot is recorded in our registry first (same
  transaction as the outbox row), so a MariaDB that is down, or a daemon
  restart before it comes back, loses nothing: the call is simply made later.
* ``restore`` — before a relaunch is submitted, and once the previous
  launch's job has left (its guest may still be saving the database), the
  newest saved viewer database is chosen and checked against its recorded
  checksum; a mismatch ends the launch in ERROR with the reason, instead of
  booting a viewer on a damaged or substituted database.
* ``launch_history`` (optional) — ``viewer_launch_history`` rows and the legacy
  status columns of ``viewer_instance`` that SWAMP's web once read.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Callable, Sequence

from swampd.checksums import stream_digest
from swampd.clients.mariadb import DatabaseRefused, LaunchRow, ViewerStore
from swampd.config import MariaDBConfig
from swampd.effects import Waiting
from swampd.paths import PathRefused, open_confined
from swampd.states import ViewerState, state_name
from swampd.store import LaunchEntry, OutboxItem, Store, ViewerRecord

log = logging.getLogger(__name__)

#: Hash by hex length: SWAMP stores SHA-512; older rows may hold shorter digests.
_ALGORITHMS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}


class ChecksumMismatch(Exception):
    """A viewer database is not the file its checksum was recorded for."""


def verify_checksum(path: str, checksum: str, roots: Sequence[str], max_bytes: int) -> None:
    """Raise ChecksumMismatch, with a reason a person can act on, unless ``path`` matches.

    The file is opened confined to ``roots`` (never a FIFO, a device or a
    file outside them), and the reason never carries the digest found: the
    caller who named the file need not be someone who may read it.
    """
    algorithm = _ALGORITHMS.get(len(checksum))
    if algorithm is None:
        raise ChecksumMismatch(f"viewer database {path}: recorded checksum is not a known digest length")
    try:
        with open_confined(path, roots, max_bytes, "viewer database") as fh:
            found = stream_digest(fh, algorithm)
    except PathRefused as exc:
        raise ChecksumMismatch(f"{exc}; refusing to restore it") from None
    except OSError as exc:
        raise ChecksumMismatch(f"viewer database {path} cannot be read: {exc.strerror}") from None
    if found != checksum.lower():
        raise ChecksumMismatch(
            f"viewer database {path} does not match its recorded {algorithm} checksum "
            f"(expected {checksum[:16]}...); refusing to restore it")


class ViewerDatabases:
    """The outbox handlers for saved viewer databases and SWAMP's viewer rows."""

    def __init__(self, store: Store, mariadb: MariaDBConfig | None, roots: Sequence[str] = (),
                 max_bytes: int = 64 * 1024 ** 3,
                 job_may_be_alive: Callable[[LaunchEntry], bool] = lambda launch: False,
                 clock: Callable[[], float] = time.time) -> None:
        """``roots``: where viewer databases may be (config ``viewer_db_roots``); ``max_bytes``: the
        largest read; ``job_may_be_alive``: the reconciler's word on an earlier launch's job."""
        self.store = store
        self.roots = tuple(roots)
        self.max_bytes = max_bytes
        self.job_may_be_alive = job_may_be_alive
        self.config = mariadb
        self.db = ViewerStore(mariadb) if mariadb is not None else None
        self.clock = clock

    # -- store_viewer -------------------------------------------------------
    def store_viewer(self, item: OutboxItem) -> None:
        """Call store_viewer for a recorded snapshot; raise (retry) while MariaDB is away."""
        if self.db is None:
            return
        snaps = self.store.snapshots(item.run_id)
        mine = [s for s in snaps if s["path"] == item.payload.get("path")
                and s["checksum"] == item.payload.get("checksum")]
        if not mine:
            return
        snap = mine[-1]
        if snaps[-1]["id"] != snap["id"]:
            self._note(item, f"store_viewer skipped for {snap['path']}: a newer snapshot supersedes it")
            return
        if not snap["viewer_uuid"]:
            self._note(item, f"store_viewer skipped for {snap['path']}: the launch had no viewer_uuid")
            return
        try:
            self.db.store_viewer(snap["viewer_uuid"], snap["path"], snap["checksum"], snap["platform"],
                                 snap["version"])
        except DatabaseRefused as exc:  # the procedure said no: the same call will say no again
            self._note(item, f"store_viewer refused: {exc}")
            log.error("run %d: store_viewer refused for %s: %s", item.run_id, snap["path"], exc)
            return
        self._note(item, f"store_viewer recorded {snap['path']}")
        log.info("run %d: store_viewer recorded %s", item.run_id, snap["path"])

    # -- restore ------------------------------------------------------------
    def restore(self, item: OutboxItem) -> None:
        """Choose and check the database a launch will restore; a mismatch ends that launch in ERROR.

        Waits (``Waiting``) while an earlier launch's job may still run: its
        guest may be saving the newest database right now.
        """
        record = self._viewer(item)
        if record is None or record.viewer_state is not ViewerState.LAUNCHING:
            return
        for launch in self.store.launches(record.id):
            if launch.epoch < record.epoch and self.job_may_be_alive(launch):
                raise Waiting(f"launch {launch.epoch}'s job may still be saving the viewer database")
        snapshot = self.store.latest_snapshot(record.id)
        if snapshot is not None:  # ours is never older than what the database passed
            path, checksum = str(snapshot["path"]), str(snapshot["checksum"])
        else:
            path, checksum = str(item.payload.get("path", "")), str(item.payload.get("checksum", ""))
        if not path:
            return
        reason = ""
        if not checksum:
            reason = f"viewer database {path} has no recorded checksum; refusing to restore it"
        else:
            try:
                verify_checksum(path, checksum, self.roots, self.max_bytes)
            except ChecksumMismatch as exc:
                reason = str(exc)
        with self.store.transaction(durable=False) as tx:
            current = tx.get_run_by_id(item.run_id)
            if not isinstance(current, ViewerRecord) or current.epoch != item.epoch \
                    or current.viewer_state is not ViewerState.LAUNCHING:
                return
            if reason:
                tx.transition(current, int(ViewerState.ERROR), reason[:1000], "viewerdb")
            else:
                current.db_path, current.db_checksum = path, checksum
                tx.put_run(current)
        if reason:
            log.error("%s launch %d: %s", record.execrunid, item.epoch, reason)

    # -- launch history -------------------------------------------------------
    def launch_history(self, item: OutboxItem) -> None:
        """A viewer_launch_history row per launch, and the instance's status on every change."""
        if self.db is None or self.config is None:
            return
        record = self._viewer(item)
        if record is None or not record.viewer_uuid:
            return  # a later launch has its own items
        state = int(item.payload.get("state", record.state))
        if state == int(ViewerState.LAUNCHING) and record.launched_at:
            version = self.config.viewer_versions.get(record.viewer, "")
            run_date = datetime.fromtimestamp(record.launched_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            try:
                self.db.add_launch(LaunchRow(version, record.projectid, record.viewer_uuid, record.userid,
                                             run_date))
            except DatabaseRefused as exc:  # history is informative: never retried forever
                log.warning("%s: viewer_launch_history row not written: %s", record.execrunid, exc)
        status = record.status if record.state == state else state_name(state)
        try:
            self.db.update_status(record.viewer_uuid, status, state, record.vmip, record.url_uuid)
        except DatabaseRefused as exc:
            log.warning("%s: viewer_instance status not written: %s", record.execrunid, exc)

    def _viewer(self, item: OutboxItem) -> ViewerRecord | None:
        """The item's viewer if its launch is still the current one."""
        record = self.store.get_run_by_id(item.run_id)
        if not isinstance(record, ViewerRecord) or record.epoch != item.epoch:
            return None
        return record

    def _note(self, item: OutboxItem, detail: str) -> None:
        with self.store.transaction(durable=False) as tx:
            record = tx.get_run_by_id(item.run_id)
            if record is not None:
                tx.note(record, "mariadb", detail)

