"""clients.assessment_db against the real MariaDB and SWAMP's assessment schema (tests/db/assessment_schema.sql)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from support.assessment_db import SONATYPE_TOOL_VERSION, AssessmentWorld, sha512_of
from support.mariadb import ensure_mariadb, start_mariadb, stop_mariadb
from swampd.bog import format_bog, parse_bog
from swampd.clients.assessment_db import VIEW_TO_BOG, AssessmentDatabase, BadRunArgument, fit_text
from swampd.clients.mariadb import DatabaseRefused, DatabaseUnavailable
from swampd.config import parse_config
from swampd.results.metrics import PackageLines
from swampd.results.store import StoredResult

HOSTILE = ["x'; DROP TABLE execution_record; --", "../../etc/passwd", "", " ", "a b", "vrun_p_CodeDX",
           "M-' OR '1'='1", "é" * 3, "a" * 200, "\n"]
#: What etc/mariadb/grants.sql gives the daemon's account for assessment runs ({assessment}, {metric}: the world's).
DAEMON_GRANTS = [
    "GRANT SELECT ON {assessment}.exec_run_view",
    "GRANT SELECT, UPDATE ON {assessment}.execution_record",
    "GRANT SELECT ON {assessment}.assessment_result",
    "GRANT EXECUTE ON PROCEDURE {assessment}.update_execution_run_status",
    "GRANT EXECUTE ON PROCEDURE {assessment}.insert_results",
    "GRANT SELECT, UPDATE ON {metric}.metric_run",
]


@pytest.fixture
def world() -> Iterator[AssessmentWorld]:
    """A world whose event is off: these tests drive the rows themselves."""
    ensure_mariadb()
    made = AssessmentWorld().create()
    made.events(False)
    try:
        yield made
    finally:
        made.drop()


def client(world: AssessmentWorld, **extra: object) -> AssessmentDatabase:
    config = parse_config({"mariadb": world.mariadb_table(**extra)}, "test.toml")
    assert config.mariadb is not None
    return AssessmentDatabase(config.mariadb)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    archive = tmp_path / "hello-c-2.1.tar.gz"
    archive.write_bytes(b"not really a tarball, but bytes with a checksum\n")
    return archive


def stored(result_uuid: str = "5C1B6B0E-AAAA-4BBB-8CCC-000000000001", **changes: object) -> StoredResult:
    values: dict[str, object] = dict(
        result_uuid=result_uuid,
        result_path=f"/swamp/SCAProjects/p/A-Results/{result_uuid}/parsed_results.xml", result_checksum="a" * 128,
        source_archive_path=f"/swamp/SCAProjects/p/A-Results/{result_uuid}/hello-c-2.1.tar.gz",
        source_archive_checksum="b" * 128,
        log_path=f"/swamp/SCAProjects/p/A-Logs/{result_uuid}/run.out", log_checksum="c" * 128,
        weakness_count=7, lines_of_code=-1, status_out="NOTE: begin\nPASS: all\nNOTE: end",
        status_out_error="")
    values.update(changes)
    return StoredResult(**values)  # type: ignore[arg-type]


# -- the BOG ---------------------------------------------------------------------------
def test_run_bog_has_swamps_keys_and_values(world, package):
    db = client(world)
    uuid = world.add_run(package, tool="cppcheck", tool_version="2.10", platform="ubuntu-16.04-64",
                         notify=True, launch_counter=0, name="hello-c", version="2.1",
                         source_path="hello-c-2.1", build_system="make", use_gradle_wrapper=0, android_redo_build=1)
    world.sql("UPDATE execution_record SET launch_counter = 1 WHERE execution_record_uuid = %s", (uuid,))
    record = world.record(uuid)
    bog = db.run_bog(uuid)
    assert bog is not None
    assert bog["execrunid"] == uuid and bog["version"] == "2" and bog["launch_counter"] == "1"
    assert (bog["projectid"], bog["userid"]) == (record["project_uuid"], record["user_uuid"])
    assert bog["notify_when_complete_flag"] == "1"
    assert (bog["toolname"], bog["tool-version"], bog["platform_identifier"]) == ("cppcheck", "2.10", "ubuntu-16.04-64")
    assert (bog["packagename"], bog["packageversion"], bog["packagetype"]) == ("hello-c", "2.1", "C/C++")
    assert (bog["packagepath"], bog["packagesourcepath"]) == (str(package), "hello-c-2.1")
    assert (bog["packagebuild_system"], bog["packagebuild_dir"]) == ("make", ".")  # build_dir defaults to '.'
    assert (bog["use_gradle_wrapper"], bog["android_redo_build"]) == ("false", "true")
    # translated keys whose column is NULL carry the literal 'null'; optional ones are left out
    assert bog["toolpath"] == "null" and bog["packageconfig_cmd"] == "null" and bog["packagebuild_settings"] == "null"
    assert "packagedependencylist" not in bog and "user_cnf" not in bog
    assert set(key for _, key in VIEW_TO_BOG) <= set(bog)
    # the checksums, under the keys the execute node checks while copying
    assert bog["swampd_package_sha512"] == sha512_of(package) and "swampd_tool_sha512" not in bog
    assert "pkg_checksum" not in bog and "package_info" not in bog
    assert all(isinstance(v, str) for v in bog.values())
    assert parse_bog(format_bog(bog)) == bog


def test_run_bog_of_a_metric_run_and_of_runs_that_are_not_there(world, package):
    db = client(world)
    metric = world.add_metric_run(package, tool="cloc", tool_version="1.80")
    bog = db.run_bog(metric)
    assert bog is not None and bog["execrunid"] == metric and bog["toolname"] == "cloc"
    assert (bog["projectid"], bog["userid"], bog["notify_when_complete_flag"]) == ("METRIC", "METRIC", "0")
    arun = world.add_run(package)
    world.sql("UPDATE execution_record SET complete_flag = 1 WHERE execution_record_uuid = %s", (arun,))
    assert db.run_bog(arun) is None  # the view shows incomplete runs only
    assert db.run_bog("0b1f0000-0000-4000-8000-00000000dead") is None
    assert db.run_bog("M-0b1f0000-0000-4000-8000-00000000dead") is None


def test_run_bog_repairs_what_swamps_bog_round_trip_corrupted(world, package):
    """Multi-line JSON (user_cnf, packagebuild_settings) on one line; values trimmed;
    two dependency rows merged instead of one picked at random."""
    db = client(world)
    user = "51b30000-0000-4000-8000-000000000001"
    world.sql("INSERT INTO {project}.user_permission VALUES ('perm-1', %s, 'sonatype-user', %s)",
              (user, json.dumps({"name": "Ada L", "email": "ada@example.org", "organization": "UW"}, indent=2)))
    sonatype = world.add_tool("Sonatype Application Health Check", "1.0", tool_version_uuid=SONATYPE_TOOL_VERSION)
    settings = json.dumps({"sln_files": ["a.sln"], "proj_files": {"a.sln": ["x.csproj"]}}, indent=4)
    uuid = world.add_run(package, tool_version_uuid=sonatype, user=user, package_type=".NET",
                         package_build_settings=settings, build_target="  all  ")
    package_version = world.record(uuid)["package_version_uuid"]
    platform = world.record(uuid)["platform_version_uuid"]
    world.add_dependency(package_version, platform, "libssl-dev zlib1g-dev")
    world.add_dependency(package_version, platform, "zlib1g-dev libxml2-dev")
    assert len(world.view_rows(uuid)) == 2  # SWAMP's view gives two rows; its Perl took the first
    bog = db.run_bog(uuid)
    assert bog is not None
    assert json.loads(bog["user_cnf"]) == {"name": "Ada L", "email": "ada@example.org", "organization": "UW"}
    assert "\n" not in bog["user_cnf"] and "\n" not in bog["packagebuild_settings"]
    assert json.loads(bog["packagebuild_settings"]) == json.loads(settings)
    assert bog["packagebuild_target"] == "all"
    assert bog["packagedependencylist"] == "libssl-dev zlib1g-dev libxml2-dev"
    assert parse_bog(format_bog(bog)) == {k: v for k, v in bog.items() if v}  # the BOG file carries it intact
    # a second sonatype-user permission makes the view's subquery fail: refused, with the reason
    world.sql("INSERT INTO {project}.user_permission VALUES ('perm-2', %s, 'sonatype-user', '{}')", (user,))
    with pytest.raises(DatabaseRefused, match="more than one sonatype-user"):
        db.run_bog(uuid)


def test_hostile_run_ids_never_reach_the_database(world):
    db = client(world)
    for bad in HOSTILE:
        for call in (lambda: db.run_bog(bad), lambda: db.update_field(bad, "status", "x"),
                     lambda: db.set_flags(bad, launch_flag=0), lambda: db.save_results(bad, stored())):
            with pytest.raises(BadRunArgument):
                call()
    with pytest.raises(BadRunArgument):
        db.save_results("0b1f0000-0000-4000-8000-000000000001", stored(result_uuid="../x"))
    assert world.sql("SELECT count(*) FROM execution_record")[0][0] == 0  # and nothing was created or dropped


# -- status fields and flags ----------------------------------------------------------
def test_update_field_writes_each_field_as_swamp_did(world, package):
    db = client(world)
    uuid = world.add_run(package, launch_flag=0)
    world.sql("UPDATE execution_record SET create_date = %s WHERE execution_record_uuid = %s",
              (datetime(2026, 1, 2, 3, 0, 0), uuid))
    start = datetime(2026, 1, 2, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))  # 02:05:06 UTC
    db.update_field(uuid, "status", "Waiting in HTCondor Queue")
    db.update_field(uuid, "run_date", start)
    for field, value in (("execute_node_architecture_id", "exec-1.example.org"), ("vm_hostname", "aswamp-1"),
                         ("vm_username", "builder"), ("vm_password", "aB3_x9Qz"), ("vm_image", "debian-12.qcow2"),
                         ("vm_ip_address", "192.168.123.7"), ("tool_filename", "cppcheck-2.10.tar.gz"),
                         ("slot_size_start", "123456"), ("lines_of_code", 42)):
        db.update_field(uuid, field, value)
    db.update_field(uuid, "status", "Performing assessment")
    row = world.record(uuid)
    assert row["run_date"] == datetime(2026, 1, 2, 2, 5, 6) and row["queued_duration"] == "-00:54:54"
    assert (row["vm_password"], row["vm_ip_address"], row["code_lines"]) == ("aB3_x9Qz", "192.168.123.7", 42)
    db.update_field(uuid, "completion_date", datetime(2026, 1, 2, 2, 15, 6))  # naive: UTC
    db.update_field(uuid, "status", "Finished with Warnings")
    row = world.record(uuid)
    assert row["execution_duration"] == "00:10:00" and row["completion_date"] == datetime(2026, 1, 2, 2, 15, 6)
    assert row["vm_password"] is None  # the procedure blanks it once the status is Finished...
    assert world.status_history(uuid) == ["Waiting in HTCondor Queue", "Performing assessment",
                                          "Finished with Warnings"]
    # a value longer than its column is cut, not an error under the strict sql_mode
    db.update_field(uuid, "status", "Finished with Errors" + " - x" * 60)
    assert world.record(uuid)["status"].startswith("Finished with Errors") and len(world.record(uuid)["status"]) == 100
    db.update_field(uuid, "vm_hostname", "ümlaut-☃-host")  # latin1 database: the snowman becomes '?'
    assert world.record(uuid)["vm_hostname"] == "ümlaut-?-host"


def test_update_field_refusals(world, package):
    db = client(world)
    with pytest.raises(DatabaseRefused, match="Record Not Found"):
        db.update_field("0b1f0000-0000-4000-8000-000000000002", "status", "Finished")
    with pytest.raises(DatabaseRefused, match="Record Not Found"):
        db.update_field("M-0b1f0000-0000-4000-8000-000000000002", "status", "Finished")
    uuid = world.add_run(package, launch_flag=0)
    with pytest.raises(BadRunArgument):
        db.update_field(uuid, "complete_flag", "1")  # not a field of the procedure
    with pytest.raises(BadRunArgument):
        db.update_field(uuid, "status", 1.5)  # type: ignore[arg-type]
    with pytest.raises(DatabaseRefused):  # a date the server cannot read: the database's own no
        db.update_field(uuid, "run_date", "yesterday")
    assert world.record(uuid)["run_date"] is None


def test_update_field_of_a_metric_run_goes_to_metric_run(world, package):
    db = client(world)
    metric = world.add_metric_run(package)
    db.update_field(metric, "status", "Performing assessment")
    db.update_field(metric, "vm_password", "secret12")
    db.update_field(metric, "status", "Finished")
    row = world.record(metric)
    assert row["status"] == "Finished" and row["vm_password"] is None


def test_set_flags_for_assessment_and_metric_runs(world, package):
    db = client(world)
    uuid = world.add_run(package)
    metric = world.add_metric_run(package)
    assert world.flags(uuid) == (1, 0, 0)
    db.set_flags(uuid, launch_flag=0, submitted_to_condor_flag=1)
    assert world.flags(uuid) == (0, 1, 0)
    db.set_flags(uuid, launch_flag=0, submitted_to_condor_flag=True)  # again: the same row, unchanged, is fine
    db.set_flags(uuid, complete_flag=1)
    assert world.flags(uuid) == (0, 1, 1)
    db.set_flags(uuid)  # nothing to set: no call at all
    db.set_flags(metric, launch_flag=False, submitted_to_condor_flag=True, complete_flag=True)
    assert world.flags(metric) == (0, 1, 1)
    with pytest.raises(DatabaseRefused, match="no execution_record row"):
        db.set_flags("0b1f0000-0000-4000-8000-000000000003", complete_flag=1)
    with pytest.raises(DatabaseRefused, match="no metric_run row"):
        db.set_flags("M-0b1f0000-0000-4000-8000-000000000003", complete_flag=1)
    with pytest.raises(BadRunArgument):
        db.set_flags(uuid, complete_flag=2)


# -- results ---------------------------------------------------------------------------
def test_save_results_inserts_one_row_as_insert_results_does(world, package):
    db = client(world)
    uuid = world.add_run(package, launch_flag=0, name="hello-c", version="2.1")
    db.update_field(uuid, "vm_hostname", "aswamp-1")
    started = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    db.update_field(uuid, "run_date", started)
    result = stored(weakness_count=-1, status_out_error="build")
    db.save_results(uuid, result)
    (row,) = world.results(uuid)
    assert row["assessment_result_uuid"] == result.result_uuid and row["file_host"] == "SWAMP"
    assert (row["file_path"], row["checksum"]) == (result.result_path, result.result_checksum)
    assert (row["source_archive_path"], row["source_archive_checksum"]) == (result.source_archive_path, "b" * 128)
    assert (row["log_path"], row["log_checksum"]) == (result.log_path, "c" * 128)
    assert row["weakness_cnt"] is None and row["status_out_error_msg"] == "build"
    assert row["status_out"] == result.status_out
    assert (row["package_name"], row["package_version"], row["tool_name"], row["tool_version"]) == (
        "hello-c", "2.1", "cppcheck", "2.10")
    assert (row["platform_name"], row["vm_hostname"], row["run_date"]) == (
        "Debian Linux", "aswamp-1", started)
    assert row["tool_uuid"] is not None  # set by the table's trigger
    assert world.record(uuid)["code_lines"] is None  # -1 ("not counted") is not written as code_lines = -1


def test_save_results_is_exactly_once_after_a_crash_and_under_a_race(world, package):
    db = client(world)
    uuid = world.add_run(package, launch_flag=0)
    result = stored(weakness_count=3, lines_of_code=1200)
    db.save_results(uuid, result)
    # the daemon died after the CALL committed and before it recorded that: the retry finds the row
    db.save_results(uuid, result)
    db.save_results(uuid, result)
    assert len(world.results(uuid)) == 1 and world.record(uuid)["code_lines"] == 1200
    # two workers at once with one result uuid: still one row, and neither fails
    second = stored("5C1B6B0E-AAAA-4BBB-8CCC-000000000002")
    errors: list[BaseException] = []

    def save() -> None:
        try:
            client(world).save_results(uuid, second)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    retryable = [e for e in errors if isinstance(e, DatabaseUnavailable)]  # a deadlock is retried, never a refusal
    assert len(retryable) == len(errors), errors
    if errors:
        db.save_results(uuid, second)
    assert sorted(r["assessment_result_uuid"] for r in world.results(uuid)) == [
        result.result_uuid, second.result_uuid]
    # a result uuid that belongs to another run is refused, not silently accepted
    other = world.add_run(package, launch_flag=0)
    with pytest.raises(DatabaseRefused, match="already belongs to run"):
        db.save_results(other, result)
    with pytest.raises(DatabaseRefused, match="Record Not Found"):
        db.save_results("0b1f0000-0000-4000-8000-000000000004", stored("5C1B6B0E-AAAA-4BBB-8CCC-000000000009"))


def test_a_10_mb_status_out_is_capped_not_failed_under_strict_sql_mode(world, package):
    assert world.sql("SELECT sql_mode FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s AND"
                     " ROUTINE_NAME = 'insert_results'", (world.assessment,))[0][0].startswith("STRICT_TRANS_TABLES")
    db = client(world)
    uuid = world.add_run(package, launch_flag=0)
    huge = "\n\n  NOTE: begin ✓ 😀\n" + ("PASS: step  (weaknesses: 1)  0.1s\n" * 320_000) + "FAIL: all\n"
    assert len(huge) > 10_000_000
    db.save_results(uuid, stored(status_out=huge, status_out_error="x" * 5000))
    (row,) = world.results(uuid)
    assert len(row["status_out"]) == 3000 and row["status_out"].startswith("NOTE: begin ? ?\nPASS: step")
    assert row["status_out_error_msg"] == "x" * 200
    metric = world.add_metric_run(package)
    db.save_results(metric, stored(status_out=huge))
    assert len(world.record(metric)["status_out"]) == 3000


def test_save_results_of_a_metric_run_updates_metric_run(world, package):
    db = client(world)
    metric = world.add_metric_run(package)
    result = stored(result_path=f"/swamp/store/SCAPackages/Metrics/{metric}/parsed_results.xml",
                    source_archive_path="", source_archive_checksum="", log_path="", log_checksum="",
                    package_lines=PackageLines(code=120, comment=30, blank=10, total=160))
    db.save_results(metric, result)
    db.save_results(metric, result)  # the same update again changes nothing
    row = world.record(metric)
    assert (row["file_host"], row["result_path"], row["result_checksum"]) == ("SWAMP", result.result_path, "a" * 128)
    assert (row["pkg_code_lines"], row["pkg_comment_lines"], row["pkg_blank_lines"], row["pkg_total_lines"]) == (
        120, 30, 10, 160)
    assert row["status_out"] == result.status_out and row["log_path"] is None
    with pytest.raises(DatabaseRefused, match="no metric_run row"):
        db.save_results("M-0b1f0000-0000-4000-8000-000000000005", result)


def test_paths_that_do_not_fit_are_refused_not_cut(world, package):
    db = client(world)
    uuid = world.add_run(package, launch_flag=0)
    with pytest.raises(DatabaseRefused, match="result_path is 2"):
        db.save_results(uuid, stored(result_path="/swamp/" + "d/" * 100 + "parsed_results.xml"))
    with pytest.raises(DatabaseRefused, match="cannot hold the path"):
        db.save_results(uuid, stored(source_archive_path="/swamp/store/☃-1.0.tar.gz"))
    assert world.results(uuid) == []


def test_fit_text():
    assert fit_text("abc", 2, "latin1") == "ab"
    assert fit_text("€ ü ☃ 😀 \x81 \x85", 100, "latin1") == "€ ü ? ? \x81 ?"
    assert fit_text("☃ 😀", 100, "utf8mb3") == "☃ ?" and fit_text("☃ 😀", 100, "utf8mb4") == "☃ 😀"


# -- the database down, and a least-privilege account -----------------------------------
def test_mariadb_down_is_retryable_for_every_call(world, package):
    db = client(world, connect_timeout=1)
    uuid = world.add_run(package, launch_flag=0)
    stop_mariadb()
    try:
        for call in (lambda: db.run_bog(uuid), lambda: db.update_field(uuid, "status", "x"),
                     lambda: db.set_flags(uuid, launch_flag=0), lambda: db.save_results(uuid, stored())):
            with pytest.raises(DatabaseUnavailable):
                call()
    finally:
        start_mariadb()
    db.save_results(uuid, stored())
    assert len(world.results(uuid)) == 1


def test_the_documented_grants_are_enough(world, package, tmp_path):
    grants = Path(__file__).resolve().parents[1] / "etc" / "mariadb" / "grants.sql"
    for grant in DAEMON_GRANTS:  # the same grants as the file an operator runs
        assert grant.format(assessment="assessment", metric="metric") in grants.read_text()
    user, password = world.add_user(DAEMON_GRANTS)
    secret = tmp_path / "mariadb.password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    db = client(world, user=user, password_file=str(secret))
    uuid = world.add_run(package)
    metric = world.add_metric_run(package)
    assert db.run_bog(uuid) is not None and db.run_bog(metric) is not None
    db.set_flags(uuid, launch_flag=0, submitted_to_condor_flag=1)
    db.update_field(uuid, "status", "Finished")
    db.save_results(uuid, stored())
    db.save_results(uuid, stored())
    db.set_flags(metric, complete_flag=1)
    db.save_results(metric, stored())
    assert len(world.results(uuid)) == 1 and world.flags(metric) == (1, 0, 1)


def test_a_row_held_by_the_web_servers_soft_delete_is_retried_not_waited_for(world, package, tmp_path):
    """db-deploy §1.5: the soft delete runs kill_run inside its UPDATE, holding the record's row lock."""
    slow_kill = Path(tempfile.mkdtemp(prefix="swampd-slowkill-"))
    try:
        os.chmod(slow_kill, 0o755)
        (slow_kill / "kill_run").write_text("#!/bin/sh\nsleep 6\n")
        os.chmod(slow_kill / "kill_run", 0o755)
        world.setting("kill_run_cmd", str(slow_kill / "kill_run"))
        uuid = world.add_run(package)
        deleting = threading.Thread(target=world.soft_delete, args=(uuid,))
        deleting.start()
        time.sleep(1.0)
        db = client(world, read_timeout=3)  # waits at most 2 s for a lock
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="1205"):
            db.set_flags(uuid, submitted_to_condor_flag=1)
        assert time.monotonic() - started < 4
        deleting.join(30)
        db.set_flags(uuid, submitted_to_condor_flag=1)  # the retry, once kill_run has returned
        assert world.flags(uuid) == (0, 1, 0)
    finally:
        shutil.rmtree(slow_kill, ignore_errors=True)
