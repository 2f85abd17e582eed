"""Submit descriptions for viewer jobs on HTCondor, built from one launch's facts.

Pure: no I/O and no bindings, so that every line of every description is
tested directly.  The result is a dict of submit commands for
``htcondor2.Submit``, which serialises a dict as ``key = value`` lines: a
value with a line break would add commands of its own (even a ``queue``
statement), and an unquoted ``$(...)`` is a macro.  So every value that comes
from a caller is checked against the identifier rule and written as a quoted
ClassAd string, and the finished description is checked once more as a
whole before anyone submits it.

Three ways a viewer runs (SWAMP's templates, ``reference/swamp-lifecycle.md``
§4.6, plus what SWAMP lacked: a queue deadline, a runtime backstop and a
graceful stop):

* ``vm``: the vm universe (kvm) boots the image; ``vruntask prepare`` and
  ``vruntask finish`` run before and after it on the execute node.
* ``docker``: the docker universe runs the image's entrypoint; same pre and
  post commands.
* ``vanilla``: ``vruntask run`` on a hypervisor node starts the viewer
  machine itself (libvirt, or a local process).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from swampd.config import HTCondorConfig

UNIVERSES = ("vm", "docker", "vanilla")
#: The universe a viewer platform runs in unless its config says otherwise.
DEFAULT_UNIVERSE = {"vm": "vm", "docker": "docker", "process": "vanilla"}
#: Which universes can run which platform.
ALLOWED_UNIVERSES = {"vm": ("vm", "vanilla"), "docker": ("docker",), "process": ("vanilla",)}

#: Job attributes swampd finds its jobs by (adopt-or-submit, observation).
KEY_ATTR = "SwampdKey"
LAUNCH_ATTR = "SwampdLaunchId"
EPOCH_ATTR = "SwampdEpoch"

#: Sandbox paths the SWAMP libvirt hook and vruntask monitor read.
EVENTS_PATH = "out/job_events.log"
IP_ADDRESS_PATH = "out/job_ip_address.txt"
#: The vm universe's disks; LaunchPad creates empty placeholders, ``vruntask prepare`` fills them.
VM_DISKS = ("delta.qcow2", "inputdisk.qcow2", "outputdisk.qcow2")

IDENTIFIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
EXECRUNID_RE = re.compile(r"vrun_[A-Za-z0-9][A-Za-z0-9._-]{0,127}_[A-Za-z][A-Za-z0-9_-]{0,63}")
LAUNCH_ID_RE = re.compile(r"[0-9a-f]{32}")
FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
#: Paths on the submit or execute host: no white space, quotes, '$', ',' or control characters.
PATH_RE = re.compile(r"[A-Za-z0-9_./+@:-]+")
#: Docker image references: registry/name:tag@digest.
IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
COMMAND_KEY_RE = re.compile(r"(\+|MY\.)?[A-Za-z_][A-Za-z0-9_.]*")


class SubmitDescriptionError(ValueError):
    """A value cannot go into a submit description safely; nothing was submitted."""


@dataclass(frozen=True)
class ViewerJob:
    """The facts of one launch a submit description is made from.

    ``execrunid``, ``projectid``, ``userid`` and ``viewer_uuid`` come from
    callers; they are checked again here even though the API checked them,
    because a description is the last place where a bad one could do harm.
    """

    execrunid: str
    launch_id: str
    epoch: int
    projectid: str
    userid: str
    viewer_uuid: str
    viewer: str
    universe: str
    #: The job directory on the submit host (HTCondor's initialdir).
    job_dir: str
    bog_file: str
    token_file: str
    memory_mb: int = 6144
    cpus: int = 2
    image: str = ""
    #: The viewer's max_lifetime: the runtime backstop is this plus a margin.
    max_lifetime: float = 28800.0
    #: Used as the queue deadline when the HTCondor config gives none.
    ready_timeout: float = 600.0


def classad_string(value: str) -> str:
    """``value`` as a ClassAd string literal; refuses what no attribute of ours contains."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise SubmitDescriptionError(f"value {value[:40]!r} contains a control character")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _checked(name: str, value: str, pattern: re.Pattern[str], allow_empty: bool = False) -> str:
    if value == "" and allow_empty:
        return value
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        shown = repr(value)[:60]
        raise SubmitDescriptionError(f"{name} {shown} cannot go into a submit description")
    return value


