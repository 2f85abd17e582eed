"""A scratch SWAMP assessment world on the real MariaDB, for the assessment-run tests.

SWAMP's procedures name their schemas (``assessment.``, ``metric.``,
``package_store.``, ...), so one scratch database is not enough.  An
``AssessmentWorld`` is six scratch schemas sharing a random prefix
(``swampd_t<hex>_assessment``, ``..._metric``, ``..._package_store``,
``..._tool_shed``, ``..._platform_store``, ``..._project``):
``tests/db/assessment_schema.sql`` is loaded with every schema name rewritten
to its prefixed one, under MariaDB's strict sql_mode, in SWAMP's latin1 by
default.  Its ``process_execution_records`` event runs every 3 s, so
``create()`` turns the server's event scheduler on; ``drop()`` removes the
six schemas (and with them the event).

Typical use (the daemon side points ``[mariadb]`` at the world and the
database's sys_exec at the wrappers a ``MysqlInstall`` wrote)::

    world = AssessmentWorld().create()
    daemon = make_daemon(extra={"mariadb": world.mariadb_table()})
    install = MysqlInstall(daemon.config)
    world.use_programs(install.bin)             # execute_execution_record, kill_run
    uuid = world.add_run(package_archive, tool="cppcheck")   # launch_flag = 1: the event launches it
    wait_for(lambda: world.record(uuid)["complete_flag"] == 1, 120)
    world.status_history(uuid)                  # every status in order, whoever wrote it
    world.results(uuid)                         # assessment_result rows
"""
from __future__ import annotations

import hashlib
import re
import secrets
import subprocess
import uuid as uuidlib
from pathlib import Path
from typing import Any, Iterator

import pymysql.cursors
import pytest

from support.mariadb import DB_DIR, connect, ensure_mariadb

SCHEMAS = ("assessment", "metric", "package_store", "tool_shed", "platform_store", "project")
_SCHEMA_REF = re.compile(r"(?<![\w.$`])(" + "|".join(SCHEMAS) + r")\.(?=[A-Za-z_])")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(SCHEMAS) + r")\}")
STRICT = "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
#: SWAMP's Sonatype tool version, the one run kind whose view row carries user_cnf.
SONATYPE_TOOL_VERSION = "a6d2a89e-4a1c-11e7-a337-001a4a81450b"


def rewrite_schemas(sql: str, names: dict[str, str]) -> str:
    """``sql`` with every ``assessment.``-style schema reference renamed by ``names``."""
    return _SCHEMA_REF.sub(lambda m: f"{names[m.group(1)]}.", sql)


def sha512_of(path: str | Path) -> str:
    return hashlib.sha512(Path(path).read_bytes()).hexdigest()


def drop_stale_worlds(max_age: float = 3 * 3600) -> None:
    """Drop worlds a killed test run left behind (older than ``max_age`` seconds): their events
    would otherwise run every 3 s for ever."""
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT TABLE_SCHEMA FROM information_schema.TABLES WHERE TABLE_SCHEMA REGEXP"
                    " '^swampd_t[0-9a-f]{8}_assessment$' GROUP BY TABLE_SCHEMA"
                    " HAVING MIN(CREATE_TIME) < now() - INTERVAL %s SECOND", (int(max_age),))
        for (schema,) in cur.fetchall():
            prefix = schema[: -len("assessment")]
            for name in SCHEMAS:
                cur.execute(f"DROP DATABASE IF EXISTS `{prefix}{name}`")


