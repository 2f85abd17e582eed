"""The viewer payload: a Code Dx viewer's inputs, readiness, reports and saved database.

Inputs (lifecycle §4.7): the props file with this launch's API key (0600),
the saved viewer database restored after its SHA-512 is checked (a corrupt
or missing snapshot stops the launch with the reason: a viewer never starts
on an empty database because its saved one could not be read),
``run-params.sh`` with every value shell-quoted (0600), and the BOG without
swampd's own keys (SWAMP's preserveBogFile).  A VM reads run-params.sh from
its input disk, a machine sharing the sandbox from the sandbox root.

Up is ``VIEWERUP``; a local viewer process is up when it answers HTTP.
Reports use the viewer states and SWAMP's wording.  The output is the
viewer database snapshot (``viewer_snapshot``).
"""
from __future__ import annotations

import logging
import re
import shlex
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from swampd.bog import format_bog, write_new_private
from swampd.config import fill_placeholders
from swampd.states import ViewerState
from swampd.vruntask.job import Job
from swampd.vruntask.payloads.base import Milestone, Payload
from swampd.vruntask.payloads.viewer_snapshot import SnapshotResult, collect_snapshot
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.sandbox import MachineOutput, MachineView, PrepareError, Sandbox
from swampd.vruntask.viewerdb import SnapshotError, restore_snapshot

log = logging.getLogger(__name__)

RUN_PARAMS = "run-params.sh"
PROPS_FILE = "codedx.props"
PROPS_KEY = "swa.admin.system-key"
#: How SWAMP's viewer statuses name each platform's machine ("Starting VM").
MACHINE_WORDS = {"vm": "VM", "docker": "DC"}


class ViewerPayload(Payload):
    status_method = "viewerStatus"
    up_event = "VIEWERUP"
    down_event = "VIEWERDOWN"

    @staticmethod
    def failure(reason: str) -> dict[str, Any]:
        return {"state": int(ViewerState.ERROR), "status": reason}

    def report(self, milestone: Milestone, detail: str = "") -> dict[str, Any]:
        if milestone is Milestone.STARTING:
            return {"state": int(ViewerState.LAUNCHING), "status": f"Starting {MACHINE_WORDS.get(detail, 'viewer')}"}
        if milestone is Milestone.STOPPING:
            return {"state": int(ViewerState.STOPPING), "status": "Viewer is starting shutdown"}
        return {"state": int(ViewerState.SHUTDOWN), "status": "Viewer shutdown complete"}

    def stage(self, sandbox: Sandbox, view: MachineView) -> None:
        write_props(sandbox.in_dir, self.job)
        restore_viewer_db(sandbox.in_dir, self.job)
        params_dir = sandbox.root if view.shares_sandbox else sandbox.in_dir
        write_new_private(params_dir / RUN_PARAMS, render_run_params(run_params(self.job, view)))
        # preserveBogFile: the machine gets the BOG, without swampd's own keys.
        guest_bog = {k: v for k, v in self.job.bog.items() if not k.startswith("swampd_")}
        guest_bog["viewerplatform"] = str(self.job.vm.image or "")
        write_new_private(sandbox.in_dir / f"{self.job.execrunid}.bog", format_bog(guest_bog))

    def local_command(self, sandbox: Sandbox, port: int) -> list[str]:
        viewer = self.job.viewer
        if not viewer.command:
            raise PrepareError(f"viewer {viewer.name} has no command for the process platform")
        values = {"port": str(port), "sandbox": str(sandbox.root), "python": sys.executable,
                  "project": self.job.projectid, "viewer": viewer.name, "url_uuid": viewer.url_uuid}
        return [fill_placeholders(part, values) for part in viewer.command]

    def probe_request(self, port: int) -> bytes:
        return http_probe_request(port, self.job.viewer.probe_path)

    def up_answer(self, head: bytes) -> bool:
        return answered_http(head)

    def collect(self, sandbox: Sandbox, output: MachineOutput, reporter: Reporter,
                give_up: Callable[[], bool]) -> SnapshotResult:
        return collect_snapshot(self.job, sandbox, output, reporter, give_up)


def run_params(job: Job, view: MachineView) -> dict[str, str]:
    """SWAMP's run-params.sh variables (lifecycle §4.7) for a machine that sees the sandbox as ``view``.

    The one place these are made: a VM gets its guest-side paths (``/mnt/in``,
    the serial ports), a process or container the host's.
    """
    viewer = job.viewer
    return {
        "PROJECT": viewer.url_uuid,
        "APIKEY": viewer.apikey,
        "JOB_INPUT_DIR": view.in_dir,
        "JOB_OUTPUT_DIR": view.out_dir,
        "SWAMP_EVENT_FILE": view.events_file,
        "IP_ADDR_FILE": view.ip_file,
        "SWAMP_LOG_FILE": f"{view.out_dir}/run.out",
        "TOMCAT_LOG_DIR": "/opt/tomcat/logs",
        "SKIPPED_BUNDLE": f"{view.out_dir}/skippedbundle",
        "VIEWER": viewer.name,
        "VIEWER_STARTEPOCH_FILE": f"{view.out_dir}/run.epoch",
        "CHECKTIMEOUT_FREQUENCY": viewer.checktimeout_frequency,
        "CHECKTIMEOUT_DURATION": viewer.checktimeout_duration,
        "CHECKTIMEOUT_LASTLOG": viewer.checktimeout_lastlog,
        "MACHINE_SHUTDOWN_COMMAND": view.shutdown_command,
    }


def render_run_params(values: dict[str, str]) -> str:
    """``export NAME=value`` lines, every value shell-quoted: sourcing the file runs nothing."""
    lines = ["# written by swampd vruntask; every value is shell-quoted"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def write_props(in_dir: Path, job: Job) -> None:
    """The viewer's props file: the configured base plus this launch's API key, 0600."""
    base = ""
    template = job.viewer.props_file
    if template is not None:
        try:
            base = template.read_text(encoding="utf-8")
        except OSError as exc:
            raise PrepareError(f"cannot read the viewer props file {template}: {exc.strerror}") from None
        if base and not base.endswith("\n"):
            base += "\n"
    write_new_private(in_dir / PROPS_FILE, f"{base}{PROPS_KEY}={job.viewer.apikey}\n")


def restore_viewer_db(in_dir: Path, job: Job) -> None:
    """Unpack the saved viewer database into ``in/``, after checking it against its checksum."""
    db_path = job.viewer.db_path
    if db_path is None:
        return
    try:
        names = restore_snapshot(db_path, job.viewer.db_checksum, in_dir)
    except SnapshotError as exc:
        raise PrepareError(f"saved viewer database unusable: {exc}") from None
    log.info("restored viewer database %s (%s)", db_path, ", ".join(names))


def http_probe_request(port: int, path: str) -> bytes:
    """A bare HTTP request for ``path``: the probe reads no more than the status line of the answer
    (``http.client`` took twice the CPU per probe: 0.23 ms against 0.12 ms against busybox httpd)."""
    target = urllib.parse.quote(path, safe="/?&=%:@!$'()*+,;~-._")
    return f"GET {target} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode("ascii")


def answered_http(head: bytes) -> bool:
    """True when ``head`` starts an HTTP answer with any status below 500: something serves."""
    status = _STATUS_LINE.match(head)
    return status is not None and int(status.group(1)) < 500


#: The start of an HTTP response's status line, and its code.
_STATUS_LINE = re.compile(rb"HTTP/[0-9](?:\.[0-9])? ([0-9]{3})[ \r\n]")
