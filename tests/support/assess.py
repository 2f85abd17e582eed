"""Assessment runs for tests: the package archive, the BOG the daemon's job builder writes, vruntask run.

``package_archive`` packs a package kept as source text under ``tests/assess``
into ``<name>-<version>.tar.gz`` (built at run time: nothing binary is
committed).  ``assessment_bog`` is the BOG of one ARun launch as the job
builder writes it (SWAMP's keys plus swampd's), for the process platform
running the configured cppcheck tool unless told otherwise.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from support.daemon import SRC
from swampd.bog import format_bog, write_private

PACKAGES = Path(__file__).resolve().parents[1] / "assess"
EXECRUNID = "3c1d8f0e-5a7b-11ea-9c1e-0242ac110002"
CPPCHECK = ["{python}", "-m", "swampd.tools.cppcheck", "--in-dir", "{in_dir}", "--out-dir", "{out_dir}",
            "--build-dir", "{sandbox}/build"]


def package_archive(dest_dir: Path, name: str = "hello-c", version: str = "2.1") -> Path:
    """``dest_dir/<name>-<version>.tar.gz`` holding ``<name>-<version>/`` (SWAMP's packagesourcepath)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir / f"{name}-{version}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(PACKAGES / name, f"{name}-{version}")
    return archive


def sha512(path: Path) -> str:
    return hashlib.sha512(path.read_bytes()).hexdigest()


def assessment_bog(url: str, package: Path, results: Path, **changes: str | None) -> dict[str, str]:
    values = {
        # SWAMP's keys (reference/swamp-assessment.md §1.2)
        "execrunid": EXECRUNID, "launch_counter": "1", "projectid": "9a7e0000-proj", "userid": "51b30000-user",
        "notify_when_complete_flag": "0", "version": "2", "resultsfolder": str(results),
        "platform_identifier": "debian-12-64", "platform_type": "VM", "toolname": "cppcheck",
        "toolpath": "null", "tool-version": "2.10", "packagename": "hello-c", "packageversion": "2.1",
        "packagepath": str(package), "packagesourcepath": "hello-c-2.1", "packagetype": "C/C++",
        "packagebuild_system": "make", "packagebuild_dir": ".", "packageconfig_cmd": "null",
        # swampd's
        "swampd_agentmonitor_url": url, "swampd_epoch": "1", "swampd_launch_id": "l" * 32,
        "swampd_platform": "process", "swampd_ready_timeout": "30", "swampd_tool": "cppcheck",
        "swampd_tool_command": json.dumps(CPPCHECK), "swampd_run_timeout": "120",
        "swampd_package_sha512": sha512(package) if package.exists() else None,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def write_job(job_dir: Path, values: dict[str, str], token: str = "t" * 32) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    write_private(job_dir / "job.bog", format_bog(values))
    write_private(job_dir / "token", token + "\n")


def start_vruntask(job_dir: Path, values: dict[str, str], command: str = "run") -> subprocess.Popen[str]:
    write_job(job_dir, values)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.Popen([sys.executable, "-m", "swampd.cli.vruntask_main", command, "--job-dir", str(job_dir),
                             "--bog", "job.bog", "--token-file", "token", "--stop-grace", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A tar.gz made of hand-written members (for hostile archives)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def events_and_states(calls: list[dict[str, Any]]) -> list[Any]:
    """runStatus reports in order: event names, or (state, status)."""
    return [c["event"] if "event" in c else (c["state"], c["status"]) for c in calls]
