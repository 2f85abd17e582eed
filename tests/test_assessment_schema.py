"""The SWAMP-compatible assessment schema the tests use (tests/db/assessment_schema.sql), exercised for real.

Its event, procedures and trigger are what the end-to-end tests drive a run
with, so they are checked here against the reference: the event launches
through sys_exec and our wrapper (as the mysql user), the launch counter
gives up after 15 with 'Failed to launch', a soft delete kills the run.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pymysql
import pytest

from support.assessment_db import SCHEMAS, assessment_world, rewrite_schemas  # noqa: F401
from support.daemon import free_port, wait_for
from support.fake_agentmonitor import FakeAgentMonitor
from support.mariadb import MysqlInstall
from swampd.clients.assessment_db import VIEW_TO_BOG, VIEW_TO_BOG_OPTIONAL, VIEW_TO_CHECKSUM

#: swamp-assessment.md §4: exec_run_view's 41 columns, in order.
VIEW_COLUMNS = [
    "execution_record_uuid", "launch_counter", "project_uuid", "user_uuid", "package_name", "package_version",
    "package_language", "package_type", "package_path", "pkg_checksum", "source_path",
    "build_file", "build_system", "build_cmd", "build_target", "build_dir", "build_opt",
    "config_cmd", "config_opt", "config_dir",
    "bytecode_class_path", "bytecode_aux_class_path", "bytecode_source_path",
    "android_sdk_target", "android_lint_target", "android_redo_build", "use_gradle_wrapper",
    "language_version", "maven_version", "android_maven_plugin", "exclude_paths",
    "package_build_settings", "package_info",
    "tool_name", "version_string", "tool_path", "tool_checksum", "platform_identifier", "dependency_list",
    "user_cnf", "notify_when_complete_flag",
]


@pytest.fixture
def package(tmp_path: Path) -> Path:
    archive = tmp_path / "hello-c-2.1.tar.gz"
    archive.write_bytes(b"package bytes")
    return archive


@pytest.fixture
def agent() -> Iterator[FakeAgentMonitor]:
    server = FakeAgentMonitor()
    yield server
    server.close()


@pytest.fixture
def programs(tmp_path: Path, agent: FakeAgentMonitor) -> Iterator[MysqlInstall]:
    """The etc/mariadb wrappers, installed where the mysql user can run them, talking to ``agent``."""
    config = tmp_path / "swampd.toml"
    config.write_text(f'[agentmonitor]\nurl = "{agent.url}"\n')
    install = MysqlInstall(config)
    yield install
    install.remove()


@pytest.fixture
def recorder() -> Iterator[Path]:
    """A kill_run stand-in the mysql user can run: it writes its arguments, one per line."""
    directory = Path(tempfile.mkdtemp(prefix="swampd-kill-"))
    os.chmod(directory, 0o777)
    script = directory / "kill_run"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {directory}/argv\n")
    os.chmod(script, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_the_schema_names_are_rewritten_and_the_view_has_swamps_columns(assessment_world):
    world = assessment_world
    sql = "CALL assessment.x(); SELECT * FROM project.user_permission up, er.project_uuid, metric.metric_run;"
    assert rewrite_schemas(sql, world.names) == (
        f"CALL {world.prefix}assessment.x(); SELECT * FROM {world.prefix}project.user_permission up,"
        f" er.project_uuid, {world.prefix}metric.metric_run;")
    columns = [c for (c,) in world.sql("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"
                                       " AND TABLE_NAME = 'exec_run_view' ORDER BY ORDINAL_POSITION",
                                       (world.assessment,))]
    assert columns == VIEW_COLUMNS
    used = {c for c, _ in VIEW_TO_BOG + VIEW_TO_BOG_OPTIONAL + VIEW_TO_CHECKSUM}
    assert used == set(VIEW_COLUMNS) - {"execution_record_uuid", "package_info"}  # every column but those two
    # nothing of the world lives outside its six schemas, and SWAMP's names are not touched
    routines = world.sql("SELECT DISTINCT ROUTINE_SCHEMA FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA"
                         " LIKE %s", (world.prefix + "%",))
    assert {r for (r,) in routines} == {world.assessment, world.metric}
    assert world.sql("SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
                     (world.prefix + "%",))[0][0] == len(SCHEMAS)
    assert world.sql("SELECT @@global.event_scheduler")[0][0] == "ON"


def test_the_event_launches_a_run_through_sys_exec_and_our_wrapper(assessment_world, programs, agent, package):
    world = assessment_world
    world.use_programs(programs.bin)
    uuid = world.add_run(package)  # launch_flag = 1, as create_execution_record inserts it
    wait_for(lambda: world.record(uuid)["status"] == "SUBMITTING TO HTCONDOR", 15, what="the event's launch")
    assert agent.calls == [{"execrunid": uuid}]  # launchRun, from the CLI run by mysqld as the mysql user
    assert world.exec_log()[0] == (f"{programs.bin}/execute_execution_record '{uuid}'", 0)
    row = world.record(uuid)
    assert (row["launch_flag"], row["launch_counter"]) == (1, 1) and 18 <= row["launch_countdown"] <= 20
    assert world.status_history(uuid) == ["SUBMITTING TO HTCONDOR"]
    # the daemon, once it has the run, clears launch_flag: the event leaves the run alone from then on
    world.sql("UPDATE execution_record SET launch_flag = 0, launch_countdown = 0 WHERE execution_record_uuid = %s",
              (uuid,))
    time.sleep(3.5)
    assert len(agent.calls) == 1 and len(world.exec_log()) == 1


def test_an_unreachable_daemon_leaves_the_run_to_the_next_try(assessment_world, tmp_path, package):
    world = assessment_world
    world.events(False)
    config = tmp_path / "down.toml"
    config.write_text(f'[agentmonitor]\nurl = "http://127.0.0.1:{free_port()}/"\n')
    install = MysqlInstall(config)
    try:
        world.use_programs(install.bin)
        uuid = world.add_run(package)
        world.process_queue()
        ((cmd, status),) = world.exec_log()
        assert status == 3 << 8  # the wrapper's exit status 3, as system() returns it
        row = world.record(uuid)
        assert (row["status"], row["launch_flag"], row["launch_counter"], row["launch_countdown"]) == (
            "WAITING TO START", 1, 1, 20)
        for _ in range(20):  # about a minute of ticks in SWAMP: the countdown runs down, nothing is run
            world.process_queue()
        assert len(world.exec_log()) == 1 and world.record(uuid)["launch_countdown"] == 0
        world.process_queue()
        assert len(world.exec_log()) == 2 and world.record(uuid)["launch_counter"] == 2
    finally:
        install.remove()


def test_the_launch_counter_gives_up_after_15_with_failed_to_launch(assessment_world, package):
    world = assessment_world
    world.events(False)
    world.setting("launch_countdown", "0")
    world.setting("execute_execution_record_cmd", "/bin/false")
    uuid = world.add_run(package)
    for _ in range(15):
        world.process_queue()
    assert [rc != 0 for _, rc in world.exec_log()] == [True] * 15
    assert world.flags(uuid) == (1, 0, 0) and world.record(uuid)["launch_counter"] == 15
    world.process_queue()
    row = world.record(uuid)
    assert (row["status"], row["launch_flag"], row["complete_flag"]) == ("Failed to launch", 0, 1)
    world.process_queue()
    assert len(world.exec_log()) == 15 and world.status_history(uuid) == ["Failed to launch"]

    # the same end, driven by the event alone
    last = world.add_run(package, launch_counter=14)
    world.events(True)
    wait_for(lambda: world.record(last)["status"] == "Failed to launch", 15, what="the event giving up")
    assert world.flags(last) == (0, 0, 1) and len(world.exec_log()) == 16


def test_a_run_that_does_not_validate_is_completed_with_the_reason(assessment_world, package):
    world = assessment_world
    world.events(False)
    world.setting("validate_answer", "Error: tool is private")
    uuid = world.add_run(package)
    world.process_queue()
    row = world.record(uuid)
    assert (row["status"], row["launch_flag"], row["complete_flag"]) == ("Error: tool is private", 0, 1)
    assert world.exec_log() == []


def test_a_running_event_is_not_run_twice(assessment_world, package):
    world = assessment_world
    world.events(False)
    world.setting("execute_execution_record_cmd", "/bin/true")
    world.sql("UPDATE system_status SET value = 'Y', update_date = now()"
              " WHERE status_key = 'CURRENTLY_PROCESSING_EXECUTION_RECORDS'")
    uuid = world.add_run(package)
    world.events(True)
    wait_for(lambda: world.sql("SELECT count(*) FROM sys_exec_cmd_log WHERE cmd LIKE '%skipped%'")[0][0] > 0,
             10, what="a skipped tick")
    assert world.exec_log() == []
    world.sql("UPDATE system_status SET update_date = now() - INTERVAL 6 MINUTE"
              " WHERE status_key = 'CURRENTLY_PROCESSING_EXECUTION_RECORDS'")
    wait_for(lambda: world.record(uuid)["status"] == "SUBMITTING TO HTCONDOR", 10, what="the overrun reset")
    assert world.sql("SELECT count(*) FROM sys_exec_cmd_log WHERE cmd LIKE '%overran%'")[0][0] == 1


def test_a_soft_delete_kills_the_run_through_kill_run(assessment_world, recorder, package):
    world = assessment_world
    world.events(False)
    world.setting("kill_run_cmd", str(recorder / "kill_run"))
    uuid = world.add_run(package)
    world.soft_delete(uuid)
    assert (recorder / "argv").read_text().splitlines() == ["--execution_record_uuid", uuid, "--hard", "1"]
    assert world.kill_log() == [f" {recorder}/kill_run --execution_record_uuid '{uuid}' --hard '1'"]
    assert world.flags(uuid) == (0, 0, 0)
    done = world.add_run(package, launch_flag=0)
    world.sql("UPDATE execution_record SET complete_flag = 1 WHERE execution_record_uuid = %s", (done,))
    world.soft_delete(done)  # a finished run is only deleted
    assert len(world.kill_log()) == 1
    # kill_assessment_run passes any value along as one shell word
    hostile = "x'; touch /tmp/swampd-pwned; echo '"
    assert world.call_kill(hostile, "") == "SUCCESS"
    assert (recorder / "argv").read_text().splitlines() == ["--execution_record_uuid", hostile, "--hard", ""]
    assert not Path("/tmp/swampd-pwned").exists()


def test_update_execution_run_status_has_no_else(assessment_world, package):
    world = assessment_world
    world.events(False)
    uuid = world.add_run(package, launch_flag=0)
    with pytest.raises(pymysql.err.MySQLError) as refused:
        world.sql("CALL update_execution_run_status(%s, 'complete_flag', '1', @rs)", (uuid,))
    assert refused.value.args[0] == 1339  # "Case not found for CASE statement", as in SWAMP
    world.sql("CALL update_execution_run_status(%s, 'status', 'Finished', @rs)", (uuid,))
    assert world.record(uuid)["status"] == "Finished"


def test_the_procedure_writes_its_status_after_the_program_returns(assessment_world, programs, agent, package):
    """A hazard for the daemon, as SWAMP's procedure has it (db-deploy §1.7): 'SUBMITTING TO HTCONDOR'
    is written after execute_execution_record exits 0, so a status the daemon wrote while the
    program waited for its answer (or in the moment after) is overwritten."""
    from swampd.clients.assessment_db import AssessmentDatabase
    from swampd.config import parse_config

    world = assessment_world
    world.events(False)
    world.use_programs(programs.bin)
    db = AssessmentDatabase(parse_config({"mariadb": world.mariadb_table()}, "t.toml").mariadb)
    agent.on_launch = lambda body: db.update_field(body["execrunid"], "status", "Waiting in HTCondor Queue")
    uuid = world.add_run(package)
    world.process_queue()
    assert world.status_history(uuid) == ["Waiting in HTCondor Queue", "SUBMITTING TO HTCONDOR"]
    assert world.record(uuid)["status"] == "SUBMITTING TO HTCONDOR"
