"""``swampd serve``: wires the registry, LaunchPad, reconciler and server together.

One daemon per state dir: an exclusive lock on ``<state_dir>/swampd.lock`` is
held for the life of the process (the kernel drops it when the process dies,
even by ``kill -9``), and a second daemon names the holder's pid and exits.
SIGTERM stops the server and the workers cleanly; viewer jobs keep running
and are adopted by the next start.

Under systemd (``Type=notify``) the daemon says ``READY=1`` once the
registry is open and the port listens, keeps a ``STATUS=`` line with the
counts of runs, sends ``WATCHDOG=1`` from the reconciler's own loop (so a
wedged reconciler gets the daemon restarted) and ``STOPPING=1`` when it
stops (``swampd.sdnotify``).
"""
from __future__ import annotations

import logging
import os
import signal
import ssl
import sys
import threading
from pathlib import Path

from swampd.config import Config, daemon_url
from swampd.effects import change_effects as effects_on_change
from swampd.launchpad.jobs import Scheduler
from swampd.launchpad.launchpad import LaunchPad
from swampd.launchpad.schedulers.local import LocalScheduler
from swampd import cpus, runas, runlog
from swampd.vruntask.hostprocess import HostProcess
from swampd.lifecycle import LIFECYCLES, groups
from swampd.sdnotify import Notifier, watchdog_interval
from swampd.statedir import LockHeld, PrivateLock, StateDirError, check_state_dir, write_private
from swampd.store import RegistryError, Store
from swampd.agentmonitor.ads import AdPublisher, AdRefresher
from swampd.agentmonitor.admission import Admission
from swampd.agentmonitor.api import AgentMonitorAPI
from swampd.agentmonitor.assessment_effects import AssessmentEffects
from swampd.agentmonitor.assessments import AssessmentService
from swampd.agentmonitor.runs_api import RunsAPI, run_report
from swampd.lifecycle.assessment import ARUN, MRUN
from swampd.agentmonitor.changes import ChangeFeed
from swampd.agentmonitor.credentials import ensure_token_file
from swampd.agentmonitor.hostreports import HostReports
from swampd.agentmonitor.observe import Observe
from swampd.agentmonitor.reconciler import Reconciler
from swampd.agentmonitor.server import AgentMonitorServer, Dispatcher
from swampd.agentmonitor.service import ViewerService

log = logging.getLogger("swampd")

#: Seconds between two STATUS= lines to systemd.
STATUS_EVERY = 5.0
#: The main thread's wait without systemd: long, but bounded (a signal's handler runs when it returns).
IDLE_WAIT = 3600.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_IN_USE = 2


