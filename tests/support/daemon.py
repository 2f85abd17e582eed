"""A real ``swampd serve`` process for tests: start, kill -9, restart, inspect."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any, Callable

#: The source tree the daemon processes run from; SWAMPD_TEST_SRC points the
#: suite at another one (e.g. an export of main, to see a new test fail there).
SRC = Path(os.environ.get("SWAMPD_TEST_SRC") or Path(__file__).resolve().parents[2] / "src")


#: Tests run as root on CI: their jobs may run as root (a daemon refuses that unless told).
ROOT_JOBS = {"allow_root_jobs": True} if os.geteuid() == 0 else {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def write_config(path: Path, tables: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class Daemon:
    """One daemon process on its own state dir and port."""

    def __init__(self, root: Path, viewers: dict[str, dict[str, Any]] | None = None,
                 agentmonitor: dict[str, Any] | None = None, scheduler: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None, extra: dict[str, dict[str, Any]] | None = None,
                 nofile: int | None = None) -> None:
        """``extra``: more top-level tables, e.g. {"mariadb": {...}, "codedx": {...}};
        ``nofile``: the daemon's file-descriptor limit (soft and hard), as a unit's LimitNOFILE."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.root / "state"
        self.port = free_port()
        am = {"port": self.port, "state_dir": str(self.state_dir), "resync_interval": 0.5}
        am.update(agentmonitor or {})
        self.url = f"{'https' if am.get('tls_cert') else 'http'}://127.0.0.1:{self.port}/"
        self.cafile = am.get("tls_ca") or None
        tables: dict[str, dict[str, Any]] = {"agentmonitor": am,
                                             "scheduler": {"stop_grace": 3, **ROOT_JOBS, **(scheduler or {})}}
        for name, table in (viewers or {"CodeDX": {}}).items():
            tables[f"viewers.{name}"] = table
        tables.update(extra or {})
        self.config = write_config(self.root / "swampd.toml", tables)
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.root / "swampd.log"
        self.nofile = nofile

    def start(self, extra_env: dict[str, str] | None = None, wait: bool = True) -> "Daemon":
        env = dict(os.environ)
        env["PYTHONPATH"] = str(SRC)
        env.update(self.env)
        env.update(extra_env or {})
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "swampd.cli.swampd_main", "serve", "--config", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            preexec_fn=self._limits if self.nofile else None,
        )
        log.close()
        if wait:
            wait_for(self.answering, 20, what=f"daemon on port {self.port}")
        return self

    def _limits(self) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def answering(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
        try:
            self.rpc(timeout=2).system.listMethods()
            return True
        except OSError:
            return False

    def rpc(self, timeout: float = 30.0) -> Any:
        from swampd.clients.rpc import connect

        return connect(self.url, cafile=self.cafile, timeout=timeout)

    @property
    def api(self) -> Any:
        return self.rpc().agentMonitor

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"

    def job_processes(self) -> list[int]:
        """Pids of live processes whose command line mentions this state dir's jobs."""
        return processes_mentioning(str(self.jobs_dir()))

    def viewer_pids(self) -> list[int]:
        """Live viewer commands (children of vruntask) of this daemon's jobs."""
        return [pid for pid in self._job_tree() if "vruntask_main" not in cmdline(pid)]

    def _job_tree(self) -> list[int]:
        groups = set()
        for spawned in self.jobs_dir().glob("*/spawned"):
            try:
                groups.add(int(json.loads(spawned.read_text())["pgid"]))
            except (OSError, ValueError, KeyError):
                pass
        return [pid for pid in all_pids() if pgid_of(pid) in groups and is_alive(pid)]

    def cleanup(self) -> None:
        self.terminate()
        for pid in self._job_tree():
            try:
                os.killpg(pgid_of(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, TypeError):
                pass


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def parent_of(pid: int) -> int:
    """The parent pid of ``pid`` (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def host_agents(daemon: "Daemon") -> list[int]:
    """The daemon's host agent processes (exactly one while it runs)."""
    assert daemon.proc is not None
    return [pid for pid in all_pids()
            if parent_of(pid) == daemon.proc.pid and "swampd.vruntask.hostmain" in cmdline(pid)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def is_alive(pid: int) -> bool:
    """True for a running process (zombies count as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    return [pid for pid in all_pids() if text in cmdline(pid) and is_alive(pid)]


def fault_code(call: Callable[[], Any]) -> int:
    try:
        call()
    except xmlrpc.client.Fault as fault:
        return int(fault.faultCode)
    raise AssertionError("expected a fault, the call succeeded")
