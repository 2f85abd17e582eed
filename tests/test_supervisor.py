"""Without systemd (issue 13 part 5): etc/supervisor/swampd.conf under the real supervisord.

The shipped file is used as it is, with its paths moved under the test's
tmp dir (binary, configuration, /run, /var/log) and the program's ``user=``
dropped (the suite runs as root and has no swa-daemon user).  supervisord
starts swampd; ``supervisorctl stop swampd`` stops it cleanly (SIGTERM, exit
0) while the running viewer lives on; ``supervisorctl start swampd`` adopts
that viewer (same launch, same process, still READY); the control socket
is root's alone.
"""
from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from support.daemon import SRC, Daemon, is_alive, wait_for

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def render(conf: Path, base: Path, daemon: Daemon) -> Path:
    """The shipped configuration with its paths under ``base``."""
    wrapper = base / "bin" / "swampd"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={SRC} exec {sys.executable} -m swampd.cli.swampd_main \"$@\"\n")
    wrapper.chmod(0o755)
    (base / "run").mkdir()
    (base / "log").mkdir()
    text = conf.read_text()
    for old, new in (("/opt/swampd/bin/swampd", str(wrapper)), ("/etc/swampd/swampd.toml", str(daemon.config)),
                     ("/run/swampd", str(base / "run")), ("/var/log/swampd", str(base / "log")),
                     ("--uri qemu:///system", "--uri qemu:///system --grace 86400 --interval 3600")):
        assert old in text, old
        text = text.replace(old, new)
    lines = [line for line in text.splitlines() if not line.startswith("user=")]
    out = base / "supervisord.conf"
    out.write_text("\n".join(lines) + "\n")
    return out


def ctl(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "supervisorctl"), "-c", str(conf), *args], capture_output=True, text=True,
                          timeout=60)


def status(conf: Path) -> dict[str, str]:
    out = {}
    for line in ctl(conf, "status").stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0]] = parts[1]
    return out


def test_supervisord_runs_swampd_stops_it_cleanly_and_the_viewer_is_adopted(make_daemon):
    daemon = make_daemon(start=False)
    base = Path(tempfile.mkdtemp(prefix="swampd-supervisor-", dir="/tmp"))
    conf = render(ROOT / "etc" / "supervisor" / "swampd.conf", base, daemon)
    supervisord = subprocess.Popen([str(BIN / "supervisord"), "-n", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, cwd=base)
    try:
        wait_for(lambda: status(conf).get("swampd") == "RUNNING", 30, 0.2, "swampd RUNNING under supervisord")
        wait_for(daemon.answering, 20, what="the daemon's port")
        assert status(conf).get("swampd-domainmonitor") == "RUNNING"

        # the control socket is root's alone
        sock = base / "run" / "supervisor.sock"
        info = os.stat(sock)
        assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == 0
        nobody = pwd.getpwnam("nobody")
        probe = subprocess.run(["/usr/bin/python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX);"
                                f"s.connect({str(sock)!r})"], capture_output=True, text=True, timeout=20,
                               user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
        assert probe.returncode != 0 and "PermissionError" in probe.stderr

        daemon.api.launchViewer({"projectid": "p-sup", "viewer": "CodeDX"})
        ready = wait_for(lambda: (v := daemon.api.getViewer("p-sup", "CodeDX"))["state"] == 2 and v, 60, what="READY")
        viewers = daemon.viewer_pids()
        assert viewers

        stopped = ctl(conf, "stop", "swampd")
        assert stopped.returncode == 0 and "swampd: stopped" in stopped.stdout, stopped.stdout + stopped.stderr
        assert status(conf)["swampd"] == "STOPPED"
        log = (base / "log" / "swampd.log").read_text()
        assert "swampd stopped" in log  # SIGTERM: the daemon closed down cleanly, not killed
        assert all(is_alive(pid) for pid in viewers), "the viewer must outlive the daemon"

        started = ctl(conf, "start", "swampd")
        assert started.returncode == 0 and "swampd: started" in started.stdout, started.stdout + started.stderr
        wait_for(daemon.answering, 20, what="the daemon's port again")
        again = daemon.api.getViewer("p-sup", "CodeDX")
        assert again["state"] == 2 and again["epoch"] == ready["epoch"] and again["url"] == ready["url"]
        wait_for(lambda: daemon.api.getViewer("p-sup", "CodeDX")["job"] == "running", 20, what="the job adopted")
        assert daemon.viewer_pids() == viewers  # the same process: adopted, not started again
        assert len(list(daemon.jobs_dir().iterdir())) == 1

        daemon.api.stopViewer("p-sup", "CodeDX")
        wait_for(lambda: daemon.api.getViewer("p-sup", "CodeDX")["state"] == -7, 60, what="TERMINATED")
    finally:
        ctl(conf, "shutdown")
        try:
            supervisord.wait(30)
        except subprocess.TimeoutExpired:
            supervisord.kill()
            supervisord.wait(10)
        subprocess.run(["rm", "-rf", str(base)], check=False)