class StartupError(Exception):
    """The daemon cannot start; the message says why, the exit code what kind of why."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StateDirLock:
    """The single-daemon lock on a state dir, with the holder's pid beside it."""

    def __init__(self, state_dir: Path) -> None:
        # Process-wide, not per thread: the daemon may be closed from any thread.
        self.lock = PrivateLock(state_dir / "swampd.lock")
        self.pid_file = state_dir / "swampd.pid"
        self.state_dir = state_dir

    def acquire(self) -> None:
        """Check the state dir is private, then take its lock (exit 2 either way: a restart will not help)."""
        try:
            check_state_dir(self.state_dir)
            self.lock.acquire()
        except LockHeld:
            holder = _read_pid(self.pid_file)
            who = f"pid {holder}" if holder else "another process"
            raise StartupError(f"state dir {self.state_dir} is in use by another swampd ({who})",
                               EXIT_IN_USE) from None
        except (StateDirError, OSError) as exc:
            raise StartupError(str(exc), EXIT_IN_USE) from None
        try:
            write_private(self.pid_file, f"{os.getpid()}\n")
        except (StateDirError, OSError) as exc:
            self.lock.release()
            raise StartupError(f"pid file: {exc}", EXIT_IN_USE) from None

    def release(self) -> None:
        try:
            self.pid_file.unlink()
        except FileNotFoundError:
            pass
        self.lock.release()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def read_token(token_file: str) -> str | None:
    """The bearer token, from a file that only its owner may read (created when missing)."""
    if not token_file:
        return None
    ensure_token_file(token_file)
    try:
        mode = os.stat(token_file).st_mode
        token = Path(token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StartupError(f"token_file {token_file}: {exc.strerror}") from None
    if mode & 0o077:
        raise StartupError(f"token_file {token_file}: must not be readable by group or others (chmod 600)")
    if len(token) < 16:
        raise StartupError(f"token_file {token_file}: the token must be at least 16 characters")
    return token


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The server's TLS context; the key must be private to the daemon's user."""
    try:
        mode = os.stat(key).st_mode
    except OSError as exc:
        raise StartupError(f"tls_key {key}: {exc.strerror}") from None
    if mode & 0o077:
        raise StartupError(f"tls_key {key}: must not be readable by group or others (chmod 600)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"tls_cert {cert} / tls_key {key}: cannot be used: {exc}") from None
    return context


def make_scheduler(config: Config, jobs_root: Path, store: Store | None = None) -> Scheduler:
    if config.scheduler.kind == "local":
        sched = config.scheduler
        try:  # the workloads' own user, never root unless the configuration says so (issue 13)
            user = runas.job_user(sched.run_as, sched.run_as_group, sched.allow_root_jobs)
        except runas.RunAsError as exc:
            raise StartupError(str(exc)) from None
        runas.prepare_jobs_root(jobs_root, user)
        # Process jobs are supervised by one host agent, in a process of its own (issue 10).
        log_format, level = runlog.settings()
        host = HostProcess(sched.stop_grace, sched.run_as, sched.run_as_group, sched.allow_root_jobs,
                           one_cpu=config.agentmonitor.one_cpu, log_format=log_format, debug=level <= logging.DEBUG)
        return LocalScheduler(jobs_root, sched.stop_grace, host=host)
    if config.scheduler.kind == "htcondor":
        return make_htcondor_scheduler(config, jobs_root, store)
    raise StartupError(f"scheduler.kind = {config.scheduler.kind!r} is not available in this build")


def make_htcondor_scheduler(config: Config, jobs_root: Path, store: Store | None) -> Scheduler:
    """The HTCondor backend with the real bindings; the schedd is located on first use."""
    from swampd.launchpad.schedulers.htcondor import HTCondorScheduler, LazySchedd

    tracked = (lambda: tracked_jobs(store)) if store is not None else None
    return HTCondorScheduler(LazySchedd(config.htcondor), config.htcondor, jobs_root, tracked)


def tracked_jobs(store: Store) -> dict[str, str]:
    """Launch id -> job ref of every launch still followed (its job may have left the queue)."""
    return store.tracked_jobs(groups("active"))


def register_ad_effects(reconciler: Reconciler, store: Store, config: Config) -> AdPublisher | None:
    """Mirror viewer states into SWAMP's collector ads when ``[htcondor] advertise`` is on (issue 3)."""
    if "advertise" not in enabled_effects(config):
        return None
    from swampd.launchpad.schedulers.htcondor import make_collector

    publisher = AdPublisher(store, make_collector(config.htcondor), config.htcondor)
    reconciler.register_handler("advertise", publisher.handle)
    return publisher


def enabled_effects(config: Config) -> frozenset[str]:
    """The optional effects this configuration turns on (uploads wait for READY; history rows
    and collector ads follow every change)."""
    kinds: set[str] = set()
    if config.codedx is not None:
        kinds.add("upload")
    if config.mariadb is not None and config.mariadb.launch_history:
        kinds.add("launch_history")
    if config.mariadb is not None:
        kinds.add("run_status")  # assessments' statuses to SWAMP's database
    if config.scheduler.kind == "htcondor" and config.htcondor.advertise:
        kinds.add("advertise")
    return frozenset(kinds)


def register_assessments(reconciler: Reconciler, store: Store, config: Config,
                         changes: ChangeFeed) -> AssessmentService:
    """Assessment runs (issue 11): the service, admission to slots, and their effects."""
    service = AssessmentService(store, reconciler, config)
    service.changes = changes
    service.admission = Admission(store, config, reconciler.enqueue)
    for lifecycle in (ARUN, MRUN):
        lifecycle.admission = service.admission
        lifecycle.max_retries = config.assessments.max_retries
    database = web = None
    if config.mariadb is not None:
        from swampd.clients.assessment_db import AssessmentDatabase

        database = AssessmentDatabase(config.mariadb)
    if config.webserver is not None:
        from swampd.clients.webserver import notifier

        web = notifier(config.webserver)
    effects = AssessmentEffects(store, config, service, database, web)
    for name in ("prepare", "store_results", "run_status", "db_results", "vm_fields", "notify"):
        reconciler.register_handler(name, getattr(effects, name))
    return service


def register_database_effects(reconciler: Reconciler, service: ViewerService, store: Store,
                              config: Config, state_dir: Path) -> None:
    """Wire the Code Dx uploads, store_viewer, snapshot checks and launch history (issue 5)."""
    from swampd.agentmonitor.uploads import Uploader
    from swampd.agentmonitor.viewerdb import ViewerDatabases

    databases = ViewerDatabases(store, config.mariadb, config.viewer_db_roots, config.agentmonitor.max_viewer_db_bytes,
                                job_may_be_alive=reconciler.world.may_be_alive)
    reconciler.register_handler("restore", databases.restore)
    reconciler.register_handler("store_viewer", databases.store_viewer)
    reconciler.register_handler("launch_history", databases.launch_history)
    if config.mariadb is not None:
        service.snapshot_effects = ("store_viewer",)
    uploader = (Uploader(store, config.codedx, state_dir / "uploads", config.result_roots,
                         config.agentmonitor.max_result_bytes) if config.codedx is not None else None)
    reconciler.register_handler("upload", uploader.handle if uploader else (lambda item: None))
    if uploader is not None:
        service.result_effects = ("upload",)


class Daemon:
    """A running AgentMonitor: call ``start``, then ``wait``, then ``close``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        am = config.agentmonitor
        self.state_dir = Path(am.state_dir)
        self.lock = StateDirLock(self.state_dir)
        self.lock.acquire()
        scheduler: Scheduler | None = None
        try:
            token = read_token(am.token_file)
            try:
                self.store = Store(self.state_dir / "registry.sqlite3",
                                   change_effects=effects_on_change(enabled_effects(config)))
            except RegistryError as exc:
                raise StartupError(str(exc)) from None
            scheduler = make_scheduler(config, self.state_dir / "jobs", self.store)
            for viewer in config.viewers.values():
                if viewer.platform not in scheduler.platforms:
                    raise StartupError(
                        f"viewers.{viewer.name}.platform = {viewer.platform!r} cannot run on the "
                        f"{scheduler.kind} scheduler (it runs: {', '.join(sorted(scheduler.platforms))})"
                    )
            dispatcher = Dispatcher()
            try:
                self.server = AgentMonitorServer.from_config(am, dispatcher, token)
            except OSError as exc:
                raise StartupError(f"cannot listen on {exc.filename or f'{am.host}:{am.port}'}: {exc.strerror}") from None
            if am.tls_cert:
                # The handshake happens in each connection's own thread (see
                # RequestHandler.setup), so a stalled client cannot hold up accept().
                self.server.socket = tls_context(am.tls_cert, am.tls_key).wrap_socket(
                    self.server.socket, server_side=True, do_handshake_on_connect=False)
            self.url = am.url or daemon_url(am.host, self.port, tls=bool(am.tls_cert))
            self.launchpad = LaunchPad(scheduler, self.state_dir / "jobs", self.url, am.tls_ca)
            self.reconciler = Reconciler(self.store, self.launchpad, config)
            self.service = ViewerService(self.store, self.reconciler, config)
            self.changes = ChangeFeed()
            self.service.changes = self.changes
            register_database_effects(self.reconciler, self.service, self.store, config, self.state_dir)
            #: The collector ads' publisher (its ``stats`` count refused and unanswered attempts).
            self.ad_publisher = register_ad_effects(self.reconciler, self.store, config)
            self.ad_refresher = (AdRefresher(self.ad_publisher.refresh, config.htcondor.ad_refresh)
                                 if self.ad_publisher is not None else None)
            self.runs = register_assessments(self.reconciler, self.store, config, self.changes)
            # Reports of one instant from the host agent, together (never reachable by a client).
            dispatcher.register_in_process(
                "agentMonitor.runStatus", lambda bodies: self.runs.report_all([run_report(b) for b in bodies]))
            host = getattr(scheduler, "host", None)
            if host is not None:  # its jobs' reports, in batches, through this daemon's own dispatcher
                host.apply_reports = HostReports(dispatcher, self.service).apply
            self.store.on_commit = lambda ids: (self.changes.publish(ids), self.runs.admission.on_commit(ids))
            dispatcher.register_namespace("agentMonitor", AgentMonitorAPI(self.service, config))
            dispatcher.register_namespace("agentMonitor", RunsAPI(self.runs))
            self.observe = Observe(self.store, self.reconciler, config, self.changes, token, bool(am.tls_cert))
            self.server.web = self.observe.web
            self.notifier = Notifier()
            interval = watchdog_interval()
            if interval is not None:
                self.reconciler.alive_interval = interval
                self.reconciler.on_alive = self.notifier.watchdog
        except BaseException:
            if scheduler is not None:
                scheduler.close()  # a host agent process started for it leaves too
            self.lock.release()
            raise
        self._stopped = threading.Event()
        self._serving = False

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._serving = True
        self.launchpad.scheduler.recover()
        self.reconciler.start()
        if self.ad_refresher is not None:
            self.ad_refresher.start()
        threading.Thread(target=self.server.serve_forever, name="xmlrpc", daemon=True).start()
        log.info("swampd serving on %s:%d, state dir %s (%s)", self.config.agentmonitor.host, self.port,
                 self.state_dir, self.config.source)
        # The registry is open and the socket listens (connections queue until the loop takes them).
        self.notifier.ready(self.status_line())

    def request_stop(self) -> None:
        self._stopped.set()

    def wait(self) -> None:
        """Until a stop is asked for; under systemd, a status line every ``STATUS_EVERY`` seconds.
        Without systemd nothing here wakes: an idle daemon's every wake-up costs CPU."""
        if not self.notifier.enabled:
            while not self._stopped.wait(IDLE_WAIT):
                pass
            return
        while not self._stopped.wait(STATUS_EVERY):
            self.notifier.status(self.status_line())

    def status_line(self) -> str:
        """One line for ``systemctl status``: runs by state, and whether the scheduler answers."""
        try:
            counts = self.store.run_counts()
        except Exception as exc:  # the registry is busy: say so rather than nothing
            return f"registry busy: {exc}"
        parts = []
        for kind, state, number in counts:
            lifecycle = LIFECYCLES.get(kind)
            parts.append(f"{number} {kind} {lifecycle.state_name(state) if lifecycle else state}")
        world = self.reconciler.world
        scheduler = ("scheduler answered" if world.answered else
                     "scheduler NOT answering" if world.at else "scheduler not asked yet")
        return f"{sum(c[2] for c in counts)} runs ({', '.join(parts) or 'none'}); {scheduler}"

    def close(self) -> None:
        self.notifier.stopping("stopping")
        if self._serving:  # shutdown() waits for a serve_forever loop that must have run
            self.server.shutdown()
        self.server.server_close()
        self.reconciler.stop()
        self.launchpad.scheduler.close()
        if self.ad_refresher is not None:
            self.ad_refresher.stop()
        self.observe.close()
        self.notifier.close()
        self.store.close()
        self.lock.release()
        log.info("swampd stopped")


def serve(config: Config) -> int:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    if config.agentmonitor.one_cpu:
        cpus.pin_to_one_cpu()  # before any thread starts: they all inherit it
    try:
        daemon = Daemon(config)
    except StartupError as exc:
        print(f"swampd: {exc}", file=sys.stderr)
        return exc.exit_code
    signal.signal(signal.SIGTERM, lambda *_: daemon.request_stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.request_stop())
    daemon.start()
    print(f"swampd: listening on {daemon.url}", flush=True)
    daemon.wait()
    daemon.close()
    return EXIT_OK