def accounting_user(userid: str) -> str:
    """SWAMP's accounting group user: the user id with '@' written as '-at-'."""
    return userid.replace("@", "-at-")


def vruntask_arguments(command: str, job: ViewerJob) -> str:
    """The argument string of a vruntask step in the sandbox (file names are checked)."""
    return f"{command} --bog {job.bog_file} --token-file {job.token_file}"


def build_submit(job: ViewerJob, condor: HTCondorConfig) -> dict[str, str]:
    """The submit commands for ``job`` (insertion order is the order to read them in)."""
    _checked("execrunid", job.execrunid, EXECRUNID_RE)
    _checked("launch id", job.launch_id, LAUNCH_ID_RE)
    _checked("projectid", job.projectid, IDENTIFIER_RE)
    _checked("userid", job.userid, IDENTIFIER_RE, allow_empty=True)
    _checked("viewer_uuid", job.viewer_uuid, IDENTIFIER_RE, allow_empty=True)
    _checked("viewer", job.viewer, IDENTIFIER_RE)
    _checked("job directory", job.job_dir, PATH_RE)
    _checked("BOG file name", job.bog_file, FILE_NAME_RE)
    _checked("token file name", job.token_file, FILE_NAME_RE)
    _checked("vruntask path", condor.vruntask, PATH_RE)
    if job.universe not in UNIVERSES:
        raise SubmitDescriptionError(f"universe {job.universe!r} is not one of {', '.join(UNIVERSES)}")
    if job.memory_mb <= 0 or job.cpus <= 0:
        raise SubmitDescriptionError("memory and cpus must be positive")

    desc: dict[str, str] = {"universe": job.universe}
    inputs = [job.bog_file, job.token_file]
    if job.universe == "vm":
        desc.update(_vm_commands(job, condor))
        inputs = [*VM_DISKS, *inputs]
    elif job.universe == "docker":
        desc.update(_docker_commands(job, condor))
    else:
        desc.update(_vanilla_commands(job, condor))

    desc.update({
        "request_memory": str(job.memory_mb),
        "request_cpus": str(job.cpus),
        "initialdir": job.job_dir,
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT_OR_EVICT",
        "transfer_input_files": ", ".join(inputs),
        "output": "condor_out",
        "error": "condor_err",
        "log": "condor_log",
        "batch_name": job.execrunid,
        # SWAMP's attributes: the libvirt hook, the web server and SWAMP's tools read these.
        "+JOB_EVENTS_PATH": classad_string(EVENTS_PATH),
        "+JOB_IP_ADDRESS_PATH": classad_string(IP_ADDRESS_PATH),
        "+ViewerJob": "true",
        "priority": str(condor.priority),
        "+SWAMP_vrun_execrunuid": classad_string(job.execrunid),
        "+SWAMP_userid": classad_string(job.userid),
        "+SWAMP_projectid": classad_string(job.projectid),
        "+SWAMP_submit_jobdir": classad_string(job.launch_id),
        "+SWAMP_viewerinstanceid": classad_string(job.viewer_uuid),
        # swampd's own: how adopt-or-submit and observation find the job.
        f"MY.{KEY_ATTR}": classad_string(job.execrunid),
        f"MY.{LAUNCH_ATTR}": classad_string(job.launch_id),
        f"MY.{EPOCH_ATTR}": str(int(job.epoch)),
        "accounting_group": condor.accounting_group,
    })
    if job.userid:
        desc["accounting_group_user"] = accounting_user(job.userid)
    queue_timeout = condor.queue_timeout or job.ready_timeout
    desc.update({
        # What SWAMP lacked: a job that never starts is removed by HTCondor
        # itself (even while swampd is down), a job that runs too long is held
        # (HoldReasonCode 47), and a stop gives the viewer time to save its database.
        "periodic_remove": (
            f"JobStatus == 1 && JobCurrentStartDate =?= undefined && (time() - QDate) > {int(queue_timeout)}"
        ),
        "allowed_execute_duration": str(int(job.max_lifetime + condor.runtime_margin)),
        "want_graceful_removal": "true",
        "job_max_vacate_time": str(int(condor.job_max_vacate_time)),
    })
    check_description(desc)
    return desc


