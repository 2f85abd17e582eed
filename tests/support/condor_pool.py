"""A real HTCondor pool for ``tests/test_htcondor_pool.py``: who runs what, and where.

A schedd never lets root own jobs, so everything that submits runs as the
pool's *submit user*.  When the tests themselves run as that user, nothing
changes hands.  When they run as root (the usual case on a test host, where
root also stops and starts the schedd), ``SWAMPD_TEST_POOL_RUNAS`` names a
command prefix that runs its arguments as the submit user, for example
``runuser -u condoruser --`` (or a wrapper that also makes this venv's
interpreter readable to that user); then

* ``swampd serve`` runs as the submit user through that prefix
  (``PoolDaemon``), and root talks to it over XML-RPC on loopback;
* a test that needs the bindings as the submit user in-process (the
  scheduler-level tests) is run again, alone, by a pytest started through
  the prefix (``@as_submit_user``).

Jobs see neither ``/tmp`` and ``/var/tmp`` (HTCondor's default
``MOUNT_UNDER_SCRATCH``) nor the host's ``/dev/shm`` (``MOUNT_PRIVATE_DEV_SHM``),
so what a job must run (a world-readable copy of the source tree and a
``vruntask`` launcher for an interpreter every user can run) and the daemons'
state go into ``SWAMPD_TEST_POOL_DIR`` (default ``/var/lib/swampd-pool-test``,
made world-writable and sticky, like /tmp, when root runs the tests).

Environment:
  CONDOR_CONFIG               the pool's configuration (unset: every pool test skips)
  SWAMPD_TEST_POOL_RUNAS      command prefix running its arguments as the submit user (needed as root)
  SWAMPD_TEST_POOL_DIR        a directory jobs can see (default /var/lib/swampd-pool-test)
  SWAMPD_TEST_POOL_PYTHON     interpreter for jobs (default /usr/bin/python3, Python >= 3.11)
  SWAMPD_TEST_POOL_OTHER_USER a user the collector does not authorize to advertise (default nobody)
  SWAMPD_TEST_POOL, SWAMPD_TEST_SCHEDD  collector and schedd names for [htcondor] pool/schedd
"""
from __future__ import annotations

import compileall
import functools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from support.daemon import Daemon, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
INNER_ENV = "SWAMPD_TEST_POOL_INNER"
DEFAULT_SHARED = "/var/lib/swampd-pool-test"


