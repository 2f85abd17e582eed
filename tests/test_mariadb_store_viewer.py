"""Saved viewer databases through store_viewer on the real MariaDB, outages included."""
from __future__ import annotations

import hashlib
import os
import tarfile
import uuid
from pathlib import Path
from typing import Any

from support.daemon import wait_for
from support.mariadb import (  # noqa: F401
    CODEDX_VERSION_UUID,
    ScratchDB,
    find_job,
    scratch_db,
    send_snapshot,
    start_mariadb,
    stop_mariadb,
)
from swampd.bog import BogError, read_bog

#: What etc/mariadb/grants.sql gives the daemon's user (database name substituted).
DAEMON_GRANTS = [
    "GRANT EXECUTE ON PROCEDURE {db}.store_viewer",
    "GRANT EXECUTE ON PROCEDURE {db}.update_viewer_instance",
    "GRANT SELECT, INSERT ON {db}.viewer_launch_history",
]


def mariadb_table(db: ScratchDB, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 3306, "user": "root", "database": db.name, "connect_timeout": 2,
            **extra}


def new_instance(db: ScratchDB, project: str) -> str:
    instance = str(uuid.uuid4())
    db.sql("INSERT INTO viewer_instance (viewer_instance_uuid, viewer_version_uuid, project_uuid) VALUES (%s, %s, %s)",
           (instance, CODEDX_VERSION_UUID, project))
    return instance


def ROOTS(directory: Path) -> dict[str, Any]:  # noqa: N802 (reads as a constant at the call)
    """The tests write snapshots under tmp_path: make it the daemon's viewer_db_roots."""
    return {"viewer_db_roots": [str(directory)]}


def snapshot_file(directory: Path, name: str) -> tuple[str, str]:
    """A real viewer database bundle (what codedx_viewerdb.sh writes), and its SHA-512."""
    path = directory / name
    dump = directory / f"{name}.codedx.sql"
    dump.write_text(f"-- viewer database {os.urandom(8).hex()}\n")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(dump, arcname="codedx.sql")
    return str(path), hashlib.sha512(path.read_bytes()).hexdigest()


def instance_row(db: ScratchDB, instance: str) -> tuple[Any, ...]:
    return db.sql("SELECT viewer_db_path, viewer_db_checksum, platform_image, code_dx_version FROM viewer_instance"
                  " WHERE viewer_instance_uuid=%s", (instance,))[0]


def launch_ready(daemon: Any, project: str, instance: str, **extra: Any) -> dict[str, Any]:
    daemon.api.launchViewer({"projectid": project, "viewer": "CodeDX", "viewer_uuid": instance, **extra})
    return wait_for(lambda: (r := daemon.api.getViewer(project, "CodeDX"))["state"] == 2 and r, 60,
                    what=f"{project} READY")


def test_snapshot_reaches_store_viewer(scratch_db, make_daemon, tmp_path):
    daemon = make_daemon(agentmonitor=ROOTS(tmp_path), extra={"mariadb": mariadb_table(scratch_db)})
    instance = new_instance(scratch_db, "p-sv")
    launch_ready(daemon, "p-sv", instance)
    path, checksum = snapshot_file(tmp_path, "codedx_viewerdb_20260101000000.tar.gz")
    assert send_snapshot(daemon, "p-sv", "CodeDX", path, checksum) is True
    wait_for(lambda: instance_row(scratch_db, instance)[0] == path, 30, what="store_viewer")
    assert instance_row(scratch_db, instance) == (path, checksum, "condor-codedx-master.qcow2", "codedx-5.0.war")


def test_store_viewer_waits_out_a_mariadb_outage_and_a_daemon_restart(scratch_db, make_daemon, tmp_path):
    daemon = make_daemon(agentmonitor=ROOTS(tmp_path), extra={"mariadb": mariadb_table(scratch_db)})
    instance = new_instance(scratch_db, "p-down")
    launch_ready(daemon, "p-down", instance)
    path, checksum = snapshot_file(tmp_path, "codedx_viewerdb_20260102000000.tar.gz")
    stop_mariadb()
    try:
        assert send_snapshot(daemon, "p-down", "CodeDX", path, checksum) is True
        # the daemon keeps serving: queries, and a launch of another viewer
        launch_ready(daemon, "p-other", "other-instance")
        wait_for(lambda: "MariaDB unavailable" in daemon.log(), 20, what="a failed store_viewer attempt")
        daemon.kill9()
        daemon.start()
        assert daemon.api.getViewer("p-down", "CodeDX")["state"] == 2
    finally:
        start_mariadb()
    wait_for(lambda: instance_row(scratch_db, instance)[0] == path, 90, what="store_viewer after the outage")
    assert instance_row(scratch_db, instance)[:2] == (path, checksum)


