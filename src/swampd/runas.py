"""Running local jobs as an unprivileged user: who, how their directories are owned, how they start.

The local scheduler runs user workloads (a viewer's command) on the
daemon's own host.  A workload must not act as the daemon: the daemon's
user can open the registry, read every launch's report token and the API
keys in the BOGs, and read the configuration.  So jobs run as a configured
user and group (``[scheduler] run_as``, ``run_as_group``), never as the
daemon's own user, and never as root unless the configuration says
``allow_root_jobs = true``.

Ownership of a job directory (``prepare_job_dir``)::

    <jobs_root>/                daemon  0711   a job can pass through, not list (launch ids stay unknown)
    <jobs_root>/<launch_id>/    daemon  0711   BOG, token, lock, spawn record: the daemon's, 0600
        in/                     daemon:jobgroup 0750   inputs the job reads, cannot change
        out/                    job:jobgroup    0770   the job's own sandbox: events, outputs, logs

The registry (0600) and the state dir's other files stay the daemon's; the
configuration file is the operator's.  Files the job must read (its inputs)
are shared with ``share_with_job``: group-readable by the job's group,
still owned by the daemon.

What one ``run_as`` user cannot give: separation of jobs from each other.
Jobs of one user share a uid, so a job that learns another's launch id can
write into that job's ``out/`` (the job root cannot be listed, but the
other job's processes are its own uid's).  Tokens and API keys are safe
from that (the daemon's, 0600); sandboxes are not.  Where that matters, give
each concurrent job a user of its own (HTCondor's slot users), i.e. call
``job_user`` with a name from a pool.

Starting: ``popen_kwargs`` gives ``subprocess.Popen`` the ids to switch to
(``user=``, ``group=``, ``extra_groups=[]`` so the daemon's supplementary
groups are dropped, ``umask=0o007``), no ``preexec_fn`` (unsafe with
threads).  A daemon running as root that switches to a non-root uid loses
every capability on the way (capabilities(7)), so the job holds none.
"""
from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swampd.fileops import make_dir


class RunAsError(Exception):
    """Jobs cannot run as configured; the message says why and what to set."""


@dataclass(frozen=True)
class JobUser:
    """The account local jobs run as."""

    name: str
    uid: int
    gid: int
    group: str
    home: str

    @property
    def is_root(self) -> bool:
        return self.uid == 0


def job_user(run_as: str, run_as_group: str = "", allow_root: bool = False,
             daemon_uid: int | None = None) -> JobUser:
    """The user (and group) jobs run as, checked: never root unless ``allow_root``, never the daemon's
    own user when another is configured.  An empty ``run_as`` means the daemon's own user, which
    is refused when that is root and ``allow_root`` is not set."""
    daemon_uid = os.geteuid() if daemon_uid is None else daemon_uid
    if not run_as:
        own = pwd.getpwuid(daemon_uid)
        user = JobUser(own.pw_name, own.pw_uid, own.pw_gid, _group_name(own.pw_gid), own.pw_dir)
        if user.is_root and not allow_root:
            raise RunAsError("the daemon runs as root and scheduler.run_as is not set: jobs would run as root; "
                             "set scheduler.run_as to an unprivileged user (or allow_root_jobs = true)")
        return user
    try:
        entry = pwd.getpwnam(run_as)
    except KeyError:
        raise RunAsError(f"scheduler.run_as: {run_as!r} is not a user on this host") from None
    gid = entry.pw_gid
    if run_as_group:
        try:
            gid = grp.getgrnam(run_as_group).gr_gid
        except KeyError:
            raise RunAsError(f"scheduler.run_as_group: {run_as_group!r} is not a group on this host") from None
    user = JobUser(entry.pw_name, entry.pw_uid, gid, _group_name(gid), entry.pw_dir)
    if (user.is_root or gid == 0) and not allow_root:
        raise RunAsError(f"scheduler.run_as: {run_as!r} is root (or its group is): jobs must not run as root "
                         "(set allow_root_jobs = true to allow it anyway)")
    if user.uid == daemon_uid and not user.is_root:
        raise RunAsError(f"scheduler.run_as: {run_as!r} is the daemon's own user; jobs must run as another one "
                         "(they could otherwise open the registry and read every launch's token)")
    if daemon_uid != 0 and user.uid != daemon_uid:
        raise RunAsError(f"scheduler.run_as: only a daemon running as root can start jobs as {run_as!r}")
    return user


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def switches_user(user: JobUser) -> bool:
    """True when starting a job as ``user`` changes identity (the daemon is someone else)."""
    return user.uid != os.geteuid()


def popen_kwargs(user: JobUser) -> dict[str, Any]:
    """``subprocess.Popen`` keyword arguments that start the process as ``user`` (nothing when the job
    runs as the daemon's own user).  No ``preexec_fn``: the ids are switched by subprocess itself."""
    if not switches_user(user):
        return {"umask": 0o077}
    return {"user": user.uid, "group": user.gid, "extra_groups": [], "umask": 0o007}


def job_environment(user: JobUser, base: dict[str, str]) -> dict[str, str]:
    """The job's environment: ``base`` without swampd's own variables, with the job user's identity."""
    env = {k: v for k, v in base.items() if not k.startswith(("SWAMPD_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env.update(USER=user.name, LOGNAME=user.name, HOME=user.home or "/nonexistent")
    return env


def prepare_jobs_root(jobs_root: Path, user: JobUser) -> None:
    """The directory of all job directories: the daemon's, passable by a job, not listable (0711);
    and every directory above it up to the state dir passable too."""
    jobs_root.mkdir(parents=True, exist_ok=True, mode=0o711)
    if not switches_user(user):
        return
    os.chmod(jobs_root, 0o711)
    parent = jobs_root.parent
    mode = stat.S_IMODE(os.stat(parent).st_mode)
    if not mode & 0o001:  # the state dir: passable (x), never readable or writable by others
        os.chmod(parent, (mode & ~0o066) | 0o711)


def prepare_job_dir(job_dir: Path, user: JobUser, made: bool = False) -> tuple[Path, Path]:
    """Lay out ``job_dir`` for a job running as ``user``: returns (in, out).

    Idempotent (a resubmit after a crash calls it again).  The job directory
    and ``in/`` stay the daemon's; ``out/`` is the job's own.  ``made``: the
    caller made ``job_dir`` already (0700), only what is inside is made here.
    """
    in_dir, out_dir = job_dir / "in", job_dir / "out"
    for path in (in_dir, out_dir) if made else (job_dir, in_dir, out_dir):
        make_dir(path, 0o700)
    if not switches_user(user):
        return in_dir, out_dir
    daemon_uid = os.geteuid()
    os.chown(job_dir, daemon_uid, -1)
    os.chmod(job_dir, 0o711)
    os.chown(in_dir, daemon_uid, user.gid)
    os.chmod(in_dir, 0o750)
    os.chown(out_dir, user.uid, user.gid)
    os.chmod(out_dir, 0o770)
    return in_dir, out_dir


def share_with_job(path: Path, user: JobUser) -> None:
    """Let the job read ``path`` (an input it needs): the job's group may read it; the daemon keeps it."""
    if not switches_user(user):
        return
    os.chown(path, os.geteuid(), user.gid, follow_symlinks=False)
    os.chmod(path, 0o640 if path.is_file() else 0o750)


def give_to_job(path: Path, user: JobUser) -> None:
    """Hand a file the daemon created for the job (its log) to the job: it may write it."""
    if not switches_user(user):
        return
    os.chown(path, user.uid, user.gid, follow_symlinks=False)
    os.chmod(path, 0o660)
