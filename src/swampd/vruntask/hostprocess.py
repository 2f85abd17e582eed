"""The daemon's side of its host agent process: the local scheduler's ``host``.

The host agent (``host.HostAgent``) runs in a process of its own
(``hostmain``), started by the daemon and linked to it by a socket pair.
Why not inside the daemon: a launch's own work (staging the sandbox,
starting the command, probing it, collecting it) took about half of the
daemon's interpreter in a burst of 500 launches, and one interpreter runs
on one core at a time.  In its own process that work runs beside the
daemon's, on the other core.

This class offers the agent's methods to the local scheduler unchanged: a
call crosses the link and waits for the agent's answer; a job's lock
descriptor crosses with its start (``SCM_RIGHTS``) and the daemon's copy is
closed once it has.  The agent's reports come back over the same link, every
job's that gathered meanwhile in one message (``vruntask.reportbatch``), and
go to ``apply_reports`` (``agentmonitor.hostreports``, wired by the daemon).

If the agent process dies, its commands keep running (each holds its job's
lock).  A watcher starts another agent and calls ``on_restart`` (the local
scheduler's ``recover``), which hands it the jobs to adopt or to collect.
Calls made meanwhile fail with ``LinkDown`` (a ``ConnectionError``): a
submit is tried again and adopts the job if the lost agent had started it.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from swampd import cpus, metrics
from swampd.vruntask.host import StartFailed
from swampd.vruntask.hostlink import Link, LinkDown, RemoteError, pair
from swampd.vruntask.job import JobError

log = logging.getLogger(__name__)

#: After an agent died, wait this long before starting the next (doubling while they keep dying).
FIRST_RESTART_DELAY = 0.2
MAX_RESTART_DELAY = 10.0
#: An agent that lived this long was healthy: the next restart waits the first delay again.
HEALTHY_AFTER = 30.0
#: An agent that does not answer a call within this long (beyond a stop's own wait) is hung: it is
#: killed and replaced, and its jobs handed to the next one.  A start stages the sandbox, which may
#: copy a saved viewer database: minutes, never hours.
ANSWER_WITHIN = 600.0
#: A start waits at most this long for a new agent to have taken over the jobs of the one that died.
TAKEOVER_WITHIN = 30.0


class HostProcess:
    """The host agent in its own process, restarted when it dies."""

    def __init__(self, stop_grace: float = 10.0, run_as: str = "", run_as_group: str = "",
                 allow_root_jobs: bool = False, one_cpu: bool = True, log_format: str = "text",
                 debug: bool = False) -> None:
        #: ``apply_reports(entries)``: a batch of the agent's reports, one outcome per entry; set by the
        #: daemon's wiring before any job starts.
        self.apply_reports: Callable[[Any], list[Any]] | None = None
        #: Called (on the watcher's thread) once a new agent replaced one that died.
        self.on_restart: Callable[[], None] | None = None
        options = ["--stop-grace", str(stop_grace), "--log-format", log_format]
        if run_as:
            options += ["--run-as", run_as]
        if run_as_group:
            options += ["--run-as-group", run_as_group]
        if allow_root_jobs:
            options.append("--allow-root-jobs")
        if one_cpu:
            options.append("--one-cpu")
        if debug:
            options.append("--debug")
        self._options = options
        self._closing = False
        self._lock = threading.Lock()
        self._link: Link | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._incarnation = 0
        #: Set while no job of a dead agent waits to be handed to the new one.  A start waits for it:
        #: the new agent must hold every port its adopted jobs were given before it gives out one (a
        #: command that had not bound its port yet when the agent died would lose it to a new job).
        self._taken_over = threading.Event()
        self._taken_over.set()
        self._start_agent()
        self._watcher = threading.Thread(target=self._watch, name="host-watch", daemon=True)
        self._watcher.start()

    # -- the agent's process ------------------------------------------------------
    def _start_agent(self) -> None:
        ours, theirs = pair()
        env = dict(os.environ)
        if self._incarnation > 0:  # a crash point armed for a test fires in the first agent only
            env.pop("SWAMPD_FAILPOINTS", None)
        argv = [sys.executable, "-m", "swampd.vruntask.hostmain", "--link-fd", str(theirs.fileno()), *self._options]
        try:
            with cpus.for_a_child():
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), env=env)
        finally:
            theirs.close()
        link = Link(ours, self._serve, "daemon-host", workers=4).start()
        with self._lock:
            self._proc, self._link = proc, link
            self._incarnation += 1
        metrics.host_agent_started(replaced=self._incarnation > 1)
        log.info("host agent started (pid %d)", proc.pid)

    def _watch(self) -> None:
        """Start another agent whenever the current one dies; hand it the jobs (``on_restart``)."""
        delay = FIRST_RESTART_DELAY
        while True:
            with self._lock:
                link, proc = self._link, self._proc
            assert link is not None and proc is not None
            started = time.monotonic()
            link.wait_down()
            self._taken_over.clear()
            if self._closing:
                return
            try:
                code = proc.wait(5.0)
            except subprocess.TimeoutExpired:  # it hung up but lives on: it must not act any more
                proc.kill()
                code = proc.wait()
            if time.monotonic() - started > HEALTHY_AFTER:
                delay = FIRST_RESTART_DELAY
            log.error("the host agent (pid %d) exited with status %s; starting another in %.1fs",
                      proc.pid, code, delay)
            time.sleep(delay)
            delay = min(delay * 2, MAX_RESTART_DELAY)
            if self._closing:
                return
            try:
                self._start_agent()
            except OSError as exc:
                log.error("cannot start the host agent: %s", exc)
                continue
            if self.on_restart is not None:
                try:
                    self.on_restart()
                except Exception:
                    log.exception("handing the new host agent its jobs failed")
            self._taken_over.set()

    def _serve(self, op: str, args: list[Any], fds: list[int]) -> Any:
        """The agent's calls: its jobs' reports, for the daemon's dispatcher."""
        for fd in fds:
            os.close(fd)
        if op == "report_batch":
            if self.apply_reports is None:
                raise ConnectionError("the daemon is not ready for reports yet")
            return self.apply_reports(args[0] if len(args) == 1 else None)
        raise ValueError(f"no such call {op!r}")

    def _call(self, op: str, args: list[Any], fds: tuple[int, ...] = (), wait: float = 0.0) -> Any:
        with self._lock:
            link, proc = self._link, self._proc
        if link is None or proc is None:
            raise LinkDown("no host agent")
        try:
            return link.call(op, args, fds, timeout=ANSWER_WITHIN + wait)
        except TimeoutError:
            log.error("the host agent (pid %d) did not answer %s within %.0fs; killing it", proc.pid, op,
                      ANSWER_WITHIN + wait)
            proc.kill()  # the watcher starts another and hands it the jobs
            raise LinkDown(f"the host agent did not answer {op}") from None

    @property
    def pid(self) -> int:
        """The current agent's pid (0 before it started)."""
        with self._lock:
            return self._proc.pid if self._proc is not None else 0

    # -- the agent's methods, as the local scheduler calls them --------------------
    def start(self, job_dir: Path, bog_file: str, token_file: str, lock_fd: int,
              inputs: dict[str, str] | None = None) -> int:
        """The agent writes the job's ``inputs``, stages and starts it holding ``lock_fd`` (always
        closed here: the agent has its own copy, or never got it) and records the spawn.  StartFailed
        or JobError as the agent's own; LinkDown when the agent went away before it answered (the
        job may have started: a retry adopts it)."""
        try:
            if not self._taken_over.wait(TAKEOVER_WITHIN):
                raise LinkDown("the host agent has not taken over the jobs of the one that died yet")
            return int(self._call("start", [str(job_dir), bog_file, token_file, inputs or {}], (lock_fd,)))
        except RemoteError as exc:
            if exc.kind == "StartFailed":
                raise StartFailed(exc.message) from None
            if exc.kind in ("JobError", "BogError"):
                raise JobError(exc.message) from None
            raise OSError(f"the host agent could not start {job_dir.name}: {exc.kind}: {exc.message}") from None
        finally:
            os.close(lock_fd)

    def stop(self, launch_id: str, grace: float, force: bool = False) -> bool:
        """Stop a job the agent runs and wait until its outputs are collected; False when the agent
        does not run it (or is gone: the scheduler then stops it by its process group)."""
        try:
            return bool(self._call("stop", [launch_id, grace, force], wait=grace))
        except LinkDown:
            return False

    def adopt(self, job_dir: Path, bog_file: str, token_file: str, pid: int, lock_fd: int) -> None:
        try:
            self._adopt_or_recover("adopt", [str(job_dir), bog_file, token_file, pid], lock_fd)
        finally:
            os.close(lock_fd)

    def recover(self, job_dir: Path, bog_file: str, token_file: str, lock_fd: int) -> None:
        try:
            self._adopt_or_recover("recover", [str(job_dir), bog_file, token_file], lock_fd)
        finally:
            os.close(lock_fd)

    def _adopt_or_recover(self, op: str, args: list[Any], lock_fd: int) -> None:
        try:
            self._call(op, args, (lock_fd,))
        except RemoteError as exc:
            raise JobError(f"{exc.kind}: {exc.message}") from None

    def count(self) -> int:
        return int(self._call("count", []))

    def close(self) -> None:
        """The daemon stops: the agent leaves too (its jobs keep running and are adopted next time)."""
        self._closing = True
        with self._lock:
            link, proc = self._link, self._proc
        if link is not None:
            link.close()
        if proc is not None:
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
