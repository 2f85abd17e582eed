"""The job sandbox a viewer machine expects: ``in/``, ``out/``, ``run-params.sh``.

Layout and variable names are SWAMP's (lifecycle §4.7), so a viewer image's
``run.sh`` finds what it always found.  Every value in ``run-params.sh`` is
shell-quoted, so no value, whoever chose it, can run code when the file is
sourced; the file carries the viewer's API key and is private (0600).
"""
from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from swampd.bog import write_private
from swampd.vruntask.events import EVENTS_FILE, IP_FILE

RUN_PARAMS = "run-params.sh"


@dataclass
class Sandbox:
    root: Path
    bog: dict[str, str]

    @property
    def in_dir(self) -> Path:
        return self.root / "in"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    @property
    def events_file(self) -> Path:
        return self.out_dir / EVENTS_FILE

    @property
    def ip_file(self) -> Path:
        return self.out_dir / IP_FILE

    def prepare(self) -> None:
        """Lay out the directories, the empty signal files, and run-params.sh."""
        self.in_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.events_file, self.ip_file):
            path.touch(exist_ok=True)
        write_private(self.root / RUN_PARAMS, render_run_params(self.run_params()))

    def run_params(self) -> dict[str, str]:
        """The variables of SWAMP's run-params.sh, with paths of this sandbox."""
        out = str(self.out_dir)
        return {
            "PROJECT": self.bog.get("urluuid", ""),
            "APIKEY": self.bog.get("apikey", ""),
            "JOB_INPUT_DIR": str(self.in_dir),
            "JOB_OUTPUT_DIR": out,
            "SWAMP_EVENT_FILE": str(self.events_file),
            "IP_ADDR_FILE": str(self.ip_file),
            "SWAMP_LOG_FILE": os.path.join(out, "run.out"),
            "TOMCAT_LOG_DIR": "/opt/tomcat/logs",
            "SKIPPED_BUNDLE": os.path.join(out, "skippedbundle"),
            "VIEWER": self.bog.get("viewer", ""),
            "VIEWER_STARTEPOCH_FILE": os.path.join(out, "run.epoch"),
            "CHECKTIMEOUT_FREQUENCY": "10",
            "CHECKTIMEOUT_DURATION": "28800",
            "CHECKTIMEOUT_LASTLOG": "3600",
            "MACHINE_SHUTDOWN_COMMAND": "supervisorctl shutdown",
        }

    def record_event(self, name: str, message: str = "") -> None:
        """Write an event as a guest's run.sh does: the name alone to the events file."""
        with open(self.out_dir / "run.out", "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {name} {message}\n")
        with open(self.events_file, "a", encoding="utf-8") as events:
            events.write(f"{name}\n")

    def write_address(self, address: str) -> None:
        with open(self.ip_file, "a", encoding="utf-8") as fh:
            fh.write(f"{address}\n")


def render_run_params(values: dict[str, str]) -> str:
    lines = ["# written by swampd vruntask; every value is shell-quoted"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    return "\n".join(lines) + "\n"