def _vm_commands(job: ViewerJob, condor: HTCondorConfig) -> dict[str, str]:
    desc = {
        "vm_type": "kvm",
        "vm_memory": str(job.memory_mb),
        "vm_vcpus": str(job.cpus),
        "vm_networking": "true",
        "vm_networking_type": condor.vm_networking_type,
        "vm_disk": ",".join(f"{disk}:vd{letter}:w:qcow2" for disk, letter in zip(VM_DISKS, "abc")),
        "vm_no_output_vm": "true",
        # In the vm universe the executable is only a label (SWAMP's guest hostname).
        "executable": "vswamp-$(ClusterId)-$(ProcId)",
        "+JobVMVNCConsole": "true",
        "+JobVMSerialConsole": "true",
        "+JobVMEvents": "true",
    }
    if condor.vm_bridge_interface:
        desc["+VMPARAM_Bridge_Interface"] = classad_string(condor.vm_bridge_interface)
    desc.update(_pre_post(job, condor))
    return desc


def _docker_commands(job: ViewerJob, condor: HTCondorConfig) -> dict[str, str]:
    if not job.image:
        raise SubmitDescriptionError(f"viewer {job.viewer} runs in the docker universe but has no image")
    desc = {"docker_image": _checked("docker image", job.image, IMAGE_RE), "transfer_executable": "false"}
    if condor.docker_network_type:
        desc["docker_network_type"] = condor.docker_network_type
    desc.update(_pre_post(job, condor))
    return desc


def _vanilla_commands(job: ViewerJob, condor: HTCondorConfig) -> dict[str, str]:
    desc = {
        "executable": condor.vruntask,
        "transfer_executable": "false",
        # New-syntax arguments: double-quoted, split on spaces; every word is checked.
        "arguments": '"' + vruntask_arguments("run", job) + '"',
    }
    if condor.vanilla_requirements:
        desc["requirements"] = condor.vanilla_requirements
    return desc


def _pre_post(job: ViewerJob, condor: HTCondorConfig) -> dict[str, str]:
    """SWAMP's pre/post commands, now vruntask's prepare and finish steps."""
    return {
        "+PreCmd": classad_string(condor.vruntask),
        "+PreArguments": classad_string(vruntask_arguments("prepare", job)),
        "+PostCmd": classad_string(condor.vruntask),
        "+PostArguments": classad_string(vruntask_arguments("finish", job)),
    }


def check_description(desc: Mapping[str, str]) -> None:
    """Refuse a description that would say more than its keys (line breaks, a queue statement)."""
    for key, value in desc.items():
        if COMMAND_KEY_RE.fullmatch(key) is None or key.casefold() == "queue":
            raise SubmitDescriptionError(f"submit command name {key!r} is not allowed")
        if not isinstance(value, str):
            raise SubmitDescriptionError(f"submit command {key} must be a string")
        if any(ch in value for ch in "\n\r\0"):
            raise SubmitDescriptionError(f"submit command {key} has a line break")
        if value.rstrip().endswith("\\"):
            raise SubmitDescriptionError(f"submit command {key} ends in a line continuation")
