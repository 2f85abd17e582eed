"""The job an execute node runs: its BOG and report token, read once into typed values.

Everything vruntask knows about a launch comes from two files LaunchPad put
in the job directory: the BOG (SWAMP's keys plus swampd's ``swampd_*`` keys)
and the report token.  They are read and checked here, once, so that the
rest of the node works with typed, validated values and never looks a key up
by name: a missing number, a malformed identifier or a wrong kind of run is
found before anything is built, with the key named in the reason.

Loading happens in two steps because a bad BOG must still end its launch
with a reason (invariant 5): first what is needed to *report* (run id,
epoch, daemon URL, token), then everything else.  A failure in the second
step carries the first step's ``ReportTarget``, so the caller can tell the
AgentMonitor why the launch cannot run.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from swampd.bog import BogError, parse_bog, read_bog
from swampd.identifiers import VIEWER_NAME_RE, execrunid as viewer_execrunid, is_identifier

#: Run id prefix -> kind of run, the first that matches.  Kinds are the daemon's: a viewer's run
#: id is ``vrun_<project>_<viewer>``, a metric run's ``M-<uuid>``, and an assessment's is its
#: execution record uuid, with no prefix (SWAMP's ids; reference/swamp-assessment.md §1.2).
KIND_PREFIXES = (("vrun_", "vrun"), ("M-", "mrun"), ("", "arun"))
#: The kinds whose BOG is an assessment's.
ASSESSMENT_KINDS = ("arun", "mrun")


class JobError(Exception):
    """The job's files are unusable; the message names the key and the reason.

    ``target`` is set when the report identity was readable, so the launch can
    still be ended with this reason; ``kind`` says whose vocabulary to use.
    """

    def __init__(self, reason: str, target: ReportTarget | None = None, kind: str = "") -> None:
        super().__init__(reason)
        self.target = target
        self.kind = kind


@dataclass(frozen=True)
class ReportTarget:
    """Who to tell about this launch, and the proof that we are its execute node."""

    url: str
    cafile: str | None
    execrunid: str
    epoch: int
    token: str = field(repr=False)


@dataclass(frozen=True)
class VmSettings:
    """The ``vm`` platform's keys (LaunchPad writes them for every launch; defaults as SWAMP's)."""

    image: Path | None
    libvirt_uri: str
    domain_type: str
    memory_mib: int
    cpus: int
    network: str
    kernel: str
    initrd: str
    cmdline: str
    boot_timeout: float
    shutdown_timeout: float
    output_disk_mib: int


@dataclass(frozen=True)
class ViewerSettings:
    """A viewer run's keys: who it is for, its saved database, and how a local viewer is started."""

    name: str
    viewer_uuid: str
    url_uuid: str
    apikey: str = field(repr=False)
    db_path: Path | None
    db_checksum: str
    version: str
    command: tuple[str, ...]
    probe_path: str
    props_file: Path | None
    store: Path | None
    checktimeout_frequency: str
    checktimeout_duration: str
    checktimeout_lastlog: str


@dataclass(frozen=True)
class AssessmentSettings:
    """An assessment run's keys (ARun and MRun): the package, the tool, and how this node runs it.

    SWAMP's BOG keys are read as SWAMP's PreAssessment read them: trimmed, and
    ``null`` or empty meaning absent (reference §1.2, §1.4).  The ``swampd_*``
    keys are written by the daemon's job builder.
    """

    toolname: str
    tool_version: str
    #: SWAMP's ``toolpath``: the tool's directory (``<platform>/in-files``, ``noarch/in-files``), or an archive.
    toolpath: Path | None
    tool_sha512: str
    packagename: str
    packageversion: str
    packagepath: Path
    package_sha512: str
    packagesourcepath: str
    packagetype: str
    platform_identifier: str
    dependencies: str
    #: ``<resultsfolder>/<execrunid>/e<epoch>`` is this launch's results folder.
    results_folder: Path
    #: The configured tool's name (``[tools.NAME]``), for logs.
    tool: str
    #: The process platform's command: the tool's run script, an argv list with placeholders.
    tool_command: tuple[str, ...]
    #: A run script a machine booting its own (vm) runs as ``in/run.sh``.
    runsh: Path | None
    #: Seconds the machine may run once up before the node ends it; None: no node deadline.
    run_timeout: float | None
    internet_inaccessible: bool
    #: SWAMP_PASSWORD of run-params.conf (the daemon keeps it for ``vm_password``); '' makes one.
    vm_password: str = field(repr=False)
    max_unpacked_bytes: int
    max_archive_members: int


