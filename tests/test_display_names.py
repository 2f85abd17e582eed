"""Names from SWAMP's catalogue through the real database path, carried unchanged.

``CALL launch_viewer`` -> the tests' sys_eval UDF -> the etc/mariadb wrapper
(as the mysql user) -> launchviewer -> the daemon -> Code Dx (the double).
Tool and package names with slashes, '#', quotes and non-ASCII letters are
display text: they arrive as the database stores them (UTF-8, or latin1
bytes from a latin1 database: ``Café-lib`` as ``Caf\\xe9-lib``) and leave
unchanged for Code Dx, the registry, the log and nativereport.json.  Also:
every answer fits ``return_string VARCHAR(100)`` under the strict sql_mode.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pymysql
import pytest

from support.mariadb import NATIVE_VERSION_UUID, MysqlInstall, ScratchDB, ensure_mariadb
from support.registry import viewer_results
from support.scarf import HEADER, write_scarf
from test_codedx_uploads import all_final, make, received

PROJECT = "7d1f0c2e-5a4b-4c3d-9e8f-0a1b2c3d4e5f"
USER = "4b1f4a7e-6a43-11e3-8b8b-0800200c9a66"
CATALOGUE = [("C#-parser", "Parasoft C/C++test"), ("O'Brien-utils", "cppcheck"), ("Café-lib", "Parasoft C/C++test")]


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory the mysql user can read (results) and write (outgoing)."""
    root = Path(tempfile.mkdtemp(prefix="swampd-names-"))
    os.chmod(root, 0o755)
    (root / "outgoing").mkdir()
    shutil.chown(root / "outgoing", "mysql", "mysql")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def database(charset: str, install: MysqlInstall) -> ScratchDB:
    ensure_mariadb()
    db = ScratchDB(charset).create()
    db.sql("UPDATE swampd_test_setting SET value=%s WHERE name='launch_viewer_cmd'", (str(install.bin / "launch_viewer"),))
    return db


def add_result(db: ScratchDB, uuid: str, package: str, tool: str, file_path: Path, **more: Any) -> None:
    columns = {"assessment_result_uuid": uuid, "package_name": package, "package_type_id": 1, "tool_name": tool,
               "file_path": str(file_path), **more}
    db.sql(f"INSERT INTO assessment_result ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
           tuple(columns.values()))


@pytest.mark.parametrize("charset", ["utf8mb4", "latin1"])
def test_catalogue_names_reach_code_dx_the_registry_and_the_log(make_daemon, tmp_path, world, charset):
    daemon, record = make(make_daemon, tmp_path, result_roots=(world,))
    install = MysqlInstall(daemon.config)
    db = database(charset, install)
    try:
        for n, (package, tool) in enumerate(CATALOGUE):
            report = world / f"report{n}.xml"
            report.write_text(f"<AnalyzerReport tool_name='{n}'/>")
            add_result(db, f"ar-{n}", package, tool, report)
            out = db.call_launch_viewer(f"ar-{n}", USER, PROJECT)
            assert out["return_string"] == "SUCCESS", db.sql("SELECT cmd, output FROM swampd_test_eval_log")
        if charset == "latin1":  # the program really got latin1 bytes
            [(hexed,)] = db.sql("SELECT hex(cmd) FROM swampd_test_eval_log WHERE cmd LIKE '%%Caf%%'")
            assert "436166E92D6C6962" in hexed and "C3A9" not in hexed
        assert wait_uploads(daemon, 3)
        assert sorted(e["name"] for e in received(record, "project")) == sorted(p for p, _ in CATALOGUE)
        assert sorted(a["project_name"] for a in received(record, "analysis")) == sorted(p for p, _ in CATALOGUE)
        results = viewer_results(daemon.state_dir, PROJECT, "CodeDX")
        assert sorted((r["package"], r["tool_name"]) for r in results) == sorted(CATALOGUE)
        log = daemon.log()
        for package, tool in CATALOGUE:
            assert f"(package {package}, tool {tool})" in log
    finally:
        db.drop()
        install.remove()