@dataclass(frozen=True)
class Pool:
    config: str
    #: Prefix that runs a command as the submit user ([] when we are that user).
    runas: tuple[str, ...]
    #: A directory jobs can see (not under MOUNT_UNDER_SCRATCH).
    shared: Path
    job_python: str
    pool: str = ""
    schedd_name: str = ""

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def user_command(self, argv: list[str]) -> list[str]:
        return [*self.runas, *argv]

    def private_dir(self, prefix: str) -> Path:
        """A fresh directory under the shared one, owned by the submit user, readable by everyone."""
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.shared))
        os.chmod(path, 0o755)
        if self.as_root:
            self.run_as_user(["/bin/true"])  # the prefix works at all (a clear error otherwise)
            uid, gid = self.submit_ids()
            os.chown(path, uid, gid)
        return path

    def submit_ids(self) -> tuple[int, int]:
        out = self.run_as_user(["/usr/bin/id", "-u"]).strip(), self.run_as_user(["/usr/bin/id", "-g"]).strip()
        return int(out[0]), int(out[1])

    def run_as_user(self, argv: list[str], timeout: float = 60.0, env: dict[str, str] | None = None,
                    cwd: str | None = None) -> str:
        done = subprocess.run(self.user_command(argv), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=cwd)
        if done.returncode != 0:
            raise AssertionError(f"{shlex.join(argv)} as the submit user exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done.stdout

    def schedd(self) -> Any:
        """The schedd as this process sees it (root may read every job, and act on it)."""
        from swampd.config import HTCondorConfig
        from swampd.launchpad.schedulers.condor_connect import make_schedd

        return make_schedd(HTCondorConfig(pool=self.pool, schedd=self.schedd_name))

    def collector(self) -> Any:
        import htcondor2

        return htcondor2.Collector(self.pool or None)

    def param(self, name: str, default: str = "") -> str:
        import htcondor2

        value = htcondor2.param.get(name)
        return default if value is None else str(value).strip('"')


def pool_or_skip() -> Pool:
    """The pool named by CONDOR_CONFIG, or a skip that says why there is none."""
    path = os.environ.get("CONDOR_CONFIG", "")
    if not path or path == "/dev/null":  # the bindings set /dev/null when there was none
        pytest.skip("CONDOR_CONFIG is not set: these tests need a real HTCondor pool "
                    "(CI has none; see README.md, section HTCondor)")
    if not Path(path).is_file():
        pytest.skip(f"CONDOR_CONFIG={path} is not a file: these tests need a real HTCondor pool "
                    "(see README.md, section HTCondor)")
    runas: tuple[str, ...] = ()
    if os.geteuid() == 0:
        prefix = os.environ.get("SWAMPD_TEST_POOL_RUNAS", "")
        if not prefix:
            pytest.skip("running as root, and a schedd never lets root own jobs: set SWAMPD_TEST_POOL_RUNAS "
                        "to a command prefix that runs its arguments as the pool's submit user "
                        "(e.g. 'runuser -u condoruser --'; see README.md, section HTCondor)")
        runas = tuple(shlex.split(prefix))
    shared = Path(os.environ.get("SWAMPD_TEST_POOL_DIR", DEFAULT_SHARED))
    if os.geteuid() == 0:
        shared.mkdir(parents=True, exist_ok=True)
        os.chmod(shared, 0o1777)
    elif not os.access(shared, os.W_OK | os.X_OK):
        pytest.skip(f"SWAMPD_TEST_POOL_DIR={shared} is not a directory this user can write: set it to one "
                    "that jobs can see (not under /tmp, /var/tmp or /dev/shm)")
    os.environ["SWAMPD_TEST_POOL_DIR"] = str(shared)  # the same for tests run again as the submit user
    python = os.environ.get("SWAMPD_TEST_POOL_PYTHON", "/usr/bin/python3")
    return Pool(path, runas, shared, python, os.environ.get("SWAMPD_TEST_POOL", ""),
                os.environ.get("SWAMPD_TEST_SCHEDD", ""))


def as_submit_user(test: Callable[..., None]) -> Callable[..., None]:
    """Run the test's body as the pool's submit user: directly when we are that user, else
    in a pytest of its own started through ``SWAMPD_TEST_POOL_RUNAS``."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        pool = pool_or_skip()
        if not pool.as_root:
            test(*args, **kwargs)
            return
        # An absolute node id and rootdir: the prefix may start the command in another directory.
        nodeid = f"{test.__code__.co_filename}::{test.__name__}"
        env = {**os.environ, INNER_ENV: "1", "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(pool.user_command([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                                 "-s", "-rs", f"--rootdir={ROOT}", "-c", str(ROOT / "pyproject.toml"),
                                                 nodeid]),
                              capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=540)
        output = done.stdout[-6000:] + done.stderr[-3000:]
        for line in done.stdout.splitlines():
            if "[pool]" in line:
                print(line[line.index("[pool]"):], flush=True)  # the inner test's timings
        if done.returncode != 0:
            raise AssertionError(f"{nodeid} as the submit user failed (exit {done.returncode}):\n{output}")
        if " passed" not in done.stdout:
            raise AssertionError(f"{nodeid} as the submit user did not pass:\n{output}")

    return wrapper


class JobFiles:
    """What jobs run, where jobs can see it: a world-readable copy of the source tree and
    executables (``vruntask`` and small stand-ins) for an interpreter every user can run."""

    def __init__(self, pool: Pool) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="swampd-jobfiles-", dir=pool.shared))
        os.chmod(self.root, 0o755)
        version = subprocess.run([pool.job_python, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                                 capture_output=True, text=True)
        if version.stdout.strip() != "True":
            pytest.skip(f"SWAMPD_TEST_POOL_PYTHON={pool.job_python} is not a Python >= 3.11 every user can run")
        src = self.root / "src"
        shutil.copytree(SRC / "swampd", src / "swampd", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        compileall.compile_dir(src, quiet=1, legacy=False)  # jobs cannot write caches here
        self.bin = self.root / "bin"
        self.bin.mkdir()
        self.vruntask = self.script("vruntask", f'PYTHONPATH={src} exec {pool.job_python} '
                                                '-m swampd.cli.vruntask_main "$@"')
        for path in [self.root, *self.root.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() or path.parent == self.bin else 0o644)

    def script(self, name: str, body: str) -> Path:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        os.chmod(path, 0o755)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class PoolDaemon(Daemon):
    """``swampd serve`` as the submit user, on a state dir that user owns (root drives it)."""

    def __init__(self, pool: Pool, root: Path, **kwargs: Any) -> None:
        self.pool = pool
        super().__init__(root, **kwargs)
        os.chmod(self.config, 0o644)

    def start(self, extra_env: dict[str, str] | None = None, wait: bool = True) -> "PoolDaemon":
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra_env or {})
        env["PYTHONPATH"] = str(SRC)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.pool.user_command([sys.executable, "-m", "swampd.cli.swampd_main", "serve",
                                    "--config", str(self.config)]),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=str(self.root),
        )
        log.close()
        if wait:
            wait_for(self.answering, 30, what=f"daemon on port {self.port}")
        return self

    def daemon_pid(self) -> int | None:
        try:
            return int((self.state_dir / "swampd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill9(self) -> None:
        """Kill the daemon itself (not the prefix's process) as a crash would."""
        pid = self.daemon_pid()
        assert pid is not None, "the daemon wrote no pid file"
        os.kill(pid, signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

    def cleanup(self) -> None:
        self.terminate()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    return wait_for(predicate, timeout, interval=interval, what=what)


def elapsed(since: float) -> float:
    return round(time.monotonic() - since, 1)


__all__ = ["Pool", "pool_or_skip", "as_submit_user", "JobFiles", "PoolDaemon", "wait_until", "elapsed",
           "free_port"]
