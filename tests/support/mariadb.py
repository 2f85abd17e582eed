"""The real MariaDB for the database-path tests: a scratch database per test run.

``ensure_mariadb()`` starts the server if it is down and builds/installs the
tests' sys_eval UDF (both idempotent, as scripts/setup-system.sh does).  A
``ScratchDB`` is one ``swampd_test_<random>`` database holding
``tests/db/schema.sql``; it is dropped afterwards.  Also here: a world-readable
copy of the source tree and of the ``etc/mariadb`` wrappers, because commands
run by ``sys_eval`` run as the mysql user, who cannot read a private home or
pytest's private temporary directories.
"""
from __future__ import annotations

import compileall
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pymysql
import pytest

ROOT = Path(__file__).resolve().parents[2]
DB_DIR = ROOT / "tests" / "db"
CODEDX_VERSION_UUID = "5d0fb63c-865a-11e3-88bb-001a4a81450b"
NATIVE_VERSION_UUID = "8f9213ef-5d04-11e3-9fa4-001a4a81450b"
_ready = False


def ensure_mariadb() -> None:
    """MariaDB answering and sys_eval/sys_exec registered (once per test process)."""
    global _ready
    if _ready:
        return
    for script in ("ensure_mariadb.sh", "build_udf.sh"):
        done = subprocess.run([str(DB_DIR / script)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    _ready = True


def stop_mariadb() -> None:
    """Shut the server down cleanly (tests keep this short and restart it in finally)."""
    subprocess.run(["mariadb-admin", "--user=root", "shutdown"], capture_output=True, timeout=120)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if subprocess.run(["mariadb-admin", "--user=root", "--connect-timeout=1", "ping"],
                          capture_output=True).returncode != 0:
            return
        time.sleep(0.2)
    raise AssertionError("MariaDB did not stop")


def start_mariadb() -> None:
    done = subprocess.run([str(DB_DIR / "ensure_mariadb.sh")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def connect(database: str | None = None, **kwargs: Any) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=database,
                           autocommit=True, connect_timeout=5, **kwargs)


class ScratchDB:
    """One scratch database with the test schema; ``sql`` runs a statement as root."""

    def __init__(self, charset: str = "utf8mb4") -> None:
        """``charset``: the database's default character set (SWAMP's are latin1)."""
        self.name = f"swampd_test_{secrets.token_hex(4)}"
        self.charset = charset
        self.users: list[str] = []

    def create(self) -> "ScratchDB":
        with connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {self.name} CHARACTER SET {self.charset}")
        # The procedures keep the sql_mode they are created under: MariaDB's strict default, explicitly.
        strict = "--init-command=SET SESSION sql_mode='STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
        with open(DB_DIR / "schema.sql", "rb") as schema:
            # ... and their literals the client's character set: the database's, as SWAMP's are loaded
            done = subprocess.run(["mariadb", "--user=root", f"--database={self.name}", strict,
                                   f"--default-character-set={self.charset}"], stdin=schema,
                                  capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        return self

    def drop(self) -> None:
        with connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {self.name}")
            for user in self.users:
                cur.execute(f"DROP USER IF EXISTS {user}")

    def sql(self, statement: str, args: Any = None) -> list[tuple[Any, ...]]:
        with connect(self.name) as conn, conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall())

    def call_launch_viewer(self, results: str | None, user: str, project: str,
                           version: str = CODEDX_VERSION_UUID, outgoing: str = "/swamp/outgoing/",
                           results_type: str = "results") -> dict[str, Any]:
        """CALL launch_viewer as PHP does; the OUT parameters as a dict."""
        with connect(self.name) as conn, conn.cursor() as cur:
            cur.execute("CALL launch_viewer(%s, %s, %s, %s, %s, %s, @rp, @rs, @vi)",
                        (results, user, version, project, outgoing, results_type))
            cur.execute("SELECT @rp, @rs, @vi")
            rp, rs, vi = cur.fetchone()
        return {"return_path": rp, "return_string": rs, "viewer_instance_uuid": vi}

    def call_kill(self, uuid: str, hard: str) -> str:
        with connect(self.name) as conn, conn.cursor() as cur:
            cur.execute("CALL kill_assessment_run(%s, %s, @rs)", (uuid, hard))
            cur.execute("SELECT @rs")
            return str(cur.fetchone()[0])

    def add_user(self, grants: list[str]) -> tuple[str, str]:
        """A database user with exactly ``grants`` (``{db}`` is this database); (name, password)."""
        name, password = f"swampd_u_{secrets.token_hex(3)}", secrets.token_hex(12)
        with connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE USER '{name}'@'localhost' IDENTIFIED BY %s", (password,))
            cur.execute(f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            self.users += [f"'{name}'@'localhost'", f"'{name}'@'127.0.0.1'"]
            for grant in grants:
                for host in ("localhost", "127.0.0.1"):
                    cur.execute(grant.format(db=self.name) + f" TO '{name}'@'{host}'")
        return name, password


@pytest.fixture
def scratch_db() -> Iterator[ScratchDB]:
    ensure_mariadb()
    db = ScratchDB().create()
    try:
        yield db
    finally:
        db.drop()


class MysqlInstall:
    """What an operator installs for the mysql user, in a world-readable temp dir:
    a copy of the swampd source and the etc/mariadb wrappers pointing at it."""

    def __init__(self, config: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="swampd-mysql-"))
        os.chmod(self.root, 0o755)
        src = self.root / "src"
        shutil.copytree(ROOT / "src" / "swampd", src / "swampd",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        compileall.compile_dir(src, quiet=1)  # the mysql user cannot write caches
        self.config = self.root / "swampd.toml"
        shutil.copy(config, self.config)
        python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
        self.bin = self.root / "bin"
        self.bin.mkdir()
        for name in ("launch_viewer", "kill_run", "execute_execution_record"):
            text = (ROOT / "etc" / "mariadb" / name).read_text()
            text = re.sub(r"(?m)^SWAMPD_PYTHON=.*$", f"SWAMPD_PYTHON={python}", text)
            text = re.sub(r"(?m)^SWAMPD_PYTHONPATH=.*$", f"SWAMPD_PYTHONPATH={src}", text)
            text = re.sub(r"(?m)^SWAMPD_CONFIG=.*$", f"SWAMPD_CONFIG={self.config}", text)
            (self.bin / name).write_text(text)
            os.chmod(self.bin / name, 0o755)
        for path in [self.root, *self.root.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() or path.parent == self.bin else 0o644)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def find_job(daemon: Any, execrunid: str, epoch: int) -> tuple[Path, str]:
    """The job dir and report token of a launch (what vruntask holds on the node)."""
    from swampd.bog import read_bog

    for bog_path in daemon.jobs_dir().glob(f"*/{execrunid}.bog"):
        bog = read_bog(bog_path)
        if bog.get("swampd_epoch") == str(epoch):
            return bog_path.parent, (bog_path.parent / "token").read_text().strip()
    raise AssertionError(f"no job for {execrunid} epoch {epoch}")


def send_snapshot(daemon: Any, projectid: str, viewer: str, path: str, checksum: str,
                  platform: str = "condor-codedx-master.qcow2", version: str = "codedx-5.0.war") -> bool:
    """What ``vruntask finish`` does when it hands over a saved viewer database."""
    record = daemon.api.getViewer(projectid, viewer)
    _, token = find_job(daemon, record["execrunid"], record["epoch"])
    return daemon.api.viewerSnapshot({"execrunid": record["execrunid"], "epoch": record["epoch"], "token": token,
                                      "path": path, "checksum": checksum, "platform": platform,
                                      "version": version})
