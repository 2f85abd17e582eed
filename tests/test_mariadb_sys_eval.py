"""The real database path: CALL launch_viewer -> sys_eval -> etc/mariadb wrapper -> launchviewer -> swampd.

The procedure, the UDF and the server are real; the command runs as the
mysql user with the server's environment and working directory, exactly as
in SWAMP.  Hostile names go through the same path and must run nothing.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from support.daemon import processes_mentioning, wait_for
from support.mariadb import MysqlInstall, ScratchDB, scratch_db  # noqa: F401

PROJECT = "0c2e1f7a-9b7d-4e8e-8f43-5d0b1d0e0a01"
USER = "4b1f4a7e-6a43-11e3-8b8b-0800200c9a66"
#: SWAMP's /swamp, in a scratch copy holding the files the tests name (the daemon's result_roots).
SWAMP = Path("/swamp")
SWAMP_FILES = ("SCAProjects/p/A-Results/r/out.xml", "store/pkg.tar.gz", "r1.xml", "r2.xml", "s.zip")


@pytest.fixture
def wired(scratch_db: ScratchDB, make_daemon: Any) -> Iterator[tuple[ScratchDB, Any, MysqlInstall]]:
    global SWAMP
    SWAMP = Path(tempfile.mkdtemp(prefix="swamp-"))
    for name in SWAMP_FILES:
        (SWAMP / name).parent.mkdir(parents=True, exist_ok=True)
        (SWAMP / name).write_text(name)
    daemon = make_daemon(agentmonitor={"result_roots": [str(SWAMP)]})
    install = MysqlInstall(daemon.config)
    scratch_db.sql("UPDATE swampd_test_setting SET value=%s WHERE name='launch_viewer_cmd'",
                   (str(install.bin / "launch_viewer"),))
    scratch_db.sql("UPDATE swampd_test_setting SET value=%s WHERE name='kill_run_cmd'",
                   (str(install.bin / "kill_run"),))
    try:
        yield scratch_db, daemon, install
    finally:
        install.remove()
        shutil.rmtree(SWAMP, ignore_errors=True)


def add_result(db: ScratchDB, uuid: str, package: str, files: str = "", tool: str = "cppcheck",
               source: str | None = "") -> None:
    files = files or f"{SWAMP}/SCAProjects/p/A-Results/r/out.xml"
    source = f"{SWAMP}/store/pkg.tar.gz" if source == "" else source
    db.sql("INSERT INTO assessment_result (assessment_result_uuid, package_name, package_type_id, tool_name,"
           " source_archive_path, file_path) VALUES (%s, %s, %s, %s, %s, %s)", (uuid, package, 1, tool, source, files))


def eval_log(db: ScratchDB) -> list[tuple[str, str | None]]:
    return [(cmd, out) for cmd, out in db.sql("SELECT cmd, output FROM swampd_test_eval_log ORDER BY id")]


def test_call_launch_viewer_launches_through_sys_eval(wired):
    db, daemon, install = wired
    add_result(db, "ar-1", "zlib 1.2.11")
    out = db.call_launch_viewer("ar-1", USER, PROJECT)
    assert out["return_string"] == "SUCCESS", eval_log(db)
    instance = out["viewer_instance_uuid"]
    cmd, output = eval_log(db)[-1]
    assert output == "SUCCESS\n"  # exactly one line, as sys_eval hands it over
    assert "--package 'zlib 1.2.11'" in cmd and "--viewer_db_path" not in cmd  # NULL options dropped
    record = wait_for(lambda: (r := daemon.api.getViewer(PROJECT, "CodeDX"))["state"] == 2 and r, 60,
                      what="viewer READY")
    assert (record["userid"], record["viewer_uuid"], record["epoch"]) == (USER, instance, 1)
    from swampd.store import Store

    store = Store(daemon.state_dir / "registry.sqlite3")
    results = store.results(store.get_viewer(PROJECT, "CodeDX").id)
    assert [(r["package"], r["files"], r["source_archive"]) for r in results] == [
        ("zlib 1.2.11", [f"{SWAMP}/SCAProjects/p/A-Results/r/out.xml"], f"{SWAMP}/store/pkg.tar.gz")]

    # A click on an already-running viewer: SUCCESS, fast, same launch, nothing left running.
    started = time.monotonic()
    again = db.call_launch_viewer(None, USER, PROJECT)
    elapsed = time.monotonic() - started
    assert again["return_string"] == "SUCCESS" and again["viewer_instance_uuid"] == instance
    assert elapsed < 5.0, elapsed
    assert daemon.api.getViewer(PROJECT, "CodeDX")["epoch"] == 1
    assert processes_mentioning(str(install.root)) == []


def test_every_option_in_any_order_through_the_wrapper(wired):
    _, daemon, install = wired
    argv = [str(install.bin / "launch_viewer"), "--file_path", f"{SWAMP}/r2.xml", "--user_uuid", USER,
            "--package_type", "NULL", "--viewer_uuid", "vi-9", "--tool_name", "tool", "--project", "p-any",
            "--source_archive_path", f"{SWAMP}/s.zip", "--viewer_db_checksum", "NULL", "--package", "pkg",
            "--file_path", f"{SWAMP}/r1.xml", "--viewer_name", "CodeDX", "--viewer_db_path", "NULL"]
    # as the mysql user, with no environment at all and the server's data dir as cwd
    done = subprocess.run(["setpriv", "--reuid=mysql", "--regid=mysql", "--clear-groups", "--", *argv],
                          env={}, cwd="/var/lib/mysql", capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "SUCCESS\n"), done.stderr
    record = daemon.api.getViewer("p-any", "CodeDX")
    assert record["viewer_uuid"] == "vi-9" and record["epoch"] == 1


def test_hostile_names_run_nothing_and_are_carried_as_text(wired):
    """Shell syntax in a package name is only text: nothing runs, the name arrives unchanged.

    Project ids stay identifiers and are refused; a name with a control
    character (a newline) is refused as display text."""
    db, daemon, _ = wired
    marker = Path(f"/tmp/pw{secrets.token_hex(4)}")
    hostile_packages = [f"x'; touch {marker}; echo '", f"$(touch {marker})", f"`touch {marker}`",
                        "a' --project 'evil", f"x\\'; touch {marker} #"]
    for n, package in enumerate(hostile_packages):
        add_result(db, f"ar-h{n}", package)
        out = db.call_launch_viewer(f"ar-h{n}", USER, PROJECT)
        assert out["return_string"] == "SUCCESS", (package, out, eval_log(db)[-1])
    add_result(db, "ar-nl", "pkg\nERRORLESS")
    assert db.call_launch_viewer("ar-nl", USER, "proj-nl")["return_string"].startswith("ERROR: --package contains")
    for project in (f"p'; touch {marker}; '", f"$(touch {marker})", "../../etc/passwd", "p;id"):
        out = db.call_launch_viewer(None, USER, project)
        assert out["return_string"].startswith("ERROR"), (project, out, eval_log(db)[-1])
    assert not marker.exists()
    from support.registry import viewer_results

    results = viewer_results(daemon.state_dir, PROJECT, "CodeDX")
    assert sorted(r["package"] for r in results) == sorted(hostile_packages)
    assert [v["projectid"] for v in daemon.api.listViewers()] == [PROJECT]
    for _, output in eval_log(db):
        assert output is not None and output.count("\n") == 1 and len(output) <= 100


def test_kill_assessment_run_stops_the_project_viewers(wired):
    db, daemon, _ = wired
    assert db.call_launch_viewer(None, USER, PROJECT)["return_string"] == "SUCCESS"
    wait_for(lambda: daemon.api.getViewer(PROJECT, "CodeDX")["state"] == 2, 60, what="viewer READY")
    assert db.call_kill(PROJECT, "1") == "SUCCESS"
    assert daemon.api.getViewer(PROJECT, "CodeDX")["state"] in (-6, -7)
    wait_for(lambda: daemon.api.getViewer(PROJECT, "CodeDX")["state"] == -7, 60, what="viewer TERMINATED")
    assert db.call_kill(PROJECT, "") == "SUCCESS"  # nothing left to stop is still a success
    marker = Path(f"/tmp/pw{secrets.token_hex(4)}")
    assert db.call_kill(f"x'; touch {marker}; '", "0") == "ERROR"
    assert not marker.exists()
    logged = db.sql("SELECT cmd FROM sys_exec_cmd_log ORDER BY sys_exec_cmd_log_id")
    assert len(logged) == 3 and f"--execution_record_uuid '{PROJECT}' --hard '1'" in logged[0][0]


def test_unreachable_daemon_is_an_error_line(scratch_db):
    install_cfg = Path(os.environ.get("TMPDIR", "/tmp")) / f"swampd-unreach-{secrets.token_hex(3)}.toml"
    from support.daemon import free_port

    install_cfg.write_text(f"[agentmonitor]\nport = {free_port()}\n")
    install = MysqlInstall(install_cfg)
    try:
        scratch_db.sql("UPDATE swampd_test_setting SET value=%s WHERE name='launch_viewer_cmd'",
                       (str(install.bin / "launch_viewer"),))
        out = scratch_db.call_launch_viewer(None, USER, PROJECT)
        assert out["return_string"].startswith("ERROR: swampd is not reachable"), out
    finally:
        install.remove()
        install_cfg.unlink()
