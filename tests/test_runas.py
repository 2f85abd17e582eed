"""Jobs under their own user (issue 13 part 4): what a job can and cannot touch.

Runs as root (as CI does): two system users are created if missing, a state
dir is laid out as the daemon lays it out (a 0600 registry, a 0600
configuration, two job directories with their 0600 BOG and token), and a
real process is started through ``runas.popen_kwargs`` exactly as the local
scheduler starts a job.  It may write its own sandbox; it cannot read
another job's token (or its own), open the registry, read the
configuration, list the job directories, or keep any of root's groups.

Jobs that share one ``run_as`` user share a uid: one could write into
another's ``out/`` if it learnt that job's launch id (the job root cannot be
listed, but the other job's /proc entries are its own uid's).  Separating
jobs from each other takes a user per job (see the module's docstring).
"""
from __future__ import annotations

import json
import os
import pwd
import sqlite3
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from swampd import runas
from swampd.runas import RunAsError

JOB_USER = "swampd-tjob"
OTHER_USER = "swampd-tother"
PYTHON = "/usr/bin/python3"  # Debian's: readable by any user, unlike a venv under a private home


def ensure_user(name: str) -> pwd.struct_passwd:
    """Create a system user with its own group, unless it exists (concurrent runs may race: fine)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], capture_output=True, check=False)
    return pwd.getpwnam(name)


@pytest.fixture(scope="module")
def job_user() -> runas.JobUser:
    assert os.geteuid() == 0, "this test creates users and switches to them: run the suite as root (CI does)"
    ensure_user(JOB_USER)
    ensure_user(OTHER_USER)
    return runas.job_user(JOB_USER)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A state dir the way the daemon has it, somewhere a job user could reach (not under root's 0700 tmp)."""
    base = Path(tempfile.mkdtemp(prefix="swampd-runas-", dir="/tmp"))
    os.chmod(base, 0o711)
    state = base / "state"
    state.mkdir(mode=0o700)
    try:
        yield state
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def lay_out(state: Path, user: runas.JobUser) -> tuple[Path, Path, Path]:
    registry = state / "registry.sqlite3"
    with sqlite3.connect(registry) as db:
        db.execute("CREATE TABLE runs (token TEXT)")
        db.execute("INSERT INTO runs VALUES ('registry-secret')")
    os.chmod(registry, 0o600)
    config = state.parent / "swampd.toml"
    config.write_text('[agentmonitor]\ntoken_file = "/etc/swampd/token"\n')
    os.chmod(config, 0o600)
    jobs = state / "jobs"
    runas.prepare_jobs_root(jobs, user)
    dirs = []
    for launch in ("a" * 32, "b" * 32):
        job_dir = jobs / launch
        in_dir, out_dir = runas.prepare_job_dir(job_dir, user)
        for name, text in (("token", f"token-of-{launch[0]}\n"), (f"vrun_p_{launch[0]}.bog", "apikey=key\n")):
            (job_dir / name).write_text(text)
            os.chmod(job_dir / name, 0o600)
        (in_dir / "input.txt").write_text("input for the job\n")
        runas.share_with_job(in_dir / "input.txt", user)
        dirs.append(job_dir)
    return dirs[0], dirs[1], config


PROBE = r"""
import json, os, sqlite3, sys
job_dir, other_dir, registry, config, jobs = sys.argv[1:6]
out = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": sorted(os.getgroups())}
def attempt(name, fn):
    try:
        fn()
        out[name] = "allowed"
    except Exception as exc:
        out[name] = type(exc).__name__
def write_sandbox():
    with open(os.path.join(job_dir, "out", "job_events.log"), "a") as fh:
        fh.write("RUNSHSTART\n")
def read_registry():
    db = sqlite3.connect(f"file:{registry}?mode=ro", uri=True)
    db.execute("SELECT token FROM runs").fetchall()
attempt("write_own_out", write_sandbox)
attempt("read_own_input", lambda: open(os.path.join(job_dir, "in", "input.txt")).read())
attempt("read_other_token", lambda: open(os.path.join(other_dir, "token")).read())
attempt("read_other_bog", lambda: open(os.path.join(other_dir, "vrun_p_b.bog")).read())
attempt("read_own_token", lambda: open(os.path.join(job_dir, "token")).read())
attempt("write_own_job_dir", lambda: open(os.path.join(job_dir, "planted"), "w").write("x"))
attempt("write_own_input", lambda: open(os.path.join(job_dir, "in", "input.txt"), "a").write("x"))
attempt("open_registry", read_registry)
attempt("read_config", lambda: open(config).read())
attempt("list_jobs", lambda: os.listdir(jobs))
attempt("write_state_dir", lambda: open(os.path.join(os.path.dirname(registry), "planted"), "w").write("x"))
print(json.dumps(out))
"""