def test_relaunch_restores_the_latest_snapshot_and_refuses_a_bad_one(scratch_db, make_daemon, tmp_path):
    daemon = make_daemon(agentmonitor=ROOTS(tmp_path), extra={"mariadb": mariadb_table(scratch_db)})
    instance = new_instance(scratch_db, "p-re")
    launch_ready(daemon, "p-re", instance)
    old_path, old_sum = snapshot_file(tmp_path, "older.tar.gz")
    path, checksum = snapshot_file(tmp_path, "latest.tar.gz")
    send_snapshot(daemon, "p-re", "CodeDX", path, checksum)
    daemon.api.stopViewer("p-re", "CodeDX")
    wait_for(lambda: daemon.api.getViewer("p-re", "CodeDX")["state"] == -7, 60, what="stopped")

    # The database may still pass an older path; the latest recorded snapshot wins, verified.
    record = launch_ready(daemon, "p-re", instance, db_path=old_path, db_checksum=old_sum)
    job_dir, _ = find_job(daemon, record["execrunid"], record["epoch"])
    bog = read_bog(job_dir / f"{record['execrunid']}.bog")
    assert (bog["db_path"], bog["db_checksum"]) == (path, checksum)
    daemon.api.stopViewer("p-re", "CodeDX")
    wait_for(lambda: daemon.api.getViewer("p-re", "CodeDX")["state"] == -7, 60, what="stopped")

    with open(path, "ab") as fh:  # the saved database is damaged (or replaced) on disk
        fh.write(b"tampered")
    daemon.api.launchViewer({"projectid": "p-re", "viewer": "CodeDX", "viewer_uuid": instance})
    failed = wait_for(lambda: (r := daemon.api.getViewer("p-re", "CodeDX"))["state"] == -5 and r, 30,
                      what="launch refused")
    assert "does not match its recorded sha512 checksum" in failed["status"] and path in failed["status"]
    assert "refusing to restore it" in failed["status"]
    # The earlier launches' directories are being forgotten (removed) meanwhile: read what is left.
    epochs = {bog["swampd_epoch"] for bog in map(bog_if_there, daemon.jobs_dir().glob("*/*.bog")) if bog}
    assert str(failed["epoch"]) not in epochs  # nothing was submitted for the refused launch


def bog_if_there(path: Path) -> dict[str, str] | None:
    try:
        return read_bog(path)
    except BogError:
        if path.exists():
            raise
        return None


def test_launch_history_and_status_with_the_documented_grants(scratch_db, make_daemon, tmp_path):
    user, password = scratch_db.add_user(DAEMON_GRANTS)
    secret = tmp_path / "mariadb.password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    daemon = make_daemon(agentmonitor=ROOTS(tmp_path),
                         extra={"mariadb": mariadb_table(scratch_db, user=user, password_file=str(secret),
                                                         launch_history=True)})
    instance = new_instance(scratch_db, "p-hist")
    record = launch_ready(daemon, "p-hist", instance, userid="u-hist")
    wait_for(lambda: scratch_db.sql("SELECT status_code FROM viewer_instance WHERE viewer_instance_uuid=%s",
                                    (instance,))[0][0] == 2, 30, what="READY status row")
    status, code, ip, proxy = scratch_db.sql(
        "SELECT status, status_code, vm_ip_address, proxy_url FROM viewer_instance WHERE viewer_instance_uuid=%s",
        (instance,))[0]
    assert (code, ip, proxy) == (2, record["vmip"], record["url_uuid"])
    rows = scratch_db.sql("SELECT viewer_version_uuid, project_uuid, viewer_instance_uuid, assessment_result_uuid,"
                          " user_uuid FROM viewer_launch_history")
    assert rows == [(CODEDX_VERSION_UUID, "p-hist", instance, None, "u-hist")]  # one row per launch
    path, checksum = snapshot_file(tmp_path, "granted.tar.gz")
    send_snapshot(daemon, "p-hist", "CodeDX", path, checksum)
    wait_for(lambda: instance_row(scratch_db, instance)[0] == path, 30, what="store_viewer with the grants")