def wait_uploads(daemon: Any, count: int) -> bool:
    from support.daemon import wait_for

    return bool(wait_for(lambda: all_final(daemon, PROJECT, count), 90, what=f"{count} uploads"))


def test_native_through_the_procedure_with_latin1_names(make_daemon, tmp_path, world):
    install = MysqlInstall(make_daemon(start=False).config)
    db = database("latin1", install)
    try:
        results = world / "A-Results" / "ar-native"
        results.mkdir(parents=True)
        header = {k: v for k, v in HEADER.items() if k not in ("package_name", "tool_name")}
        scarf = write_scarf(results / "parsed_results.xml",
                            [{"code": "SECURITY-13", "group": "SECURITY", "severity": "2", "message": "m",
                              "file": "pkg1/a.c", "line": 4}], header)
        for path in (world / "A-Results", results, scarf):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        db.sql("INSERT INTO execution_record VALUES ('er-1', '2024-11-30 10:00:00', '2024-11-30 10:05:00')")
        add_result(db, "ar-native", "Café-lib", "Parasoft C/C++test", scarf, package_version="1.0",
                   tool_version="10.3.2", platform_name="Debian", platform_version="12",
                   execution_record_uuid="er-1")
        outgoing = f"{world}/outgoing/"
        out = db.call_launch_viewer("ar-native", USER, PROJECT, version=NATIVE_VERSION_UUID, outgoing=outgoing)
        assert out["return_string"] == "SUCCESS", db.sql("SELECT cmd, output FROM swampd_test_eval_log")
        assert out["return_path"] == f"{outgoing}ar-native/nativereport.json"
        top = json.loads(Path(out["return_path"]).read_text(encoding="utf-8"))["AnalyzerReport"]
        assert (top["package_name"], top["tool_name"], top["platform_name"]) == ("Café-lib", "Parasoft", "Debian")
        assert (top["assessment_start_ts"], top["assessment_end_ts"]) == ("2024-11-30 10:00:00", "2024-11-30 10:05:00")
        assert "BugSeverity" not in top["BugInstances"][0]  # "Parasoft" has no list of its own: generic fields
        assert Path(outgoing, "ar-native", "nativereport.html").stat().st_uid == shutil._get_uid("mysql")  # type: ignore[attr-defined]
    finally:
        db.drop()
        install.remove()


def test_every_answer_fits_return_string_under_strict_sql_mode(make_daemon, world):
    daemon = make_daemon()
    install = MysqlInstall(daemon.config)
    db = database("utf8mb4", install)
    try:
        # the procedure really is strict: an answer of 150 characters fails the whole CALL
        loud = world / "loud"
        loud.write_text("#!/bin/sh\nprintf 'ERROR: %0143d\\n' 0\n")
        os.chmod(loud, 0o755)
        db.sql("UPDATE swampd_test_setting SET value=%s WHERE name='launch_viewer_cmd'", (str(loud),))
        with pytest.raises(pymysql.err.DataError) as caught:
            db.call_launch_viewer(None, USER, PROJECT)
        assert caught.value.args[0] == 1406
        # launchviewer's long refusals are shortened to fit, with the CALL succeeding
        db.sql("UPDATE swampd_test_setting SET value=%s WHERE name='launch_viewer_cmd'",
               (str(install.bin / "launch_viewer"),))
        for project in ("'; rm -rf / ; echo 'a long hostile project'", "x" * 44 + "$", "../" * 15):
            out = db.call_launch_viewer(None, USER, project)
            answer = out["return_string"]
            assert answer.startswith("ERROR") and len(answer) <= 100 and answer.endswith("\n"), answer
        # cut where too long, keeping a trailing fault code
        assert any(a.endswith("...\n") or "... (fault" in a for (a,) in db.sql("SELECT output FROM swampd_test_eval_log"))
        assert daemon.api.listViewers() == []
    finally:
        db.drop()
        install.remove()