@dataclass(frozen=True)
class Job:
    """One launch, as its BOG and token describe it."""

    job_dir: Path
    bog_file: str
    token_file: str
    target: ReportTarget
    kind: str
    launch_id: str
    projectid: str
    userid: str
    platform: str
    ready_timeout: float
    vm: VmSettings
    #: Exactly one of these, by kind: a viewer's settings, or an assessment's.
    viewer_settings: ViewerSettings | None
    assessment_settings: AssessmentSettings | None
    #: Every key as read, for the SWAMP keys passed through to a guest unchanged.
    bog: Mapping[str, str] = field(repr=False, compare=False)

    @property
    def viewer(self) -> ViewerSettings:
        """A viewer run's settings (only a viewer payload asks)."""
        if self.viewer_settings is None:
            raise JobError(f"{self.execrunid} is not a viewer run", self.target, self.kind)
        return self.viewer_settings

    @property
    def assessment(self) -> AssessmentSettings:
        """An assessment run's settings (only an assessment payload asks)."""
        if self.assessment_settings is None:
            raise JobError(f"{self.execrunid} is not an assessment run", self.target, self.kind)
        return self.assessment_settings

    @property
    def execrunid(self) -> str:
        return self.target.execrunid

    @property
    def epoch(self) -> int:
        return self.target.epoch

    @classmethod
    def from_bog(cls, values: Mapping[str, str], job_dir: Path, token: str,
                 bog_file: str = "", token_file: str = "") -> Job:
        """Check and type a BOG's values; JobError with the key and reason if they do not hold."""
        target, kind = _report_target(values, token)
        try:
            return _job(values, Path(job_dir), target, kind, bog_file, token_file)
        except JobError as exc:
            raise JobError(str(exc), target, kind) from None


def load_job(job_dir: Path, bog_name: str, token_name: str, texts: Mapping[str, str] | None = None) -> Job:
    """Read the BOG and the report token from the job directory, once.

    ``texts``: file contents by name that the caller has at hand because it just wrote them (the
    host agent writes what the daemon sent): parsed from memory, not read back from the files.
    """
    job_dir = Path(job_dir)
    for what, name in (("BOG", bog_name), ("token file", token_name)):
        if not name or "/" in name or name in (".", ".."):
            raise JobError(f"the {what} name {name!r} is not a file name in the job directory")
    texts = texts or {}
    bog_text = texts.get(bog_name)
    try:
        values = read_bog(job_dir / bog_name) if bog_text is None else parse_bog(bog_text)
    except BogError as exc:
        raise JobError(str(exc)) from None
    token = texts.get(token_name)
    if token is None:
        try:
            token = (job_dir / token_name).read_text(encoding="utf-8")
        except OSError as exc:
            raise JobError(f"cannot read the report token: {exc.strerror}") from None
    return Job.from_bog(values, job_dir, token.strip(), bog_name, token_name)


def kind_of(execrunid: str) -> str:
    """The kind of run a run id names, or '' when this node runs no such kind."""
    return next((kind for prefix, kind in KIND_PREFIXES if execrunid.startswith(prefix)), "")


# -- the two steps -------------------------------------------------------------
def _report_target(values: Mapping[str, str], token: str) -> tuple[ReportTarget, str]:
    for key in ("execrunid", "swampd_epoch", "swampd_agentmonitor_url", "swampd_platform"):
        if not values.get(key):
            raise JobError(f"BOG has no {key}")
    if not token:
        raise JobError("the report token file is empty")
    execrunid = values["execrunid"]  # only sent in a report until its kind's form is checked
    url = values["swampd_agentmonitor_url"]
    if not url.startswith(("http://", "https://")):
        raise JobError("BOG swampd_agentmonitor_url is not an http or https URL")
    epoch = _int(values, "swampd_epoch", None)
    target = ReportTarget(url, values.get("swampd_agentmonitor_ca") or None, execrunid, epoch, token)
    return target, kind_of(execrunid)


