"""The typed settings of swampd, their defaults, and the helpers that read them."""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 8084


PLATFORMS = ("vm", "docker", "process")


#: HTCondor universes, the one each platform runs in unless configured otherwise,
#: and the ones that can run it (the one place this table lives).
UNIVERSES = ("vm", "docker", "vanilla")
DEFAULT_UNIVERSE = {"vm": "vm", "docker": "docker", "process": "vanilla"}
ALLOWED_UNIVERSES = {"vm": ("vm", "vanilla"), "docker": ("docker",), "process": ("vanilla",)}


SCHEDULERS = ("local", "htcondor")


#: Placeholders a process viewer's command may use.
COMMAND_PLACEHOLDERS = frozenset({"port", "sandbox", "project", "viewer", "url_uuid", "python"})
#: Placeholders an assessment tool's command may use (filled on the execute node).
TOOL_PLACEHOLDERS = frozenset({"python", "in_dir", "out_dir", "sandbox"})


PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names file, key and reason."""


@dataclass(frozen=True)
class AgentMonitorConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    token_file: str = ""
    #: Requests larger than this are refused with HTTP 413 before parsing.
    max_request_bytes: int = 32 * 1024 * 1024
    #: Seconds between bulk resyncs of every active viewer.
    resync_interval: float = 5.0
    #: Worker threads that reconcile keys (one key is never worked by two).  A submit holds its
    #: worker while the scheduler answers (the host agent's start, a schedd's): eight in flight
    #: brought a burst of 500 local launches to READY about 7 % sooner than four, on less CPU.
    workers: int = 8
    #: Keep the daemon's threads on one CPU (jobs still get every CPU): see ``swampd.cpus``.
    one_cpu: bool = True
    #: The URL execute nodes and clients use; derived from host and port when empty.
    #: Needed when binding a wildcard address, which remote nodes cannot dial.
    url: str = ""
    #: PEM certificate chain and private key (0600): with them the daemon speaks HTTPS only.
    tls_cert: str = ""
    tls_key: str = ""
    #: CA bundle clients and execute nodes verify the daemon with ("" = the system's).
    tls_ca: str = ""
    # -- the transport (issue 9): what a flood of connections or large bodies may take
    #: Open client connections at most; at the cap the one quiet the longest is closed.
    max_connections: int = 1000
    #: Threads serving client calls, and threads kept for execute nodes' reports.
    request_threads: int = 8
    report_threads: int = 2
    #: Seconds one request (TLS handshake, head and body) may take to arrive in full.
    request_timeout: float = 30.0
    #: Seconds a kept-alive connection may sit idle between requests.
    keepalive_timeout: float = 60.0
    #: Bodies over this many bytes are large; at most ``max_large_bodies`` are read at once.
    large_body_bytes: int = 1024 * 1024
    max_large_bodies: int = 2
    # -- local callers without a token
    #: A Unix-domain socket for local clients; whoever may open it may call without a token.
    unix_socket: str = ""
    #: Its file mode and group (e.g. the database's OS user's group, operators).
    unix_socket_mode: int = 0o660
    unix_socket_group: str = ""
    # -- paths callers name (issue 9 findings 1-3)
    #: Directories viewer databases (launchViewer db_path, viewerSnapshot path) must be in;
    #: empty: every viewer's viewer_store (default <state_dir>/SCAProjects).
    viewer_db_roots: tuple[str, ...] = ()
    #: Directories result files and source archives (launchViewer results) must be in;
    #: empty: <state_dir>/results.
    result_roots: tuple[str, ...] = ()
    #: The largest viewer database and result file the daemon reads.
    max_viewer_db_bytes: int = 64 * 1024 ** 3
    max_result_bytes: int = 4 * 1024 ** 3
    # -- operating (issue 13)
    #: "text" (one line per event) or "json" (one JSON object per line); ``--log-json`` overrides.
    log_format: str = "text"


@dataclass(frozen=True)
class SchedulerConfig:
    kind: str = "local"
    #: Seconds between a polite stop (TERM) and a forced one (KILL).
    stop_grace: float = 10.0
    #: The unprivileged user (and group; default: the user's own) local jobs run as
    #: (``swampd.runas``).  Empty: the daemon's own user, which is refused
    #: when that is root unless ``allow_root_jobs`` says otherwise.
    run_as: str = ""
    run_as_group: str = ""
    allow_root_jobs: bool = False


@dataclass(frozen=True)
class HTCondorConfig:
    """``[htcondor]``: running viewer jobs on a pool (``[scheduler] kind = "htcondor"``)."""

    #: Collector "host[:port]"; empty: the pool of the local HTCondor configuration.
    pool: str = ""
    #: Name of the schedd to submit to; empty: the local schedd.
    schedd: str = ""
    #: vruntask on the execute nodes (pre/post commands, the vanilla executable).
    vruntask: str = "/usr/local/bin/vruntask"
    accounting_group: str = "group_viewer"
    priority: int = 10
    #: Seconds a job may wait without starting before HTCondor removes it; 0: the viewer's ready_timeout.
    queue_timeout: float = 0.0
    #: Seconds past a viewer's max_lifetime after which HTCondor holds the job (runtime backstop).
    runtime_margin: float = 3600.0
    #: Seconds a removed viewer has to shut down and save its database (SWAMP: 1200).
    job_max_vacate_time: int = 1200
    #: Seconds a removed job may take to leave the queue before it is forced out.
    remove_grace: float = 1500.0
    vm_networking_type: str = "nat"
    vm_bridge_interface: str = ""
    docker_network_type: str = ""
    #: ClassAd expression selecting the hypervisor nodes for vanilla-universe viewers.
    vanilla_requirements: str = ""
    #: A site's hold policy: a ClassAd expression; HTCondor holds the job when it is true
    #: (HoldReasonCode 3), and the launch ends in ERROR with the hold reason.  "" for none.
    periodic_hold: str = ""
    #: Seconds one schedd or collector call may take before it counts as unanswered.
    timeout: float = 30.0
    #: A held job: "remove" it once its hold reason is recorded, or "leave" it held for an operator.
    on_hold: str = "remove"
    #: Publish SWAMP's generic collector ads (``SWAMP_vmu_viewer_*``) for the web server.
    advertise: bool = False
    #: ClassAdLifetime of those ads, and how often live viewers' ads are refreshed.
    ad_lifetime: int = 900
    ad_refresh: float = 300.0
    #: Port written into ``SWAMP_vmu_viewer_vmip`` when the reported address has none.
    viewer_port: int = 8443


@dataclass(frozen=True, kw_only=True)
class MachineConfig:
    """How a machine runs: the settings viewers and assessments share (BOG ``swampd_vm_*`` and the job)."""

    #: HTCondor universe ("vm", "docker", "vanilla"); empty: the platform's usual one.
    universe: str = ""
    #: Container image (docker platform) or the platform qcow2's absolute path (vm).
    image: str = ""
    #: Memory (MB) and CPUs of the machine.
    memory: int = 6144
    cpus: int = 2
    # -- vm platform (vruntask through libvirt)
    libvirt_uri: str = "qemu:///system"
    #: "kvm" in production; "qemu" is software emulation (TCG), for hosts without KVM.
    domain_type: str = "kvm"
    #: none | user | network:NAME | bridge:NAME | tap:DEV (a tap the host set up).
    network: str = "network:default"
    #: Direct kernel boot (test guests); empty: boot the image's own boot loader.
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    #: Seconds from VM start until the guest must have written its address.
    boot_timeout: float = 300.0
    #: Seconds a guest has to power off (and save its work) after the ACPI request.
    shutdown_timeout: float = 300.0
    #: Size of the empty output disk, MiB (SWAMP: 3 GiB).
    output_disk_mib: int = 3072


@dataclass(frozen=True, kw_only=True)
class ViewerMachine(MachineConfig):
    """(kw_only base for ViewerConfig: its name stays the one positional field)."""


@dataclass(frozen=True)
class ViewerConfig(ViewerMachine):
    name: str
    platform: str = "process"
    command: tuple[str, ...] = ("{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1")
    ready_timeout: float = 600.0
    idle_timeout: float = 3600.0
    max_lifetime: float = 28800.0
    #: How the user's URL is made from the reported address.
    url_template: str = "http://{vmip}/"
    #: Path the process platform probes before it calls the viewer up.
    probe_path: str = "/"
    #: Base of the viewer's props file (the API key is appended); empty: the key alone.
    props_file: str = ""
    #: Where saved viewer databases go: <viewer_store>/<project>/V-Runs/<viewer_uuid>/
    #: (SWAMP: /swamp/SCAProjects); empty: <state_dir>/SCAProjects.
    viewer_store: str = ""


@dataclass(frozen=True, kw_only=True)
class AssessmentsConfig(MachineConfig):
    """``[assessments]``: how assessment runs (ARuns, MRuns) are run and scheduled."""

    #: "process" (the tool's command on this host) or "vm" (an assessment image).
    platform: str = "process"
    #: At most this many assessments run at once (SWAMP's slots); 0: no limit of our own.
    max_concurrent: int = 2
    #: A run whose status.out asks for a retry runs again, at most this many more times (SWAMP: 3).
    max_retries: int = 3
    #: Seconds a submitted run may wait for the scheduler to start it.
    queue_timeout: float = 86400.0
    #: Seconds beyond the tool's run_timeout a started run may take before it is ended.
    run_margin: float = 600.0
    #: Seconds the results of a run may take to be collected and stored.
    collect_timeout: float = 1800.0
    #: Where package and tool archives named by a run may be (empty: <state_dir>/packages).
    package_roots: tuple[str, ...] = ()
    #: The execute nodes' results folders (BOG ``resultsfolder``; empty: <state_dir>/results).
    results_dir: str = ""
    #: Where results are stored for the database: <project_store>/<project>/A-Results/<uuid>/
    #: (SWAMP: /swamp/SCAProjects; empty: <state_dir>/SCAProjects).
    project_store: str = ""
    #: Metric runs' results: <metric_store>/<M-id>/ (SWAMP: /swamp/store/SCAPackages/Metrics).
    metric_store: str = ""
    #: Seconds a finished run's job directory is kept once its results are stored.
    job_retention: float = 0.0
    #: HTCondor accounting group and priority of assessment jobs (SWAMP: group_assessment, 0).
    accounting_group: str = "group_assessment"
    priority: int = 0


#: SWAMP's viewer_version_uuid of each viewer (viewer_store seed rows), for launch history rows.
DEFAULT_VIEWER_VERSIONS = {"CodeDX": "5d0fb63c-865a-11e3-88bb-001a4a81450b"}


#: Code Dx auth header forms: SWAMP's images set a system key; newer Code Dx takes API-Key.
CODEDX_AUTH = ("system-key", "api-key")


@dataclass(frozen=True)
class MariaDBConfig:
    """The SWAMP database the daemon writes to (store_viewer, launch history).

    Present only when the file has a ``[mariadb]`` table; without one the
    daemon never talks to MariaDB.
    """

    host: str = "127.0.0.1"
    port: int = 3306
    #: A Unix socket path; used instead of host/port when set.
    unix_socket: str = ""
    user: str = "swampd"
    #: A file holding the password, readable by its owner only; empty for none.
    password_file: str = ""
    #: Database holding SWAMP's viewer_store tables and procedures.
    database: str = "viewer_store"
    connect_timeout: float = 5.0
    #: Seconds a single statement may take before the call counts as failed.
    read_timeout: float = 30.0
    #: Write viewer_launch_history rows and viewer_instance status (legacy columns).
    launch_history: bool = False
    viewer_versions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VIEWER_VERSIONS))
    #: Database holding SWAMP's assessment objects (exec_run_view, execution_record,
    #: update_execution_run_status, insert_results); on the same server and account.
    assessment_database: str = "assessment"
    #: Database holding SWAMP's metric runs (metric_run), for ``M-`` run ids.
    metric_database: str = "metric"


@dataclass(frozen=True)
class WebServerConfig:
    """``[webserver]``: SWAMP's web server, told when a run whose user asked for it has finished.

    Present only when the file has a ``[webserver]`` table; without one no
    notification is sent (SWAMP: swamp.conf ``swamp_api_web_server``).
    """

    #: The web server's API base; the notification is ``POST <base_url>/execution_records/<uuid>/notify``.
    base_url: str = ""
    #: TLS certificate verification; on unless an operator turns it off (SWAMP used curl --insecure).
    verify_tls: bool = True
    #: CA bundle (PEM) for the web server's certificate, e.g. the facility's CA; empty: the system's.
    ca_bundle: str = ""
    #: Seconds for one request (connect and read).
    timeout: float = 30.0

    @property
    def verify(self) -> bool | str:
        """What ``requests`` takes as ``verify``: False, the CA bundle, or True (the system's CAs)."""
        if not self.verify_tls:
            return False
        return self.ca_bundle or True


@dataclass(frozen=True)
class CodeDxConfig:
    """Uploading launch results into the viewer's Code Dx once it is READY.

    Present only when the file has a ``[codedx]`` table.
    """

    #: The viewers that run Code Dx.
    viewers: tuple[str, ...] = ("CodeDX",)
    #: Code Dx base URL (with its context path) made from the viewer's address.
    base_url: str = "https://{vmip}/{url_uuid}"
    auth: str = "system-key"
    #: TLS certificate verification; on unless an operator turns it off.
    verify_tls: bool = True
    #: CA bundle (PEM) that signs the viewers' certificates, e.g. the facility's CA.
    ca_bundle: str = ""
    #: Seconds for one HTTP request (connect and read).
    timeout: float = 30.0
    #: Seconds between polls of an analysis job.
    poll_interval: float = 2.0
    #: Seconds one upload attempt waits for its analysis job before trying again later.
    job_wait: float = 120.0


@dataclass(frozen=True)
class NativeConfig:
    """``[native]``: the synchronous Native viewer in ``launchviewer`` (results -> files in --outdir)."""

    #: Bytes one archive (a zip report, an outputdisk.tar.gz) may expand to before it is refused.
    max_unpacked_bytes: int = 4 << 30
    #: Members one archive may hold before it is refused.
    max_archive_members: int = 200_000
    #: Rows the HTML results page lists (nativereport.json always has every finding).
    report_rows: int = 20_000


@dataclass(frozen=True)
class ToolConfig:
    """``[tools.NAME]``: an assessment tool ``swampd assess --tool NAME`` (and the job builder) can name.

    On the process platform the execute node runs ``command`` (through
    ``swampd.tools.runsh``, its run.sh) with cwd ``in/``; it must leave
    SWAMP's ``out/`` layout: status.out, and parsed_results.tar.gz with its
    conf for results (``swampd.tools.framework``).
    """

    name: str
    #: The tool's run script on the process platform: an argv list; {python} {in_dir} {out_dir} {sandbox}.
    command: tuple[str, ...] = ()
    #: SWAMP's tool name (BOG ``toolname``, assessment_result rows); empty: the table's name.
    tool_name: str = ""
    #: BOG ``tool-version``; empty: unknown.
    version: str = ""
    #: SWAMP package types it assesses (``C/C++``, ``Python3``, ...); empty: any.
    package_types: tuple[str, ...] = ()
    #: Seconds an assessment may run once its machine is up, before the execute node ends it.
    run_timeout: float = 3600.0
    #: A run script for machines that boot their own (vm): copied to in/run.sh (BOG ``swampd_runsh``).
    runsh: str = ""
    #: SWAMP's tool directory (``<platform>/in-files``, ``noarch/in-files``) or tool archive (BOG ``toolpath``).
    tool_path: str = ""
    #: At most this many assessments of this tool at once on the local scheduler (0: no limit of its own).
    max_concurrent: int = 0
    #: HTCondor ``concurrency_limits`` name (SWAMP's licensed tools: PARASOFTC, SYNOPSYSC, ...); empty: none.
    concurrency_limits: str = ""

    @property
    def swamp_name(self) -> str:
        return self.tool_name or self.name


#: The tools of the built-in defaults (and of a file without a [tools] table): cppcheck, from Debian.
def default_tools() -> dict[str, ToolConfig]:
    return {"cppcheck": ToolConfig(
        "cppcheck", command=("{python}", "-m", "swampd.tools.cppcheck", "--in-dir", "{in_dir}",
                             "--out-dir", "{out_dir}", "--build-dir", "{sandbox}/build"),
        package_types=("C/C++",))}


@dataclass(frozen=True)
class Config:
    agentmonitor: AgentMonitorConfig
    scheduler: SchedulerConfig
    viewers: dict[str, ViewerConfig]
    source: str = "built-in defaults"
    mariadb: MariaDBConfig | None = None
    codedx: CodeDxConfig | None = None
    htcondor: HTCondorConfig = field(default_factory=HTCondorConfig)
    native: NativeConfig = field(default_factory=NativeConfig)
    tools: dict[str, ToolConfig] = field(default_factory=default_tools)
    assessments: AssessmentsConfig = field(default_factory=AssessmentsConfig)
    webserver: WebServerConfig | None = None

    @property
    def viewer_names(self) -> frozenset[str]:
        return frozenset(self.viewers)

    @property
    def viewer_db_roots(self) -> tuple[str, ...]:
        """Where viewer databases named by callers may be: the configured roots, else the viewer stores."""
        if self.agentmonitor.viewer_db_roots:
            return self.agentmonitor.viewer_db_roots
        stores = {v.viewer_store or str(Path(self.agentmonitor.state_dir) / "SCAProjects")
                  for v in self.viewers.values()}
        return tuple(sorted(stores))

    @property
    def result_roots(self) -> tuple[str, ...]:
        """Where result files and source archives named by callers may be."""
        return self.agentmonitor.result_roots or (str(Path(self.agentmonitor.state_dir) / "results"),)

    @property
    def url(self) -> str:
        """The URL clients use to reach this daemon."""
        am = self.agentmonitor
        return am.url or daemon_url(am.host, am.port, tls=bool(am.tls_cert))


def default_state_dir() -> Path:
    """The user's state directory (XDG), where the registry lives by default."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "swampd"


def daemon_url(host: str, port: int, tls: bool = False) -> str:
    """The client URL for a bind address (a wildcard bind is reached on loopback)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}/"


def is_loopback(host: str) -> bool:
    """True when binding to ``host`` exposes the daemon to this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_path_from(cli_value: str | None) -> str | None:
    """The file to read: ``--config``, else ``SWAMPD_CONFIG``, else none."""
    return cli_value or os.environ.get("SWAMPD_CONFIG") or None


def fill_placeholders(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` with ``values[name]``; names were checked at load time."""
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)
