"""The host agent: one supervisor for every local process job of this host, in one process.

``vruntask run`` supervises one job from its own Python process (about 14 MB,
polling its command and its events file); five hundred idle viewers cost
seven gigabytes that way.  On the embedded default the local scheduler
hands process jobs to this agent instead, which runs in one process of its
own beside the daemon (``hostmain``, linked to the daemon by
``hostprocess.HostProcess``).  It does exactly what the runner
does for the process platform, with the same payload code (staging the
sandbox, the command line, what "up" means, collecting the outputs), but:

* the command is started by the agent itself, holding the job's liveness
  lock: the command inherits it (so the job outlives a ``kill -9`` of the
  daemon), and the agent keeps a copy until the job's outputs are collected
  (so a job is not seen as ended before its saved database is handed over);
* its end is learnt from a pidfd (``watchers.ExitWatcher``), its readiness by
  probing right after the start and ever less often, every starting job's
  probe at once (``prober.Prober``): no thread per job, nothing that wakes
  for an idle viewer;
* reports go over the link to the daemon's own dispatcher, with the launch's
  epoch and token, exactly as a remote node's would (fencing included), but
  without an HTTP connection.

After a daemon restart (or when a new agent replaces one that died) the agent re-attaches to commands that kept running
(``adopt``), holding their lock through the command's own descriptor
(``lockshare``) as if it had started them, and collects the outputs of those
that ended meanwhile (``recover``); their exit status is unknown then, since
they are no longer our children.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from swampd import cpus, runas
from swampd.bog import write_new_private
from swampd.fileops import open_append
from swampd.failpoints import failpoint
from swampd.jobdir import write_exit_status, write_spawn_record
from swampd.vruntask.delivery import Fenced, deliver, give_up_after
from swampd.vruntask.job import Job, JobError, ReportTarget, load_job
from swampd.vruntask.lockshare import share_lock, take_when_free
from swampd.vruntask.payloads import payload_for
from swampd.vruntask.payloads.base import Milestone, Payload
from swampd.vruntask.platforms import staging_for
from swampd.vruntask.ports import PortPool
from swampd.vruntask.platforms.base import Staging
from swampd.vruntask.runner import DRAIN_SECONDS, Exit, collect, stage
from swampd.vruntask.sandbox import PrepareError
from swampd.vruntask.prober import Prober
from swampd.vruntask.watchers import ExitWatcher

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``dispatch(method, struct)``: an ``agentMonitor.<method>`` call to the daemon's dispatcher.
Dispatch = Callable[[str, dict[str, Any]], object]
#: ``dispatch_all(method, structs)``: several such reports of one launch, applied in one transaction.
DispatchAll = Callable[[str, list[dict[str, Any]]], object]
#: Written once a hosted job's outputs were collected (after a restart: never collect twice).
COLLECTED_FILE = "collected"
#: A command that says its port is taken within this many seconds of its start is started again on
#: another port, at most this many times.
PORT_LOST_WITHIN = 30.0
PORT_RESTARTS = 3
#: Seconds an adopted command's killed leftovers may take to let go of its lock (``lockshare``).
LOCK_PATIENCE = 2.0


class DispatchReporter:
    """A ``Reporter`` whose calls go to the daemon's dispatcher (over the agent's link) instead of HTTP."""

    def __init__(self, target: ReportTarget, status_method: str, dispatch: Dispatch,
                 dispatch_all: DispatchAll) -> None:
        self.execrunid = target.execrunid
        self.epoch = target.epoch
        self.status_method = status_method
        self._token = target.token
        self._dispatch = dispatch
        self._dispatch_all = dispatch_all

    def send(self, give_up: Callable[[], bool] = lambda: False, **fields: Any) -> bool:
        return self.call(self.status_method, fields, f"report {fields.get('event') or fields.get('state')}", give_up)

    def send_all(self, reports: list[dict[str, Any]], give_up: Callable[[], bool] = lambda: False) -> bool:
        """Several reports of one instant, in order, delivered together (one registry transaction)."""
        bodies = [self._body(fields) for fields in reports]
        what = "reports " + ", ".join(str(f.get("event") or f.get("state")) for f in reports)
        return deliver(lambda: self._dispatch_all(self.status_method, bodies), what, give_up)

    def call(self, method: str, fields: dict[str, Any], what: str,
             give_up: Callable[[], bool] = lambda: False) -> bool:
        body = self._body(fields)
        return deliver(lambda: self._dispatch(method, body), what, give_up)

    def _body(self, fields: dict[str, Any]) -> dict[str, Any]:
        body = {"execrunid": self.execrunid, "epoch": self.epoch, "token": self._token}
        body.update({k: v for k, v in fields.items() if v not in (None, "")})
        return body


@dataclass
class HostedJob:
    job: Job
    payload: Payload
    staging: Staging
    reporter: DispatchReporter
    lock_fd: int
    #: ``lock_fd`` holds the job's lock (it is the started command's own description, or the
    #: agent locked it): False for an adopted command whose description could not be shared
    #: (``lockshare``) until the agent takes the lock at its end.
    lock_held: bool = True
    pid: int = 0
    #: The port the command was given (0: none); back to the agent's pool once the job is over.
    port: int = 0
    #: Times the command was started again because its port was taken before it bound it.
    port_restarts: int = 0
    proc: subprocess.Popen[bytes] | None = None
    #: Reports are made one at a time, so the end never overtakes "up".
    report_lock: threading.Lock = field(default_factory=threading.Lock)
    up: bool = False
    #: When the command was started (monotonic).
    started_at: float = 0.0
    stopping: bool = False
    #: A stop was asked for (also of a command that had just ended): never start it again.
    stop_requested: bool = False
    fenced: bool = False
    exited: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def launch_id(self) -> str:
        return self.job.launch_id


class StartFailed(Exception):
    """The job could not be started; it has been ended with the reason."""


class HostAgent:
    def __init__(self, stop_grace: float = 10.0, user: runas.JobUser | None = None) -> None:
        """``user``: whom the commands run as (``[scheduler] run_as``); None: the daemon's own user."""
        #: Set by the daemon's wiring before any job starts.
        self.dispatch: Dispatch | None = None
        #: Reports of one instant, together (set by the daemon's wiring, as ``dispatch``).
        self.dispatch_all: DispatchAll | None = None
        self.stop_grace = stop_grace
        self.user = user
        self._jobs: dict[str, HostedJob] = {}
        #: What a command gets: the daemon's environment without swampd's own settings, with the job
        #: user's identity when there is one (made once: it is the same for every job).
        self._environment = ({k: v for k, v in os.environ.items() if not k.startswith("SWAMPD_")} if user is None
                             else runas.job_environment(user, dict(os.environ)))
        #: Every command's stdin, as ``subprocess.DEVNULL`` gives it (opened once, not once per start).
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._exits = ExitWatcher()
        self._ports = PortPool()
        self._probes = Prober(owner=user.uid if user is not None else os.geteuid())
        # Collecting saves a database and hands it over: a few at a time, off the watcher's thread.
        self._finishers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="host-collect")
        # "Up" is reported off the prober's thread: the prober goes on probing the others while the
        # report waits for the daemon, and the reports of many jobs coming up travel together.
        self._up_reports = ThreadPoolExecutor(max_workers=64, thread_name_prefix="host-up")

    def hosts(self, launch_id: str) -> bool:
        with self._lock:
            return launch_id in self._jobs

    def count(self) -> int:
        with self._lock:
            return len(self._jobs)

    def close(self) -> None:
        """The daemon stops: jobs keep running (they hold their locks) and are adopted on the next start."""
        self._probes.close()
        self._exits.close()
        self._finishers.shutdown(wait=False, cancel_futures=True)
        self._up_reports.shutdown(wait=False, cancel_futures=True)

    # -- start -----------------------------------------------------------------
    def start(self, job_dir: Path, bog_file: str, token_file: str, lock_fd: int,
              inputs: dict[str, str] | None = None) -> int:
        """Write the job's ``inputs`` (its BOG and token), stage it and start its command holding
        ``lock_fd``, and record the spawn; returns the command's pid.  StartFailed when it could not
        start (the run was told why, and the job recorded as never started).  The descriptor is the
        agent's from this call on, whatever happens (closed here when the job's files are unusable)."""
        hosted = self._host(_owning(lock_fd, lambda: _load(job_dir, bog_file, token_file, inputs or {})), lock_fd)
        try:
            sandbox = hosted.staging.sandbox
            if self.user is not None:  # in/ the daemon's and readable by the job, out/ the job's own
                runas.prepare_job_dir(job_dir, self.user, made=True)
            else:
                sandbox.make_dirs()
            stage(hosted.staging, hosted.payload, laid_out=True)
            if self.user is not None and runas.switches_user(self.user):
                self._share_inputs(hosted)
            port = hosted.port = self._ports.take()
            argv = hosted.payload.local_command(sandbox, port)
            # The address is known before the start: recorded first, a crash at any point after the
            # start leaves it for the next daemon's agent to report again (``adopt``).
            address = f"127.0.0.1:{port}"
            sandbox.begin(address, ("RUNSHSTART", "Starting viewer run script"),
                          ("WROTEIPADDR", "Wrote viewer ip address"))
        except (PrepareError, OSError) as exc:
            self._fail_to_start(hosted, str(exc))
            raise StartFailed(str(exc)) from None
        try:
            self._spawn(hosted, argv)
        except OSError as exc:
            reason = f"cannot start the viewer command: {exc.strerror or exc}"
            self._fail_to_start(hosted, reason)
            raise StartFailed(reason) from None
        log.debug("%s: command started as pid %d on port %d", job_dir.name, hosted.pid, port)
        failpoint("host.spawn_unrecorded")  # a crash here leaves a live job with no record
        try:
            write_spawn_record(job_dir, hosted.pid, hosted=True)  # who is adopted, who is removed
        except OSError as exc:  # the command runs: it is watched and stopped as any other
            log.error("%s: cannot record pid %d: %s", job_dir.name, hosted.pid, exc)
        # The command already runs; what it did so far is reported before anything else about it:
        # its report lock is taken here and given back once the start's reports are delivered, so
        # "up", a stop and the end (a pidfd of a command that ended meanwhile still reports it)
        # wait for them.  The start is answered at once: the daemon's submit does not wait for a
        # round trip of reports through itself (the daemon takes either order: its submit puts
        # no older status back).
        failpoint("host.start_unreported")
        hosted.report_lock.acquire()
        reports = (hosted.payload.report(Milestone.STARTING, "process"),  # one instant: together
                   {"event": "RUNSHSTART"}, {"event": "WROTEIPADDR", "vmip": address, "node": socket.gethostname()})
        try:
            self._up_reports.submit(self._report_held, hosted, reports)
        except RuntimeError:  # the agent is closing: the next one reports the job when it adopts it
            hosted.report_lock.release()
        self._track(hosted, child=True, port=port)
        return hosted.pid

    def _spawn(self, hosted: HostedJob, argv: list[str]) -> None:
        """Start the command in a session of its own, holding the job's lock; OSError if it cannot."""
        sandbox = hosted.staging.sandbox
        as_user = runas.popen_kwargs(self.user) if self.user is not None else {}
        out = open_append(os.path.join(sandbox.out_dir, "viewer.log"))
        try:
            hosted.proc = subprocess.Popen(argv, cwd=sandbox.root, stdin=self._devnull, stdout=out,
                                           stderr=subprocess.STDOUT, env=self._environment,
                                           pass_fds=(hosted.lock_fd,), start_new_session=True, **as_user)
        finally:
            os.close(out)
        cpus.widen(hosted.proc.pid)  # started on the agent's one CPU: every CPU from now on
        hosted.pid = hosted.proc.pid
        hosted.started_at = time.monotonic()

    def _share_inputs(self, hosted: HostedJob) -> None:
        """What the payload staged for the command to read (in/, run-params.sh): readable by the job's
        group, still the daemon's; the BOG, the token and the lock stay the daemon's alone."""
        assert self.user is not None
        sandbox = hosted.staging.sandbox
        for path in [sandbox.in_dir, *sandbox.in_dir.rglob("*"), *sandbox.root.glob("run-params.*")]:
            if not path.is_symlink():
                runas.share_with_job(path, self.user)

    def _host(self, job: Job, lock_fd: int) -> HostedJob:
        payload = payload_for(job)
        reporter = DispatchReporter(job.target, payload.status_method, self._dispatch, self._dispatch_all)
        return HostedJob(job, payload, staging_for(job), reporter, lock_fd)

    def _dispatch(self, method: str, body: dict[str, Any]) -> object:
        if self.dispatch is None:
            raise ConnectionError("the host agent is not wired to a dispatcher yet")
        return self.dispatch(method, body)

    def _dispatch_all(self, method: str, bodies: list[dict[str, Any]]) -> object:
        if self.dispatch_all is None:
            raise ConnectionError("the host agent is not wired to a dispatcher yet")
        return self.dispatch_all(method, bodies)

    def _track(self, hosted: HostedJob, child: bool, port: int = 0) -> None:
        with self._lock:
            self._jobs[hosted.launch_id] = hosted
        if not self._exits.watch(hosted.pid, lambda code: self._exited(hosted, code), child):
            self._exited(hosted, None)
            return
        if port and not hosted.up:
            deadline = time.monotonic() + hosted.job.ready_timeout
            payload = hosted.payload
            self._probes.add(hosted.launch_id, port, payload.probe_request(port), payload.up_answer,
                             lambda: self._up_reports.submit(self._came_up, hosted), deadline)

    def _fail_to_start(self, hosted: HostedJob, reason: str) -> None:
        log.error("%s: %s", hosted.launch_id, reason)
        self._report(hosted, hosted.payload.failure(reason))
        try:
            write_spawn_record(hosted.job.job_dir, 0, hosted=True)  # never started: never start it again
            write_exit_status(hosted.job.job_dir, Exit.FAILED)
        except OSError as exc:  # the run was told; the lock still goes below
            log.error("%s: cannot record the failed start: %s", hosted.launch_id, exc)
        self._ports.release(hosted.port)
        os.close(hosted.lock_fd)

    # -- up and down -------------------------------------------------------------
    def _came_up(self, hosted: HostedJob) -> None:
        with hosted.report_lock:
            if hosted.exited.is_set() or hosted.stopping:
                return
            hosted.up = True
        hosted.staging.sandbox.record_event(hosted.payload.up_event, "Viewer is up")
        failpoint("host.up_unreported")
        self._report(hosted, {"event": hosted.payload.up_event})

    def _exited(self, hosted: HostedJob, code: int | None) -> None:
        """The command ended (the watcher's thread): the rest happens on a finisher."""
        if hosted.proc is not None and code is not None:
            hosted.proc.returncode = code  # reaped by the watcher: Popen must not wait for it again
        if not hosted.lock_held:  # at once: until the outputs are collected the job is not over
            hosted.lock_held = take_when_free(hosted.lock_fd, 0.0)
        hosted.exited.set()
        self._probes.cancel(hosted.launch_id)
        self._finishers.submit(self._finish, hosted, code)

    def _finish(self, hosted: HostedJob, code: int | None) -> None:
        """End the run as the runner does: its failure or its end, the outputs, the exit status."""
        try:
            _kill_group(hosted.pid, signal.SIGKILL)  # whatever the command left behind goes with it
            if not hosted.lock_held:
                hosted.lock_held = take_when_free(hosted.lock_fd, LOCK_PATIENCE)
                if not hosted.lock_held:
                    log.warning("%s: the job's lock is still held after its command ended", hosted.launch_id)
            if self._lost_its_port(hosted, code) and self._start_again(hosted):
                return
            payload, sandbox = hosted.payload, hosted.staging.sandbox
            if not hosted.up and not hosted.stopping:
                shown = "an unknown status" if code is None else f"status {code}"
                self._report(hosted, payload.failure(f"viewer process exited with {shown} before it answered HTTP"))
                status = Exit.FAILED
            else:
                status = Exit.OK if hosted.stopping or code in (0, None) else Exit.FAILED
                if code not in (None, 0) and not hosted.stopping:
                    log.warning("%s: the command exited with status %s", hosted.launch_id, code)
            sandbox.record_event(payload.down_event, "Viewer is shutdown")
            self._report(hosted, {"event": payload.down_event})
            result = collect(hosted.staging, payload, hosted.reporter, give_up_after(DRAIN_SECONDS))
            if result.problem:
                log.warning("%s: collect: %s", hosted.launch_id, result.problem)
            (sandbox.root / COLLECTED_FILE).touch()
            if hosted.fenced:
                status = Exit.FENCED
            if code is not None or hosted.stopping:
                write_exit_status(hosted.job.job_dir, status)
        except Exception:
            log.exception("%s: finishing the job failed", hosted.launch_id)
        with self._lock:
            self._jobs.pop(hosted.launch_id, None)
        self._ports.release(hosted.port)
        os.close(hosted.lock_fd)  # now the job is over for whoever looks at its lock
        hosted.ended.set()

    def _lost_its_port(self, hosted: HostedJob, code: int | None) -> bool:
        """Whether the command died at once because its port was taken meanwhile.

        A port is free when it is given, and the command binds it a moment
        later; another process on the host may take it in between (seen while
        an HTCondor pool's tests ran on the same host, whose kernel hands out
        ports from the whole range 1024-65535: two viewers in twelve bursts of
        500).  Then the command says "Address already in use" and exits;
        nothing is wrong with the viewer, and it deserves another port.
        """
        if (hosted.up or hosted.stopping or hosted.fenced or code in (None, 0) or not hosted.port
                or hosted.port_restarts >= PORT_RESTARTS
                or time.monotonic() - hosted.started_at > PORT_LOST_WITHIN
                or hosted.payload.probe_request(hosted.port) is None):  # serves nothing: needs no port
            return False
        try:
            with open(hosted.staging.sandbox.out_dir / "viewer.log", "rb") as out:
                out.seek(max(0, os.fstat(out.fileno()).st_size - 4096))
                tail = out.read()
        except OSError:
            return False
        return b"Address already in use" in tail

    def _start_again(self, hosted: HostedJob) -> bool:
        """Start the command again on a new port, as ``start`` did; False when it cannot be."""
        sandbox = hosted.staging.sandbox
        lost = hosted.port
        try:
            port = self._ports.take()
        except OSError:
            return False
        try:
            argv = hosted.payload.local_command(sandbox, port)
            address = f"127.0.0.1:{port}"
            sandbox.write_address(address)
            sandbox.record_events(("WROTEIPADDR", "Wrote viewer ip address"))
            with hosted.report_lock:  # a stop asked for meanwhile: it must not start again
                if hosted.stop_requested:
                    raise OSError("a stop was asked for meanwhile")
                hosted.exited.clear()
                self._spawn(hosted, argv)
        except (PrepareError, OSError) as exc:
            self._ports.release(port)
            hosted.exited.set()
            log.warning("%s: cannot start the command again: %s", hosted.launch_id, exc)
            return False
        self._ports.release(lost)
        hosted.port = port
        hosted.port_restarts += 1
        try:
            write_spawn_record(hosted.job.job_dir, hosted.pid, hosted=True)  # who is adopted, who is removed
        except OSError as exc:  # the command runs: it is watched and stopped as any other
            log.error("%s: cannot record the new pid %d: %s", hosted.launch_id, hosted.pid, exc)
        log.warning("%s: port %d was taken before the command bound it; started again on port %d (pid %d)",
                    hosted.launch_id, lost, port, hosted.pid)
        # The address is news even though the event is not (the registry keeps the new one).
        self._report(hosted, {"event": "WROTEIPADDR", "vmip": address, "node": socket.gethostname()})
        self._track(hosted, child=True, port=port)
        return True

    def _report(self, hosted: HostedJob, *reports: dict[str, Any]) -> None:
        """Reports, delivered in order (several: together); a refused one means the launch is
        superseded: stop it."""
        if hosted.fenced:
            return
        with hosted.report_lock:
            self._deliver(hosted, reports)

    def _report_held(self, hosted: HostedJob, reports: tuple[dict[str, Any], ...]) -> None:
        """``_report`` for a caller that took the job's report lock already: it is given back here."""
        try:
            if not hosted.fenced:
                self._deliver(hosted, reports)
        finally:
            hosted.report_lock.release()

    def _deliver(self, hosted: HostedJob, reports: tuple[dict[str, Any], ...]) -> None:
        """Send reports (the caller holds the report lock); a refusal fences the launch and stops it."""
        try:
            if len(reports) == 1:
                hosted.reporter.send(give_up_after(DRAIN_SECONDS), **reports[0])
            else:
                hosted.reporter.send_all(list(reports), give_up_after(DRAIN_SECONDS))
        except Fenced as exc:
            log.error("%s: the AgentMonitor refused our report (%s); stopping this launch", hosted.launch_id, exc)
            hosted.fenced = True
            if hosted.pid and not hosted.exited.is_set():
                threading.Thread(target=self.stop, args=(hosted.launch_id, self.stop_grace), daemon=True).start()

    # -- stop ----------------------------------------------------------------------
    def stop(self, launch_id: str, grace: float, force: bool = False) -> bool:
        """TERM the job's command (KILL after ``grace``, at once with ``force``) and wait until its
        outputs are collected; False when this agent does not run that job."""
        with self._lock:
            hosted = self._jobs.get(launch_id)
        if hosted is None:
            return False
        with hosted.report_lock:  # from now on the command is never started again (``_start_again``)
            hosted.stop_requested = True
        if not hosted.exited.is_set():
            if not hosted.stopping:
                hosted.stopping = True
                self._report(hosted, hosted.payload.report(Milestone.STOPPING))
            _kill_group(hosted.pid, signal.SIGKILL if force else signal.SIGTERM)
            if not hosted.exited.wait(0 if force else grace):
                log.warning("%s: still running %.0fs after TERM; killing it", launch_id, grace)
                _kill_group(hosted.pid, signal.SIGKILL)
        hosted.ended.wait(DRAIN_SECONDS + 10.0)
        return True

    # -- after a restart -------------------------------------------------------------
    def adopt(self, job_dir: Path, bog_file: str, token_file: str, pid: int, lock_fd: int) -> None:
        """Watch a command a previous daemon started (it still holds its lock); the descriptor is the
        agent's from this call on."""
        if self.hosts(job_dir.name):  # handed over twice (a restart's recovery met a start): watched already
            os.close(lock_fd)
            return
        hosted = self._host(_owning(lock_fd, lambda: load_job(job_dir, bog_file, token_file)), lock_fd)
        hosted.pid = pid
        sandbox = hosted.staging.sandbox
        events = _owning(lock_fd, lambda: sandbox.events_file.read_text(encoding="utf-8", errors="replace").split())
        addresses = _owning(lock_fd, lambda: sandbox.ip_file.read_text(encoding="utf-8", errors="replace").split())
        # After the reads that may fail (and close ``lock_fd``): from here the descriptor is swapped.
        shared = share_lock(pid, lock_fd)
        if shared is not None:  # the command's own: the lock now lasts until the outputs are collected
            os.close(lock_fd)
            hosted.lock_fd = shared
        else:
            hosted.lock_held = False
            log.info("%s: cannot share the lock of pid %d; it is taken when the command ends",
                     job_dir.name, pid)
        address = addresses[-1] if addresses else ""
        hosted.up = hosted.payload.up_event in events
        log.info("%s: adopting the command of a previous daemon (pid %d)", job_dir.name, pid)
        self._replay(hosted, events, address)
        if address:
            hosted.port = int(address.rsplit(":", 1)[1])
            self._ports.hold(hosted.port)
        self._track(hosted, child=False, port=0 if hosted.up else hosted.port)

    def _replay(self, hosted: HostedJob, events: list[str], address: str) -> None:
        """Report again what the job's events file says this agent wrote: a previous daemon may have
        been killed after writing an event and before its report committed (a viewer would then
        never get its address, or stay LAUNCHING while it answers).  Reports are idempotent: one
        the registry already has changes nothing."""
        reports: list[dict[str, Any]] = []
        for event in ("RUNSHSTART", "WROTEIPADDR", hosted.payload.up_event):
            if event not in events:
                continue
            fields: dict[str, Any] = {"event": event}
            if event == "WROTEIPADDR" and address:
                fields.update(vmip=address, node=socket.gethostname())
            reports.append(fields)
        if reports:
            self._report(hosted, *reports)

    def recover(self, job_dir: Path, bog_file: str, token_file: str, lock_fd: int) -> None:
        """A hosted job whose command ended while no daemon ran: collect what it left, once (the
        descriptor is the agent's from this call on)."""
        if (job_dir / COLLECTED_FILE).exists() or self.hosts(job_dir.name):
            os.close(lock_fd)
            return
        hosted = self._host(_owning(lock_fd, lambda: load_job(job_dir, bog_file, token_file)), lock_fd)
        hosted.up = True  # whatever it was, it ended while nobody watched: no failure to report
        hosted.exited.set()
        log.info("%s: collecting the outputs of a command that ended while swampd was down", job_dir.name)
        with self._lock:
            self._jobs[hosted.launch_id] = hosted
        self._finishers.submit(self._finish, hosted, None)


def _load(job_dir: Path, bog_file: str, token_file: str, inputs: dict[str, str]) -> Job:
    """The job, from the files the daemon sent (written first, parsed from memory) or already in its
    directory."""
    for name, text in inputs.items():
        if not name or "/" in name or name in (".", ".."):  # a name, never a path: the daemon's own, but checked
            raise JobError(f"input file name {name!r} is not a plain name")
        write_new_private(os.path.join(job_dir, name), text)
    return load_job(job_dir, bog_file, token_file, inputs)


def _owning(lock_fd: int, step: Callable[[], T]) -> T:
    """``step()``, closing ``lock_fd`` if it fails: a job the agent cannot take holds no lock."""
    try:
        return step()
    except BaseException:
        os.close(lock_fd)
        raise


def _kill_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group a hosted command leads (its own session: pgid == pid)."""
    if pid <= 1:  # never started, or unknown: never our own group (killpg(0) would be that)
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
