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

from swampd.bog import BogError, read_bog
from swampd.identifiers import VIEWER_NAME_RE, execrunid as viewer_execrunid, is_identifier

#: Run id prefix -> kind of run.  Kinds are the daemon's (``vrun``, ``arun``, ``mrun``); this
#: node runs the kinds listed here.
KIND_PREFIXES = (("vrun_", "vrun"),)


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
    viewer: ViewerSettings
    #: Every key as read, for the SWAMP keys passed through to a guest unchanged.
    bog: Mapping[str, str] = field(repr=False, compare=False)

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


def load_job(job_dir: Path, bog_name: str, token_name: str) -> Job:
    """Read the BOG and the report token from the job directory, once."""
    job_dir = Path(job_dir)
    for what, name in (("BOG", bog_name), ("token file", token_name)):
        if not name or "/" in name or name in (".", ".."):
            raise JobError(f"the {what} name {name!r} is not a file name in the job directory")
    try:
        values = read_bog(job_dir / bog_name)
    except BogError as exc:
        raise JobError(str(exc)) from None
    try:
        token = (job_dir / token_name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise JobError(f"cannot read the report token: {exc.strerror}") from None
    return Job.from_bog(values, job_dir, token, bog_name, token_name)


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
    if kind != "vrun":
        raise JobError(f"BOG execrunid {target.execrunid!r} is not a run this node knows (vrun_<project>_<viewer>)")
    projectid = _identifier(values, "projectid", required=True)
    viewer = values.get("viewer", "")
    if VIEWER_NAME_RE.fullmatch(viewer) is None:
        raise JobError("BOG viewer is not a viewer name")
    if target.execrunid != viewer_execrunid(projectid, viewer):
        raise JobError("BOG execrunid does not name this project's viewer")
    return Job(
        job_dir=job_dir, bog_file=bog_file, token_file=token_file, target=target, kind=kind,
        launch_id=values.get("swampd_launch_id", ""),
        projectid=projectid,
        userid=_identifier(values, "userid"),
        platform=values["swampd_platform"],
        ready_timeout=_seconds(values, "swampd_ready_timeout", 600.0),
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
        viewer=ViewerSettings(
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
        ),
        bog=MappingProxyType(dict(values)),
    )


# -- typed values ----------------------------------------------------------------
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
