"""What an assessment framework leaves in ``out/``, written the way SWAMP's frameworks wrote it.

The backend and the Native viewer read these (reference/swamp-assessment.md
§2.1-§2.3), so a tool integration writes them through here:

* ``status.out``: one record per task, ``STATUS: task (short)`` padded to 59
  characters and the duration right-aligned so its unit ends in column 80,
  long messages between ``  ----------`` lines; written as each task ends,
  so a framework that dies leaves the tasks it finished and no ``all``;
* ``<dir>.tar.gz`` plus ``<dir>.conf`` (``ArchiveCreate``): a directory of
  the build area archived into ``out/`` with its index;
* the weakness-count file, first line ``weaknesses: N``.
"""
from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path
from typing import Mapping

STATUS_OUT = "status.out"
DELIMITER = "  ----------"


class StatusOut:
    """Appends records to ``out/status.out`` as tasks end."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / STATUS_OUT
        self.failed: list[str] = []

    def note(self, task: str, short: str = "") -> None:
        self.record("NOTE", task, short)

    def record(self, status: str, task: str, short: str = "", seconds: float | None = None,
               long: str = "") -> None:
        """One record; ``short`` is one line (parentheses are SWAMP's delimiters, so none inside)."""
        short = " ".join(short.replace("(", "[").replace(")", "]").split())
        label = f"{task} ({short})" if short else task
        line = f"{status}: {label:<59}"
        if seconds is not None:
            line += f" {f'{seconds:.6f}s':>14}"
        text = line.rstrip() + "\n"
        if long:
            body = "".join(f"  {row}\n" for row in long.rstrip("\n").splitlines())
            text += f"{DELIMITER}\n{body}{DELIMITER}\n"
        if status == "FAIL":
            self.failed.append(task)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)

    def task(self, task: str) -> TaskTimer:
        return TaskTimer(self, task)


class TaskTimer:
    """Times one task; ``passed``/``failed``/``skipped`` write its record with the duration."""

    def __init__(self, log: StatusOut, task: str) -> None:
        self.log, self.name = log, task
        self.started = time.monotonic()

    def _seconds(self) -> float:
        return time.monotonic() - self.started

    def passed(self, short: str = "") -> None:
        self.log.record("PASS", self.name, short, self._seconds())

    def failed(self, short: str = "", long: str = "") -> None:
        self.log.record("FAIL", self.name, short, self._seconds(), long)

    def skipped(self, short: str = "") -> None:
        self.log.record("SKIP", self.name, short, self._seconds())


def write_conf(path: Path, values: Mapping[str, str]) -> None:
    """``key=value`` lines, in the order given (the frameworks' conf files)."""
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")


def read_conf(path: Path) -> dict[str, str]:
    """A framework conf or SWAMP property file: ``key=value`` lines (``key:=``, ``key:NL=`` undone)."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        key, sep, value = line.partition("=")
        if not sep or line.lstrip().startswith("#"):
            continue
        key = key.strip()
        if key.endswith(":"):
            key = key[:-1]
        elif ":" in key and key.rsplit(":", 1)[1][:-1].isdigit() and key.endswith("L"):
            key, count = key.rsplit(":", 1)
            extra = int(count[:-1]) - 1
            value = "\n".join([value] + lines[i:i + extra])
            i += extra
        else:
            value = value.strip()
        values[key] = value
    return values


def archive_dir(build_dir: Path, name: str, out_dir: Path, conf: Mapping[str, str]) -> None:
    """``out/<name>.tar.gz`` of ``build_dir/<name>`` (top entry ``<name>/``) and ``out/<name>.conf``."""
    archive = out_dir / f"{name}.tar.gz"
    tmp = archive.with_name(archive.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(build_dir / name, name)
    os.replace(tmp, archive)
    write_conf(out_dir / f"{name}.conf", conf)


def append_output_files(out_dir: Path, entries: Mapping[str, str]) -> None:
    """run.sh's ``AddOutputFilesEntry``: ``key=value`` lines appended to ``out/output_files.conf``."""
    with open(Path(out_dir) / "output_files.conf", "a", encoding="utf-8") as fh:
        fh.write("".join(f"{key}={value}\n" for key, value in entries.items()))