def _job(values: Mapping[str, str], job_dir: Path, target: ReportTarget, kind: str,
         bog_file: str, token_file: str) -> Job:
    projectid = _identifier(values, "projectid", required=True)
    viewer_settings: ViewerSettings | None = None
    assessment_settings: AssessmentSettings | None = None
    if kind == "vrun":
        viewer_settings = _viewer_settings(values, target, projectid)
    elif kind in ASSESSMENT_KINDS:
        assessment_settings = _assessment_settings(values, target, job_dir)
    else:
        raise JobError(f"BOG execrunid {target.execrunid[:60]!r} is not a run this node knows "
                       "(vrun_<project>_<viewer>, an execution record uuid, M-<uuid>)")
    return Job(
        job_dir=job_dir, bog_file=bog_file, token_file=token_file, target=target, kind=kind,
        launch_id=values.get("swampd_launch_id", ""),
        projectid=projectid,
        userid=_identifier(values, "userid"),
        platform=values["swampd_platform"],
        ready_timeout=_seconds(values, "swampd_ready_timeout", 600.0),
        viewer_settings=viewer_settings,
        assessment_settings=assessment_settings,
        bog=MappingProxyType(dict(values)),
        vm=VmSettings(
            image=_path(values, "platform_image"),
            libvirt_uri=values.get("swampd_libvirt_uri") or "qemu:///system",
            domain_type=values.get("swampd_vm_domain_type") or "kvm",
            memory_mib=_int(values, "swampd_vm_memory", 6144),
            cpus=_int(values, "swampd_vm_cpus", 2),
            network=values.get("swampd_vm_network") or "network:default",
            kernel=values.get("swampd_vm_kernel", ""),
            initrd=values.get("swampd_vm_initrd", ""),
            cmdline=values.get("swampd_vm_cmdline", ""),
            boot_timeout=_seconds(values, "swampd_boot_timeout", 300.0),
            shutdown_timeout=_seconds(values, "swampd_shutdown_timeout", 300.0),
            output_disk_mib=_int(values, "swampd_output_disk_mib", 3072),
        ),
    )


def _viewer_settings(values: Mapping[str, str], target: ReportTarget, projectid: str) -> ViewerSettings:
    viewer = values.get("viewer", "")
    if VIEWER_NAME_RE.fullmatch(viewer) is None:
        raise JobError("BOG viewer is not a viewer name")
    if target.execrunid != viewer_execrunid(projectid, viewer):
        raise JobError("BOG execrunid does not name this project's viewer")
    return ViewerSettings(
        name=viewer,
        viewer_uuid=_identifier(values, "viewer_uuid"),
        url_uuid=_identifier(values, "urluuid"),
        apikey=values.get("apikey", ""),
        db_path=_path(values, "db_path"),
        db_checksum=values.get("db_checksum", ""),
        version=values.get("viewerversion") or "unknown",
        command=_command(values, "swampd_viewer_command"),
        probe_path=values.get("swampd_probe_path") or "/",
        props_file=_path(values, "swampd_props_file"),
        store=_path(values, "swampd_viewer_store"),
        checktimeout_frequency=str(_int(values, "vruntimeout_frequency", 10)),
        checktimeout_duration=str(_int(values, "vruntimeout_duration", 28800)),
        checktimeout_lastlog=str(_int(values, "vruntimeout_lastlog", 3600)),
    )


