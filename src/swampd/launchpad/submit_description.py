"""Submit descriptions for swampd's jobs on HTCondor, built from one complete job description.

Pure: no I/O and no bindings, so that every line of every description is
tested directly.  The result is a dict of submit commands for
``htcondor2.Submit``, which serialises a dict as ``key = value`` lines: a
value with a line break would add commands of its own (even a ``queue``
statement), and an unquoted ``$(...)`` is a macro.  So every value that comes
from a caller is checked (identifiers against the identifier rule, paths
and file names against their own) and strings are written as quoted ClassAd
strings; the finished description is checked once more as a whole before
anyone submits it.  Nothing here knows what kind of run a job belongs to:
the kind's job builder put everything it needs into the ``JobDescription``.

Three ways a job runs (SWAMP's templates, ``reference/swamp-lifecycle.md``
§4.6, plus what SWAMP lacked: a queue deadline, a runtime backstop and a
graceful stop):

* ``vm``: the vm universe (kvm) boots the image; ``vruntask prepare`` and
  ``vruntask finish`` run before and after it on the execute node.
* ``docker``: the docker universe runs the image's entrypoint; same pre and
  post commands.
* ``vanilla``: ``vruntask run`` on a hypervisor node starts the machine
  itself (libvirt, or a local process).
"""
from __future__ import annotations

import re
from typing import Mapping

from swampd.config import UNIVERSES, HTCondorConfig
from swampd.identifiers import IDENTIFIER_RE
from swampd.launchpad.jobs import AttributeValue, JobDescription

#: Job attributes swampd finds its jobs by (adopt-or-submit, observation).
KEY_ATTR = "SwampdKey"
LAUNCH_ATTR = "SwampdLaunchId"
EPOCH_ATTR = "SwampdEpoch"
KIND_ATTR = "SwampdKind"

#: Sandbox paths the SWAMP libvirt hook and vruntask monitor read.
EVENTS_PATH = "out/job_events.log"
IP_ADDRESS_PATH = "out/job_ip_address.txt"
#: The vm universe's disks; LaunchPad creates empty placeholders, ``vruntask prepare`` fills them.
VM_DISKS = ("delta.qcow2", "inputdisk.qcow2", "outputdisk.qcow2")

#: A run's key: an execrunid (``vrun_`` + a 128-character project + ``_`` + a 64-character
#: viewer at most) or an assessment's uuid.
KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,197}")
#: Attributes every job must carry with a value (the web server and SWAMP's tools select by them).
REQUIRED_ATTRIBUTES = frozenset({"SWAMP_projectid"})
LAUNCH_ID_RE = re.compile(r"[0-9a-f]{32}")
ATTRIBUTE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,300}")
#: Paths on the submit or execute host: no white space, quotes, '$', ',' or control characters.
PATH_RE = re.compile(r"[A-Za-z0-9_./+@:-]+")
#: Docker image references: registry/name:tag@digest.
IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
#: Concurrency limits: comma-separated NAME[:COUNT].
LIMITS_RE = re.compile(r"[A-Za-z0-9_.]+(:[0-9]+)?(\s*,\s*[A-Za-z0-9_.]+(:[0-9]+)?)*")
COMMAND_KEY_RE = re.compile(r"(\+|MY\.)?[A-Za-z_][A-Za-z0-9_.]*")


class SubmitDescriptionError(ValueError):
    """A value cannot go into a submit description safely; nothing was submitted."""


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


def classad_value(name: str, value: AttributeValue, key: str) -> str:
    """An attribute's value as a ClassAd literal.  Strings are identifiers (or the run's key):
    what swampd puts on a job is ids, and ids need no character that could bend a description."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value != key:
        _checked(name, value, IDENTIFIER_RE, allow_empty=name not in REQUIRED_ATTRIBUTES)
    return classad_string(value)


def accounting_user(userid: str) -> str:
    """SWAMP's accounting group user: the user id with '@' written as '-at-'."""
    return userid.replace("@", "-at-")


def vruntask_arguments(command: str, job: JobDescription) -> str:
    """The argument string of a vruntask step in the sandbox (file names are checked)."""
    return f"{command} --bog {job.bog_file} --token-file {job.token_file}"


