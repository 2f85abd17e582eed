"""The local scheduler: jobs are supervised process groups on this host.

A job's liveness is an ``flock`` on ``<job_dir>/job.lock``.  The daemon takes
the lock before it starts the job and hands the locked descriptor to the job,
whose processes keep it for as long as any of them lives.  So "lock held"
means "some process of this job is alive", with no pid that could be
reused, and the answer survives a daemon restart (the job runs in its own
session and outlives a ``kill -9`` of the daemon).  ``spawned`` records that
a job was started, so a job that ran and died is never started twice for
the same launch.

Process jobs (a local viewer command) are supervised by one host agent
(``vruntask.host``), in a process of its own beside the daemon
(``vruntask.hostprocess``): their command is the job's only process, and
the agent keeps a copy of the lock until the job's outputs are collected.
Other jobs (VMs) run ``vruntask run`` as their own supervisor.  After a
restart, and when a new agent replaces one that died, ``recover``
re-attaches the agent to process jobs that kept running and collects those
that ended meanwhile.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from swampd import cpus
from swampd.failpoints import failpoint
from swampd.runlog import run_fields
from swampd.joblog import last_error_line
from swampd.bog import BogError, read_bog
from swampd.jobdir import (
    EXIT_FILE,
    LOCK_FD_ENV,
    LOCK_FILE,
    LOG_FILE,
    REMOVED_FILE,
    SPAWNED_FILE,
    TOKEN_FILE,
    read_exit_status,
    write_spawn_record,
)
from swampd.vruntask.host import StartFailed
from swampd.vruntask.hostprocess import HostProcess
from swampd.vruntask.job import JobError
from swampd.launchpad.jobs import (
    JobDescription,
    JobObservation,
    JobStatus,
    SchedulerError,
    SchedulerUnavailable,
    write_inputs,
)

log = logging.getLogger(__name__)


class LocalScheduler:
    """Runs each job as a process group on this host (the embedded default)."""

    kind = "local"
    platforms = frozenset({"process", "vm"})

    def __init__(self, jobs_root: Path, stop_grace: float = 10.0, host: HostProcess | None = None) -> None:
        """``host``: the host agent process that supervises process jobs (None: every job runs
        ``vruntask run`` as its own supervisor)."""
        self.jobs_root = Path(jobs_root)
        self.jobs_root.mkdir(parents=True, exist_ok=True)
        self.stop_grace = stop_grace
        self.host = host
        if host is not None:  # an agent started after one died is handed the jobs as after a restart
            host.on_restart = self.recover
        # Serialises lock probes with submits inside this daemon: a probe
        # holds the job lock for an instant, which a concurrent submit would
        # otherwise mistake for a running job.
        self._probe = threading.Lock()
        # Children started by this process, reaped so they leave no zombies;
        # shared by the reconciler's workers and the resync thread.
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._children_lock = threading.Lock()

    # -- submit --------------------------------------------------------------
    def submit(self, spec: JobDescription) -> str:
        job_dir = spec.job_dir
        where = os.fspath(job_dir)  # plain strings: this runs for every launch; LaunchPad made the directory
        if not spec.new_dir and (os.path.exists(f"{where}/{SPAWNED_FILE}") or os.path.exists(f"{where}/{EXIT_FILE}")):
            log.info("adopting job %s (already started)", spec.launch_id, extra=run_fields(spec))
            return spec.launch_id
        fd = os.open(f"{where}/{LOCK_FILE}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Only the taking of the lock is serialised with probes (a probe holds a free
            # lock for an instant); once taken, a probe sees the job as running, as it is.
            with self._probe:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                        log.info("adopting job %s (its processes hold the lock)", spec.launch_id,
                                 extra=run_fields(spec))
                        return spec.launch_id
                    raise
            failpoint("local.before_spawn")
            if spec.platform == "process" and self.host is not None:
                lock, fd = fd, -1  # the host agent's from the call on, whatever happens
                pid = self._start_hosted(spec, lock)
            else:
                write_inputs(spec)
                pid = self._start_vruntask(spec, fd)
            failpoint("local.after_spawn")
        finally:
            if fd >= 0:
                os.close(fd)
        log.info("started job %s as pid %d", spec.launch_id, pid, extra=run_fields(spec))  # no label read
        return spec.launch_id

    def _start_hosted(self, spec: JobDescription, fd: int) -> int:
        """The host agent writes the job's inputs, starts the command and records its spawn."""
        try:
            return self.host.start(spec.job_dir, spec.bog_file, spec.token_file, fd,  # type: ignore[union-attr]
                                   spec.inputs)
        except StartFailed:
            return 0  # it was ended with its reason (and recorded as never started): never again
        except JobError as exc:
            raise SchedulerError(f"the job's files are unusable: {exc}") from None

    def _start_vruntask(self, spec: JobDescription, fd: int) -> int:
        """``vruntask run`` supervises the job itself (a VM), inheriting the lock."""
        env = dict(os.environ)
        env[LOCK_FD_ENV] = str(fd)
        env.pop("SWAMPD_FAILPOINTS", None)
        with open(spec.job_dir / LOG_FILE, "ab") as logfile, cpus.for_a_child():
            try:
                proc = subprocess.Popen(list(spec.argv), cwd=spec.job_dir, stdin=subprocess.DEVNULL, stdout=logfile,
                                        stderr=subprocess.STDOUT, pass_fds=(fd,), start_new_session=True, env=env)
            except OSError as exc:
                raise SchedulerError(f"cannot start {spec.argv[0]}: {exc.strerror}") from None
        failpoint("local.spawn_unrecorded")  # a crash here leaves a live job with no record
        with self._children_lock:
            self._children[spec.launch_id] = proc
        write_spawn_record(spec.job_dir, proc.pid)
        return proc.pid

    # -- after a restart -------------------------------------------------------
    def recover(self) -> None:
        """Hand the host agent the process jobs a previous daemon left: those still running to
        watch, those that ended meanwhile to collect."""
        if self.host is None:
            return
        for job_dir in sorted(self.jobs_root.iterdir()):
            if not job_dir.is_dir() or (job_dir / EXIT_FILE).exists():
                continue
            bog = _hosted_bog(job_dir)
            if bog is None:
                continue
            alive = self._alive(job_dir)
            if not alive and not (job_dir / SPAWNED_FILE).exists():
                continue
            fd = os.open(job_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if alive:
                    groups = _job_groups(job_dir)
                    if not groups:
                        continue
                    if not (job_dir / SPAWNED_FILE).exists():  # killed before it was written
                        write_spawn_record(job_dir, min(groups), hosted=True)
                    lock, fd = fd, -1  # the agent's from the call on
                    self.host.adopt(job_dir, bog, TOKEN_FILE, min(groups), lock)
                else:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # alive while its outputs are collected
                    lock, fd = fd, -1
                    self.host.recover(job_dir, bog, TOKEN_FILE, lock)
            except (OSError, JobError, BogError) as exc:
                log.error("cannot take over job %s: %s", job_dir.name, exc)
            finally:
                if fd >= 0:
                    os.close(fd)

    # -- observe -------------------------------------------------------------
    def observe(self) -> dict[str, JobObservation]:
        """Every job's state, from its lock and its files.  Run at every resync, idle or not: with
        hundreds of idle viewers this scan was half of the daemon's idle CPU, so a live job (the
        common case) costs a lock probe and one ``stat``, on plain strings, and nothing more."""
        self._reap()
        seen: dict[str, JobObservation] = {}
        root = os.fspath(self.jobs_root)
        try:
            names = os.listdir(root)
        except OSError as exc:
            raise SchedulerUnavailable(f"cannot list {self.jobs_root}: {exc.strerror}") from None
        for name in names:
            observation = self._observe_one(f"{root}/{name}")
            if observation is not None:
                seen[name] = observation
        return seen

    def _observe_one(self, where: Path | str) -> JobObservation | None:
        job_dir = os.fspath(where)
        launch_id = os.path.basename(job_dir)
        if self._alive(job_dir):
            try:
                since = os.stat(f"{job_dir}/{REMOVED_FILE}").st_mtime
            except FileNotFoundError:
                return JobObservation(launch_id, JobStatus.RUNNING)
            return JobObservation(launch_id, JobStatus.RUNNING, reason="being removed", leaving=True,
                                  leaving_since=since)
        return self._ended(Path(job_dir))

    def _ended(self, job_dir: Path) -> JobObservation | None:
        """A job whose lock is free: ended (how, from its files), or never started (None)."""
        launch_id = job_dir.name
        removed = job_dir / REMOVED_FILE
        if not (job_dir / SPAWNED_FILE).exists():
            return None
        if removed.exists():
            return JobObservation(launch_id, JobStatus.REMOVED, reason="removed by swampd")
        exit_code = read_exit_status(job_dir)
        reason = "job ended without an exit status (killed?)" if exit_code is None \
            else f"job exited with status {exit_code}"
        if exit_code != 0:  # the job's own last word says why
            last = last_error_line(job_dir / LOG_FILE)
            if last:
                reason = f"{reason}: {last}"
        return JobObservation(launch_id, JobStatus.COMPLETED, exit_code, reason)

    def _alive(self, job_dir: Path | str) -> bool:
        try:
            fd = os.open(f"{os.fspath(job_dir)}/{LOCK_FILE}", os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            with self._probe:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                        return True
                    raise
                fcntl.flock(fd, fcntl.LOCK_UN)
                return False
        finally:
            os.close(fd)

    def _reap(self) -> None:
        with self._children_lock:
            for launch_id, proc in list(self._children.items()):
                if proc.poll() is not None:
                    del self._children[launch_id]

    # -- remove --------------------------------------------------------------
    def remove(self, launch_id: str, reason: str, force: bool = False) -> JobObservation | None:
        """TERM the job's process group, KILL it after ``stop_grace`` (at once with ``force``);
        returns once it is gone, with what it looks like then."""
        job_dir = self.jobs_root / launch_id
        if not job_dir.exists():
            return None
        (job_dir / REMOVED_FILE).write_text(reason + "\n", encoding="utf-8")
        if self.host is not None and self.host.stop(launch_id, self.stop_grace, force):
            return self._observe_one(job_dir)
        if self._alive(job_dir):
            groups = _job_groups(job_dir)
            if not groups:
                raise SchedulerError(f"job {launch_id} is running but none of its processes can be found")
            if not force:
                self._signal_groups(groups, signal.SIGTERM)
            if force or not self._wait_gone(job_dir, self.stop_grace):
                if not force:
                    log.warning("job %s still running %.0fs after TERM; killing it", launch_id, self.stop_grace)
                self._signal_groups(_job_groups(job_dir) or groups, signal.SIGKILL)
                if not self._wait_gone(job_dir, 5.0):
                    raise SchedulerError(f"job {launch_id} is still running after KILL")
        return self._observe_one(job_dir)

    def close(self) -> None:
        if self.host is not None:
            self.host.close()

    def leave_time(self) -> float:
        """TERM, ``stop_grace`` seconds, then KILL and a few seconds for the kernel."""
        return self.stop_grace + 5.0

    def _wait_gone(self, job_dir: Path, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._reap()
            if not self._alive(job_dir):
                return True
            time.sleep(0.05)
        return not self._alive(job_dir)

    @staticmethod
    def _signal_groups(groups: set[int], sig: signal.Signals) -> None:
        for pgid in groups:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass

    def forget(self, launch_id: str) -> None:
        job_dir = self.jobs_root / launch_id
        if job_dir.exists() and not self._alive(job_dir):
            shutil.rmtree(job_dir, ignore_errors=True)


def _hosted_bog(job_dir: Path) -> str | None:
    """The BOG file name of a process job (the host agent's), or None for any other job."""
    bogs = list(job_dir.glob("*.bog"))
    if len(bogs) != 1:
        return None
    try:
        platform = read_bog(bogs[0]).get("swampd_platform")
    except BogError:
        return None
    return bogs[0].name if platform == "process" else None


def _read_pgid(job_dir: Path) -> int | None:
    try:
        pgid = int(json.loads((job_dir / SPAWNED_FILE).read_text(encoding="utf-8"))["pgid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pgid if pgid > 1 else None  # 0: a job that never started


def _job_groups(job_dir: Path) -> set[int]:
    """The process groups of a job: the one recorded at spawn, else those of the processes
    that hold its lock open (a daemon killed between spawn and record left no record)."""
    pgid = _read_pgid(job_dir)
    if pgid is not None:
        return {pgid}
    groups = set()
    for pid in lock_holders(job_dir / LOCK_FILE):
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            continue
    own = os.getpgrp()
    return {g for g in groups if g != own}


def lock_holders(lock: Path) -> set[int]:
    """Pids of the processes that have ``lock`` open (from /proc; only processes we may inspect)."""
    try:
        target = os.stat(lock)
    except OSError:
        return set()
    holders = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.scandir(f"/proc/{entry.name}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    st = os.stat(fd.path)
                except OSError:
                    continue
                if st.st_ino == target.st_ino and st.st_dev == target.st_dev:
                    holders.add(int(entry.name))
                    break
    return holders