class AssessmentWorld:
    """SWAMP's assessment and metric schemas (and what exec_run_view joins), per test."""

    def __init__(self, charset: str = "latin1") -> None:
        """``charset``: every schema's default character set (SWAMP's are latin1)."""
        self.prefix = f"swampd_t{secrets.token_hex(4)}_"
        self.names = {name: f"{self.prefix}{name}" for name in SCHEMAS}
        self.charset = charset
        self.users: list[str] = []
        self._platforms: dict[str, str] = {}
        self._tools: dict[tuple[str, str], str] = {}
        self._metric_tools: dict[tuple[str, str], str] = {}

    # -- life ------------------------------------------------------------------------
    @property
    def assessment(self) -> str:
        return self.names["assessment"]

    @property
    def metric(self) -> str:
        return self.names["metric"]

    def create(self) -> "AssessmentWorld":
        ensure_mariadb()
        drop_stale_worlds()
        with connect() as conn, conn.cursor() as cur:
            for name in self.names.values():
                cur.execute(f"CREATE DATABASE {name} CHARACTER SET {self.charset}")
            cur.execute("SET GLOBAL event_scheduler = ON")
        sql = rewrite_schemas((DB_DIR / "assessment_schema.sql").read_text(), self.names)
        done = subprocess.run(
            ["mariadb", "--user=root", f"--database={self.assessment}",
             f"--init-command=SET SESSION sql_mode='{STRICT}'", f"--default-character-set={self.charset}"],
            input=sql.encode(), capture_output=True, timeout=120)
        if done.returncode != 0:
            self.drop()
            raise AssertionError(f"assessment_schema.sql did not load: {done.stderr.decode()}")
        return self

    def drop(self) -> None:
        with connect() as conn, conn.cursor() as cur:
            for name in self.names.values():
                cur.execute(f"DROP DATABASE IF EXISTS {name}")
            for user in self.users:
                cur.execute(f"DROP USER IF EXISTS {user}")

    def mariadb_table(self, **extra: Any) -> dict[str, Any]:
        """The daemon's ``[mariadb]`` table for this world (as root over TCP)."""
        return {"host": "127.0.0.1", "port": 3306, "user": "root", "database": self.assessment,
                "assessment_database": self.assessment, "metric_database": self.metric,
                "connect_timeout": 2, **extra}

    def add_user(self, grants: list[str]) -> tuple[str, str]:
        """A database account with exactly ``grants`` (``{assessment}``, ``{metric}`` are this world's)."""
        name, password = f"swampd_a_{secrets.token_hex(3)}", secrets.token_hex(12)
        with connect() as conn, conn.cursor() as cur:
            for host in ("localhost", "127.0.0.1"):
                cur.execute(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY %s", (password,))
                self.users.append(f"'{name}'@'{host}'")
                for grant in grants:
                    cur.execute(grant.format(assessment=self.assessment, metric=self.metric)
                                + f" TO '{name}'@'{host}'")
        return name, password

    # -- SQL -------------------------------------------------------------------------
    def named(self, statement: str) -> str:
        """``statement`` with ``{assessment}``, ``{metric}``, ... replaced by this world's schema names."""
        return _PLACEHOLDER.sub(lambda m: self.names[m.group(1)], statement)

    def sql(self, statement: str, args: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement as root in the assessment schema; ``{metric}`` etc. name this world's schemas."""
        with connect(self.assessment) as conn, conn.cursor() as cur:
            cur.execute(self.named(statement), args)
            return list(cur.fetchall())

    def rows(self, statement: str, args: Any = None) -> list[dict[str, Any]]:
        with connect(self.assessment, cursorclass=pymysql.cursors.DictCursor) as conn, conn.cursor() as cur:
            cur.execute(self.named(statement), args)
            return list(cur.fetchall())

    def setting(self, name: str, value: str) -> None:
        """Set one of the test schema's settings (execute_execution_record_cmd, kill_run_cmd,
        launch_countdown, validate_answer)."""
        self.sql("UPDATE swampd_test_setting SET value = %s WHERE name = %s", (value, name))

    def use_programs(self, bin_dir: str | Path) -> None:
        """Point the procedures at ``bin_dir/execute_execution_record`` and ``bin_dir/kill_run``."""
        self.setting("execute_execution_record_cmd", str(Path(bin_dir) / "execute_execution_record"))
        self.setting("kill_run_cmd", str(Path(bin_dir) / "kill_run"))

    def events(self, enabled: bool) -> None:
        """Turn this world's ``process_execution_records`` event on or off."""
        self.sql(f"ALTER EVENT process_execution_records {'ENABLE' if enabled else 'DISABLE'}")

    def process_queue(self) -> None:
        """One pass of ``process_execution_records()``, as one tick of the event runs it."""
        self.sql("CALL process_execution_records()")

    # -- catalogue: platforms, tools, packages ---------------------------------------
    def add_platform(self, identifier: str = "debian-12-64", name: str = "Debian Linux",
                     version: str = "12 64-bit") -> str:
        """A platform version; its uuid (one per identifier)."""
        if identifier not in self._platforms:
            platform, platform_version = str(uuidlib.uuid4()), str(uuidlib.uuid4())
            self.sql("INSERT INTO {platform_store}.platform (platform_uuid, name) VALUES (%s, %s)", (platform, name))
            self.sql("INSERT INTO {platform_store}.platform_version (platform_version_uuid, platform_uuid,"
                     " version_string, platform_identifier) VALUES (%s, %s, %s, %s)",
                     (platform_version, platform, version, identifier))
            self._platforms[identifier] = platform_version
        return self._platforms[identifier]

    def add_tool(self, name: str = "cppcheck", version: str = "2.10", tool_path: str | None = None,
                 checksum: str | None = None, policy_code: str | None = None,
                 tool_version_uuid: str | None = None) -> str:
        """A tool version; its uuid (one per name and version unless a uuid is given)."""
        key = (name, version)
        if tool_version_uuid is None and key in self._tools:
            return self._tools[key]
        tool, tool_version = str(uuidlib.uuid4()), tool_version_uuid or str(uuidlib.uuid4())
        self.sql("INSERT INTO {tool_shed}.tool (tool_uuid, name, policy_code) VALUES (%s, %s, %s)",
                 (tool, name, policy_code))
        self.sql("INSERT INTO {tool_shed}.tool_version (tool_version_uuid, tool_uuid, version_string, tool_path,"
                 " checksum) VALUES (%s, %s, %s, %s, %s)", (tool_version, tool, version, tool_path, checksum))
        self._tools[key] = tool_version
        return tool_version

    def add_metric_tool(self, name: str = "cloc", version: str = "1.80", tool_path: str | None = None,
                        checksum: str | None = None) -> str:
        key = (name, version)
        if key not in self._metric_tools:
            tool, tool_version = str(uuidlib.uuid4()), str(uuidlib.uuid4())
            self.sql("INSERT INTO {metric}.metric_tool (metric_tool_uuid, name) VALUES (%s, %s)", (tool, name))
            self.sql("INSERT INTO {metric}.metric_tool_version (metric_tool_version_uuid, metric_tool_uuid,"
                     " version_string, tool_path, checksum) VALUES (%s, %s, %s, %s, %s)",
                     (tool_version, tool, version, tool_path, checksum))
            self._metric_tools[key] = tool_version
        return self._metric_tools[key]

    def add_package(self, archive: str | Path, name: str | None = None, version: str = "1.0",
                    package_type: str = "C/C++", language: str | None = None, checksum: str | None | bool = True,
                    **columns: Any) -> str:
        """A package version whose archive is ``archive``; its uuid.

        ``checksum``: True for the archive's SHA-512 (as SWAMP's store_package_version
        records it), a string, or None.  ``columns``: any other package_version column
        (``source_path``, ``build_system``, ``package_build_settings``, ...).
        """
        archive = str(archive)
        if checksum is True:
            checksum = sha512_of(archive) if Path(archive).is_file() else None
        (type_id,) = self.sql("SELECT package_type_id FROM {package_store}.package_type WHERE name = %s",
                              (package_type,))[0]
        package, package_version = str(uuidlib.uuid4()), str(uuidlib.uuid4())
        self.sql("INSERT INTO {package_store}.package (package_uuid, name, package_language, package_type_id)"
                 " VALUES (%s, %s, %s, %s)", (package, name or Path(archive).name.split(".")[0], language, type_id))
        values = {"package_version_uuid": package_version, "package_uuid": package, "version_string": version,
                  "package_path": archive, "checksum": checksum or None, **columns}
        names = ", ".join(values)
        marks = ", ".join("%s" for _ in values)
        self.sql(f"INSERT INTO {{package_store}}.package_version ({names}) VALUES ({marks})", tuple(values.values()))
        return package_version

    def add_dependency(self, package_version: str, platform_version: str, dependency_list: str) -> None:
        self.sql("INSERT INTO {package_store}.package_version_dependency (package_version_uuid,"
                 " platform_version_uuid, dependency_list) VALUES (%s, %s, %s)",
                 (package_version, platform_version, dependency_list))

    # -- runs ------------------------------------------------------------------------
    def add_run(self, package_archive: str | Path, tool: str = "cppcheck", tool_version: str = "2.10",
                platform: str = "debian-12-64", project: str | None = None, user: str | None = None,
                launch_flag: int = 1, notify: bool = False, launch_counter: int = 0,
                package_version: str | None = None, tool_version_uuid: str | None = None,
                uuid: str | None = None, **package: Any) -> str:
        """An execution_record (an ARun) of ``tool`` on the package archive; its uuid.

        With ``launch_flag = 1`` (the default, as SWAMP's create_execution_record
        inserts it) the world's event launches it within 3 s.  ``package``: keyword
        arguments for ``add_package`` (name, version, package_type, checksum, columns).
        """
        record = uuid or str(uuidlib.uuid4())
        platform_version = self.add_platform(platform)
        tool_version_uuid = tool_version_uuid or self.add_tool(tool, tool_version)
        package_version = package_version or self.add_package(package_archive, **package)
        self.sql(
            "INSERT INTO execution_record (execution_record_uuid, assessment_run_uuid, run_request_uuid, user_uuid,"
            " launch_flag, launch_counter, notify_when_complete_flag, project_uuid, platform_version_uuid,"
            " tool_version_uuid, package_version_uuid) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (record, str(uuidlib.uuid4()), "6bef7825-1b2d-11e3-af14-001a4a81450b", user or str(uuidlib.uuid4()),
             launch_flag, launch_counter, int(notify), project or str(uuidlib.uuid4()), platform_version,
             tool_version_uuid, package_version))
        return record

    def add_metric_run(self, package_archive: str | Path, tool: str = "cloc", tool_version: str = "1.80",
                       platform: str = "debian-12-64", launch_flag: int = 1, launch_counter: int = 1,
                       package_version: str | None = None, **package: Any) -> str:
        """A metric.metric_run (an MRun, ``M-<uuid>``); its uuid.  SWAMP launches these once, directly."""
        record = f"M-{uuidlib.uuid4()}"
        platform_version = self.add_platform(platform)
        tool_version = self.add_metric_tool(tool, tool_version)
        package_version = package_version or self.add_package(package_archive, **package)
        self.sql("INSERT INTO {metric}.metric_run (metric_run_uuid, package_version_uuid, tool_version_uuid,"
                 " platform_version_uuid, launch_flag, launch_counter) VALUES (%s, %s, %s, %s, %s, %s)",
                 (record, package_version, tool_version, platform_version, launch_flag, launch_counter))
        return record

    def record(self, uuid: str) -> dict[str, Any]:
        """The run's row (execution_record, or metric_run for ``M-`` ids); {} when there is none."""
        if uuid.startswith("M-"):
            found = self.rows("SELECT * FROM {metric}.metric_run WHERE metric_run_uuid = %s", (uuid,))
        else:
            found = self.rows("SELECT * FROM execution_record WHERE execution_record_uuid = %s", (uuid,))
        return found[0] if found else {}

    def flags(self, uuid: str) -> tuple[int, int, int]:
        """(launch_flag, submitted_to_condor_flag, complete_flag)."""
        row = self.record(uuid)
        return row["launch_flag"], row["submitted_to_condor_flag"], row["complete_flag"]

    def status_history(self, uuid: str) -> list[str]:
        """Every status the run had after its first, in order, whoever wrote it."""
        return [s for (s,) in self.sql("SELECT new_status FROM swampd_test_status_log WHERE run_uuid = %s"
                                       " ORDER BY id", (uuid,))]

    def results(self, uuid: str) -> list[dict[str, Any]]:
        """The run's assessment_result rows, oldest first."""
        return self.rows("SELECT * FROM assessment_result WHERE execution_record_uuid = %s ORDER BY create_date,"
                         " assessment_result_uuid", (uuid,))

    def exec_log(self) -> list[tuple[str, int]]:
        """(command, wait status) of every execute_execution_record shell-out, in order."""
        return [(cmd, rc) for cmd, rc in self.sql("SELECT cmd, return_code FROM swampd_test_exec_log ORDER BY id")]

    def kill_log(self) -> list[str]:
        """Every kill_run command kill_assessment_run logged, in order."""
        return [cmd for (cmd,) in self.sql("SELECT cmd FROM sys_exec_cmd_log WHERE caller = 'kill_assessment_run'"
                                           " ORDER BY sys_exec_cmd_log_id")]

    def view_rows(self, uuid: str) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM exec_run_view WHERE execution_record_uuid = %s", (uuid,))

    def soft_delete(self, uuid: str) -> None:
        """What the web server does to delete a run: set delete_date (the trigger kills a running one)."""
        self.sql("UPDATE execution_record SET delete_date = now() WHERE execution_record_uuid = %s", (uuid,))

    def call_kill(self, uuid: str, hard: str = "1") -> str:
        with connect(self.assessment) as conn, conn.cursor() as cur:
            cur.execute("CALL kill_assessment_run(%s, %s, @rs)", (uuid, hard))
            cur.execute("SELECT @rs")
            return str(cur.fetchone()[0])


@pytest.fixture
def assessment_world() -> Iterator[AssessmentWorld]:
    world = AssessmentWorld().create()
    try:
        yield world
    finally:
        world.drop()