def build_submit(job: JobDescription, condor: HTCondorConfig) -> dict[str, str]:
    """The submit commands for ``job`` (insertion order is the order to read them in)."""
    _checked("run key", job.key, KEY_RE)
    _checked("launch id", job.launch_id, LAUNCH_ID_RE)
    _checked("job directory", str(job.job_dir), PATH_RE)
    _checked("BOG file name", job.bog_file, FILE_NAME_RE)
    _checked("token file name", job.token_file, FILE_NAME_RE)
    _checked("vruntask path", condor.vruntask, PATH_RE)
    _checked("concurrency limits", job.concurrency_limits, LIMITS_RE, allow_empty=True)
    if job.universe not in UNIVERSES:
        raise SubmitDescriptionError(f"universe {job.universe!r} is not one of {', '.join(UNIVERSES)}")
    if job.memory_mb <= 0 or job.cpus <= 0:
        raise SubmitDescriptionError("memory and cpus must be positive")
    attributes = {name: classad_value(name, value, job.key) for name, value in job.attributes.items()
                  if _checked("attribute name", name, ATTRIBUTE_NAME_RE)}

    desc: dict[str, str] = {"universe": job.universe}
    inputs = [job.bog_file, job.token_file]
    if job.universe == "vm":
        desc.update(_vm_commands(job, condor))
        inputs = [*VM_DISKS, *inputs]
    elif job.universe == "docker":
        desc.update(_docker_commands(job, condor))
    else:
        desc.update(_vanilla_commands(job, condor))

    userid = job.attributes.get("SWAMP_userid", "")
    desc.update({
        "request_memory": str(job.memory_mb),
        "request_cpus": str(job.cpus),
        "initialdir": str(job.job_dir),
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT_OR_EVICT",
        "transfer_input_files": ", ".join(inputs),
        "output": "condor_out",
        "error": "condor_err",
        "log": "condor_log",
        "batch_name": job.key,
        # SWAMP's attributes: the libvirt hook, the web server and SWAMP's tools read these.
        "+JOB_EVENTS_PATH": classad_string(EVENTS_PATH),
        "+JOB_IP_ADDRESS_PATH": classad_string(IP_ADDRESS_PATH),
        "priority": str(job.priority or condor.priority),
        **{f"+{name}": value for name, value in attributes.items()},
        "+SWAMP_submit_jobdir": classad_string(job.launch_id),
        # swampd's own: how adopt-or-submit and observation find the job.
        f"MY.{KEY_ATTR}": classad_string(job.key),
        f"MY.{LAUNCH_ATTR}": classad_string(job.launch_id),
        f"MY.{EPOCH_ATTR}": str(int(job.epoch)),
        f"MY.{KIND_ATTR}": classad_string(_checked("run kind", job.kind, IDENTIFIER_RE)),
        "accounting_group": job.accounting_group or condor.accounting_group,
    })
    if isinstance(userid, str) and userid:
        desc["accounting_group_user"] = accounting_user(userid)
    if job.concurrency_limits:
        desc["concurrency_limits"] = job.concurrency_limits
    queue_timeout = condor.queue_timeout or job.queue_timeout
    desc.update({
        # What SWAMP lacked: a job that never starts is removed by HTCondor
        # itself (even while swampd is down), a job that runs too long is held
        # (HoldReasonCode 47), and a stop gives the machine time to save its work.
        "periodic_remove": (
            f"JobStatus == 1 && JobCurrentStartDate =?= undefined && (time() - QDate) > {int(queue_timeout)}"
        ),
        "allowed_execute_duration": str(int(job.max_runtime + condor.runtime_margin)),
        "want_graceful_removal": "true",
        "job_max_vacate_time": str(int(condor.job_max_vacate_time)),
    })
    if condor.periodic_hold:
        desc["periodic_hold"] = condor.periodic_hold  # the site's policy (checked as an expression at load)
    check_description(desc)
    return desc


def _vm_commands(job: JobDescription, condor: HTCondorConfig) -> dict[str, str]:
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


def _docker_commands(job: JobDescription, condor: HTCondorConfig) -> dict[str, str]:
    if not job.image:
        raise SubmitDescriptionError(f"{job.key} runs in the docker universe but has no image")
    desc = {"docker_image": _checked("docker image", job.image, IMAGE_RE), "transfer_executable": "false"}
    if condor.docker_network_type:
        desc["docker_network_type"] = condor.docker_network_type
    desc.update(_pre_post(job, condor))
    return desc


def _vanilla_commands(job: JobDescription, condor: HTCondorConfig) -> dict[str, str]:
    desc = {
        "executable": condor.vruntask,
        "transfer_executable": "false",
        # New-syntax arguments: double-quoted, split on spaces; every word is checked.
        "arguments": '"' + vruntask_arguments("run", job) + '"',
    }
    if condor.vanilla_requirements:
        desc["requirements"] = condor.vanilla_requirements
    return desc


def _pre_post(job: JobDescription, condor: HTCondorConfig) -> dict[str, str]:
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
