"""The registry of release 1 (schema 1) is migrated in place; a newer one is refused.

The input is written by ``support.v1_registry`` with release 1's own table
definitions.  After the migration every viewer comes back unchanged (same
epoch, launch, URL, token), every pending side effect is still pending and
in order, and a daemon adopts the running viewers instead of relaunching them.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from condor_double import ScheddDouble
from htcondor_world import World
from support.daemon import Daemon, wait_for
from support.v1_registry import V1_COLUMNS, write_v1_registry

from swampd.states import ViewerState
from swampd.store import RegistryError, Store, ViewerRecord
from swampd.store.schema import SCHEMA_VERSION


def test_every_viewer_row_and_pending_effect_survives_the_migration(tmp_path: Path) -> None:
    written = write_v1_registry(tmp_path / "registry.sqlite3")
    store = Store(tmp_path / "registry.sqlite3")
    viewers = {r.execrunid: r for r in store.list_viewers()}
    assert set(viewers) == set(written.viewers)
    for execrunid, row in written.viewers.items():
        record = viewers[execrunid]
        for column in V1_COLUMNS:
            if column != "updated_at":
                assert getattr(record, column) == row[column], (execrunid, column)
        [launch] = store.launches(record.id)
        assert (launch.epoch, launch.launch_id, launch.token, launch.job_ref) == (
            row["epoch"], row["launch_id"], row["token"], row["job_ref"])
    pending = [(store.get_run_by_id(item.run_id).key, item.effect, json.dumps(item.payload))
               for item in store.pending_outbox()]
    assert pending == written.pending  # same order, same payloads
    assert all(item.attempts == 2 and item.last_error == "earlier failure" for item in store.pending_outbox())
    ready = viewers["vrun_proj-ready_CodeDX"]
    [upload] = store.uploads(ready.id)
    assert (upload["state"], upload["analysis_id"], upload["job_id"]) == ("posted", 12, "job-12")
    saved = viewers["vrun_proj-saved_CodeDX"]
    assert store.latest_snapshot(saved.id)["path"] == written.snapshot_path
    assert [h.status for h in store.history(ready.id)] == ["Launching viewer", "Viewer is up"]
    with sqlite3.connect(tmp_path / "registry.sqlite3") as conn:
        assert conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert conn.execute("SELECT name FROM sqlite_master WHERE name='viewers'").fetchone() is None
        # release 1's snapshot check is release 2's restore step, done rows included
        assert conn.execute("SELECT count(*) FROM outbox WHERE effect='verify_snapshot'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM outbox WHERE effect='restore'").fetchone() == (1,)
    store.close()
    again = Store(tmp_path / "registry.sqlite3")  # opening a migrated registry changes nothing
    assert [r.execrunid for r in again.list_viewers()] == list(viewers)


def test_a_registry_from_a_newer_release_is_refused_with_a_reason(tmp_path: Path) -> None:
    Store(tmp_path / "registry.sqlite3").close()
    with sqlite3.connect(tmp_path / "registry.sqlite3") as conn:
        conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(RegistryError, match="newer"):
        Store(tmp_path / "registry.sqlite3")


def test_the_daemon_refuses_a_newer_registry_and_says_why(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    daemon.state_dir.mkdir(mode=0o700, parents=True)
    Store(daemon.state_dir / "registry.sqlite3").close()
    with sqlite3.connect(daemon.state_dir / "registry.sqlite3") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    daemon.start(wait=False)
    assert daemon.wait_exit() == 1
    assert "schema version 99 is newer" in daemon.log()


def test_migrated_viewers_are_adopted_on_htcondor_without_a_new_job(tmp_path: Path) -> None:
    written = write_v1_registry(tmp_path / "registry.sqlite3")
    world = World(tmp_path)
    schedd: ScheddDouble = world.schedd
    import htcondor2

    for execrunid in ("vrun_proj-ready_CodeDX", "vrun_proj-launching_CodeDX"):
        row = written.viewers[execrunid]
        schedd.submit(htcondor2.Submit({"executable": "/bin/true", "MY.SwampdKey": f'"{execrunid}"',
                                        "MY.SwampdLaunchId": f'"{row["launch_id"]}"',
                                        "MY.SwampdEpoch": str(row["epoch"])}), count=1)
    schedd.start("1.0")
    for record in world.store.list_viewers():  # the registry names jobs by the refs the schedd gave
        with world.store.transaction() as tx:
            current = tx.get_run_by_id(record.id)
            assert isinstance(current, ViewerRecord)
            current.job_ref = {"vrun_proj-ready_CodeDX": "1.0", "vrun_proj-launching_CodeDX": "2.0"}.get(
                current.execrunid, current.job_ref)
            tx.put_run(current)
    ready = world.settle("proj-ready", "CodeDX")
    launching = world.settle("proj-launching", "CodeDX")
    assert ready.viewer_state is ViewerState.READY and ready.url == "http://127.0.0.1:40411/"
    assert (ready.epoch, ready.token) == (3, "token-proj-ready-3")
    assert launching.viewer_state is ViewerState.LAUNCHING and launching.epoch == 1
    assert schedd.calls["submit"] == 2  # the two this test made; swampd submitted nothing
    world.close()


LOCK_HOLDER = """
import fcntl, os, signal, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("locked", flush=True)
while True:
    time.sleep(1)
"""


def test_a_daemon_on_a_release_1_state_dir_adopts_its_running_viewer(
        make_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    daemon = make_daemon(start=False)
    daemon.state_dir.mkdir(mode=0o700, parents=True)
    written = write_v1_registry(daemon.state_dir / "registry.sqlite3")
    row = written.viewers["vrun_proj-ready_CodeDX"]
    job_dir = daemon.jobs_dir() / row["launch_id"]
    job_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(job_dir / "job.lock")],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        (job_dir / "spawned").write_text(json.dumps({"pid": holder.pid, "pgid": holder.pid}))
        daemon.start()
        struct = daemon.api.getViewer("proj-ready", "CodeDX")
        assert (struct["state_name"], struct["epoch"], struct["url"]) == ("READY", 3, row["url"])
        wait_for(lambda: daemon.api.getViewer("proj-ready", "CodeDX")["job"] == "running", 10)
        assert daemon.api.getViewer("proj-ready", "CodeDX")["state_name"] == "READY"
        daemon.api.stopViewer("proj-ready", "CodeDX")
        wait_for(lambda: daemon.api.getViewer("proj-ready", "CodeDX")["state_name"] == "TERMINATED", 30)
        assert holder.wait(10) == 0  # it was asked to go (TERM), not killed
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)