def _assessment_settings(values: Mapping[str, str], target: ReportTarget, job_dir: Path) -> AssessmentSettings:
    if not is_identifier(target.execrunid):
        raise JobError("BOG execrunid is not an execution record uuid")
    packagepath = _swamp_value(values, "packagepath")
    if not packagepath.startswith("/"):
        raise JobError("BOG packagepath must be the absolute path of the package archive")
    results = _swamp_value(values, "resultsfolder")
    if results and not results.startswith("/"):
        raise JobError("BOG resultsfolder must be an absolute path")
    toolpath = _swamp_value(values, "toolpath")
    if toolpath and not toolpath.startswith("/"):
        raise JobError("BOG toolpath must be an absolute path")
    runsh = values.get("swampd_runsh", "")
    if runsh and not runsh.startswith("/"):
        raise JobError("BOG swampd_runsh must be an absolute path")
    run_timeout = _seconds(values, "swampd_run_timeout", 0.0)
    return AssessmentSettings(
        toolname=_swamp_value(values, "toolname"),
        tool_version=_swamp_value(values, "tool-version"),
        toolpath=Path(toolpath) if toolpath else None,
        tool_sha512=_sha512(values, "swampd_tool_sha512"),
        packagename=_swamp_value(values, "packagename"),
        packageversion=_swamp_value(values, "packageversion"),
        packagepath=Path(packagepath),
        package_sha512=_sha512(values, "swampd_package_sha512"),
        packagesourcepath=_swamp_value(values, "packagesourcepath"),
        packagetype=_swamp_value(values, "packagetype"),
        platform_identifier=_swamp_value(values, "platform_identifier"),
        dependencies=_swamp_value(values, "packagedependencylist"),
        results_folder=Path(results) if results else job_dir / "results",
        tool=values.get("swampd_tool", ""),
        tool_command=_command(values, "swampd_tool_command"),
        runsh=Path(runsh) if runsh else None,
        run_timeout=run_timeout or None,
        internet_inaccessible=_flag(values, "swampd_internet_inaccessible"),
        vm_password=values.get("swampd_vm_password", ""),
        max_unpacked_bytes=_int(values, "swampd_max_unpacked_bytes", 4 << 30),
        max_archive_members=_int(values, "swampd_max_archive_members", 200_000),
    )


# -- typed values ----------------------------------------------------------------
def _swamp_value(values: Mapping[str, str], key: str) -> str:
    """A SWAMP key as PreAssessment read it: trimmed; ``null`` or empty is absent ('')."""
    value = values.get(key, "").strip()
    return "" if value == "null" else value


def _flag(values: Mapping[str, str], key: str) -> bool:
    """SWAMP's flags are text: "1" and "true" are true; "0", "", "false" and "null" are not."""
    return _swamp_value(values, key).lower() in ("1", "true", "yes")


def _sha512(values: Mapping[str, str], key: str) -> str:
    value = values.get(key, "").strip().lower()
    if value and (len(value) != 128 or any(c not in "0123456789abcdef" for c in value)):
        raise JobError(f"BOG {key} is not a SHA-512 hex digest")
    return value


def _identifier(values: Mapping[str, str], key: str, required: bool = False) -> str:
    value = values.get(key, "")
    if not value and not required:
        return ""
    if not is_identifier(value):
        raise JobError(f"BOG {key} is not an identifier")
    return value


def _int(values: Mapping[str, str], key: str, default: int | None) -> int:
    raw = values.get(key, "")
    if not raw and default is not None:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise JobError(f"BOG {key} is not a whole number") from None
    if number <= 0:
        raise JobError(f"BOG {key} must be positive")
    return number


def _seconds(values: Mapping[str, str], key: str, default: float) -> float:
    raw = values.get(key, "")
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise JobError(f"BOG {key} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise JobError(f"BOG {key} must be a finite number of seconds, at least 0")
    return seconds


def _path(values: Mapping[str, str], key: str) -> Path | None:
    raw = values.get(key, "")
    return Path(raw) if raw else None


def _command(values: Mapping[str, str], key: str) -> tuple[str, ...]:
    raw = values.get(key, "")
    if not raw:
        return ()
    try:
        argv = json.loads(raw)
    except ValueError:
        raise JobError(f"BOG {key} is not a JSON list") from None
    if not isinstance(argv, list) or not all(isinstance(part, str) for part in argv):
        raise JobError(f"BOG {key} is not a list of strings")
    return tuple(argv)