def test_a_job_writes_its_sandbox_and_nothing_of_the_daemon_or_other_jobs(job_user, state_dir):
    own, other, config = lay_out(state_dir, job_user)
    kwargs = runas.popen_kwargs(job_user)
    assert kwargs["user"] == job_user.uid and kwargs["extra_groups"] == [] and "preexec_fn" not in kwargs
    done = subprocess.run([PYTHON, "-c", PROBE, str(own), str(other), str(state_dir / "registry.sqlite3"),
                           str(config), str(state_dir / "jobs")], cwd=own / "out", capture_output=True, text=True,
                          timeout=30, env=runas.job_environment(job_user, dict(os.environ)), **kwargs)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["uid"] == seen["euid"] == job_user.uid != 0
    assert seen["gid"] == job_user.gid and 0 not in seen["groups"]  # none of root's groups kept
    assert seen["write_own_out"] == "allowed" and seen["read_own_input"] == "allowed"
    for denied in ("read_other_token", "read_other_bog", "read_own_token", "write_own_job_dir", "write_own_input",
                   "read_config", "list_jobs", "write_state_dir"):
        assert seen[denied] == "PermissionError", (denied, seen)
    assert seen["open_registry"] == "OperationalError", seen  # sqlite: "unable to open database file"
    assert (own / "out" / "job_events.log").stat().st_uid == job_user.uid
    assert not (own / "planted").exists() and not (state_dir / "planted").exists()


def test_the_job_environment_carries_nothing_of_the_daemon(job_user):
    env = runas.job_environment(job_user, {"SWAMPD_CONFIG": "/etc/swampd/swampd.toml", "NOTIFY_SOCKET": "/run/x",
                                           "WATCHDOG_USEC": "1", "PATH": "/usr/bin", "HOME": "/root"})
    assert env == {"PATH": "/usr/bin", "HOME": "/nonexistent", "USER": JOB_USER, "LOGNAME": JOB_USER}


def test_root_is_refused_unless_the_configuration_allows_it(job_user):
    with pytest.raises(RunAsError, match="run as root"):
        runas.job_user("", daemon_uid=0)               # a root daemon with no run_as
    with pytest.raises(RunAsError, match="must not run as root"):
        runas.job_user("root")
    assert runas.job_user("root", allow_root=True).uid == 0
    assert runas.job_user("", allow_root=True, daemon_uid=0).uid == 0
    assert runas.job_user(JOB_USER).uid == job_user.uid


def test_the_daemons_own_user_and_unknown_names_are_refused(job_user):
    other = pwd.getpwnam(OTHER_USER)
    with pytest.raises(RunAsError, match="daemon's own user"):
        runas.job_user(OTHER_USER, daemon_uid=other.pw_uid)
    with pytest.raises(RunAsError, match="only a daemon running as root"):
        runas.job_user(JOB_USER, daemon_uid=other.pw_uid)
    with pytest.raises(RunAsError, match="not a user"):
        runas.job_user("swampd-no-such-user")
    with pytest.raises(RunAsError, match="not a group"):
        runas.job_user(JOB_USER, "swampd-no-such-group")
    assert runas.job_user(JOB_USER, OTHER_USER).group == OTHER_USER


def test_a_daemon_without_run_as_keeps_jobs_as_itself_and_private(tmp_path):
    me = runas.job_user("", allow_root=True)
    assert not runas.switches_user(me) and runas.popen_kwargs(me) == {"umask": 0o077}
    in_dir, out_dir = runas.prepare_job_dir(tmp_path / "jobs" / ("c" * 32), me)
    assert in_dir.is_dir() and out_dir.is_dir()


def test_a_daemon_runs_local_viewers_as_the_configured_user(job_user: runas.JobUser, make_daemon) -> None:
    """Wired end to end: the host agent starts the viewer command as run_as, in a job directory
    whose inputs it may read and whose BOG, token and lock it may not."""
    import shutil

    busybox = shutil.which("busybox") or "/bin/busybox"
    from support.daemon import Daemon

    root = Path(tempfile.mkdtemp(prefix="swampd-runas-"))  # not under pytest's private (0700) tmp
    os.chmod(root, 0o711)
    daemon = Daemon(root, scheduler={"run_as": JOB_USER},
                    viewers={"CodeDX": {"command": [busybox, "httpd", "-f", "-p", "127.0.0.1:{port}",
                                                    "-h", "{sandbox}/out"]}})
    try:
        daemon.start()
        _viewer_as_user(daemon, job_user)
    finally:
        daemon.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def _viewer_as_user(daemon, job_user: runas.JobUser) -> None:
    from support.daemon import wait_for

    daemon.api.launchViewer({"projectid": "as-user", "viewer": "CodeDX"})
    ready = daemon.api.waitViewer("as-user", "CodeDX", "READY", 60)
    assert ready["state_name"] == "READY", ready
    [pid] = daemon._job_tree()
    assert os.stat(f"/proc/{pid}").st_uid == job_user.uid
    [job_dir] = list(daemon.jobs_dir().iterdir())
    for private in ("token", f"{ready['execrunid']}.bog", "job.lock"):
        assert stat.S_IMODE(os.stat(job_dir / private).st_mode) & 0o077 == 0, private
    assert os.stat(job_dir / "out").st_uid == job_user.uid
    daemon.api.stopViewer("as-user", "CodeDX")
    assert daemon.api.waitViewer("as-user", "CodeDX", "TERMINATED", 60)["state_name"] == "TERMINATED"
    wait_for(lambda: not daemon._job_tree(), 20)


def test_a_root_daemon_refuses_to_run_jobs_as_root_unless_told(make_daemon) -> None:
    daemon = make_daemon(start=False, scheduler={"allow_root_jobs": False})
    daemon.start(wait=False)
    assert daemon.wait_exit() == 1  # a configuration refused, not a state dir in use
    assert "run_as" in daemon.log() and "root" in daemon.log()
