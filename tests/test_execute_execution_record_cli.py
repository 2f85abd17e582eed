"""execute_execution_record: the database's entry point, against a stand-in AgentMonitor.

Exit 0 once the daemon answered; otherwise non-zero and exactly one line on
stderr, so that the database's launch counter tries again.  The real
daemon's ``launchRun`` is tested with the daemon itself.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from support.daemon import SRC, free_port
from support.fake_agentmonitor import FakeAgentMonitor

UUID = "3c1d8f0e-5a7b-11ea-9c1e-0242ac110002"
METRIC = "M-4e0c1f2a-6b7c-4d8e-9f00-112233445566"
HOSTILE = ["x'; rm -rf /", "../etc/passwd", "vrun_proj_CodeDX", "", "a b", "-", "abc\ndef", "é", "a" * 129,
           "$(touch /tmp/pwned)", "`id`", "uuid;id"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swampd.cli.execute_execution_record", *args],
                          capture_output=True, text=True, timeout=60, cwd="/", stdin=subprocess.DEVNULL,
                          env={"PYTHONPATH": str(SRC), **(env or {})})


def one_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.stdout == "", out
    assert out.stderr.count("\n") == 1 and out.stderr.endswith("\n"), out
    assert out.stderr.startswith("execute_execution_record: "), out
    return out.stderr


@pytest.fixture
def agent() -> Iterator[FakeAgentMonitor]:
    server = FakeAgentMonitor()
    yield server
    server.close()


def test_an_accepted_run_exits_0_silently(agent):
    for args in ((UUID,), (METRIC,), ("--runid", UUID), (UUID,)):
        out = run("--url", agent.url, *args)
        assert (out.returncode, out.stdout, out.stderr) == (0, "", ""), out
    assert agent.calls == [{"execrunid": UUID}, {"execrunid": METRIC}, {"execrunid": UUID}, {"execrunid": UUID}]


def test_a_refusal_is_one_line_and_non_zero(agent):
    agent.fault = (1, "execrunid 'x' is not in exec_run_view")
    out = run("--url", agent.url, UUID)
    assert out.returncode == 1
    assert "refused: execrunid 'x' is not in exec_run_view (fault 1)" in one_line(out)
    agent.fault = (5, "the database is unavailable\nretry later")  # "later": the launch counter retries
    out = run("--url", agent.url, UUID)
    assert out.returncode == 3 and "database is unavailable retry later (fault 5)" in one_line(out)


def test_an_unreachable_or_hung_daemon_is_non_zero(agent):
    out = run("--url", f"http://127.0.0.1:{free_port()}/", UUID)
    assert out.returncode == 3 and "swampd is not reachable at" in one_line(out)
    out = run("--url", "unix:/nonexistent/swampd.sock", UUID)
    assert out.returncode == 3 and "not reachable" in one_line(out)
    agent.delay = 5.0
    started = time.monotonic()
    out = run("--url", agent.url, "--timeout", "1", UUID)
    assert out.returncode == 3 and "timed out" in one_line(out) and time.monotonic() - started < 4.5


def test_hostile_and_malformed_uuids_are_refused_before_any_call(agent):
    for bad in HOSTILE:
        out = run("--url", agent.url, bad)
        assert out.returncode == 2, (bad, out)
        one_line(out)
    for args in ((), (UUID, UUID), (UUID, "--runid", UUID), ("--runid",), ("--bogus", UUID),
                 ("--timeout", "0", UUID), ("--timeout", "nan", UUID)):
        out = run("--url", agent.url, *args)
        assert out.returncode == 2, (args, out)
        one_line(out)
    assert agent.calls == []
    assert not Path("/tmp/pwned").exists()


def test_the_daemon_is_found_through_the_config_files_unix_socket():
    directory = Path(tempfile.mkdtemp(prefix="swampd-eer-"))  # short: AF_UNIX paths are limited
    socket_path = directory / "am.sock"
    agent = FakeAgentMonitor(unix_socket=socket_path)
    try:
        config = directory / "swampd.toml"
        config.write_text(f'[agentmonitor]\nunix_socket = "{socket_path}"\nport = {free_port()}\n')
        out = run(UUID, env={"SWAMPD_CONFIG": str(config)})
        assert (out.returncode, out.stderr) == (0, ""), out
        out = run("--config", str(config), METRIC)
        assert out.returncode == 0, out
        assert agent.calls == [{"execrunid": UUID}, {"execrunid": METRIC}]
    finally:
        agent.close()
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()


def test_the_console_script_and_the_wrapper_are_installed(agent, tmp_path):
    script = Path(sys.executable).parent / "execute_execution_record"
    assert script.is_file() and os.access(script, os.X_OK)
    out = subprocess.run([str(script), "--url", agent.url, UUID], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    wrapper = Path(__file__).resolve().parents[1] / "etc" / "mariadb" / "execute_execution_record"
    assert os.access(wrapper, os.X_OK)
    text = wrapper.read_text()
    text = text.replace("SWAMPD_PYTHON=/opt/swampd/venv/bin/python3", f"SWAMPD_PYTHON={sys.executable}")
    text = text.replace("SWAMPD_PYTHONPATH=\n", f"SWAMPD_PYTHONPATH={SRC}\n")
    config = tmp_path / "swampd.toml"
    config.write_text(f'[agentmonitor]\nurl = "{agent.url}"\n')
    text = text.replace("SWAMPD_CONFIG=/etc/swampd/swampd.toml", f"SWAMPD_CONFIG={config}")
    (tmp_path / "wrapper").write_text(text)
    os.chmod(tmp_path / "wrapper", 0o755)
    out = subprocess.run([str(tmp_path / "wrapper"), METRIC], capture_output=True, text=True, timeout=60, env={},
                         cwd="/")
    assert out.returncode == 0, out
    out = subprocess.run([str(tmp_path / "wrapper"), UUID, "extra"], capture_output=True, text=True, timeout=60,
                         env={}, cwd="/")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out  # SWAMP's took "$1" and dropped the rest
    assert agent.calls == [{"execrunid": UUID}, {"execrunid": METRIC}]
