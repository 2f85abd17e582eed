"""What a process uses, read from /proc: threads, memory, CPU time, open files."""
from __future__ import annotations

import os
from pathlib import Path


def status_field(pid: int, name: str) -> int:
    """A numeric field of /proc/<pid>/status (``Threads``, ``VmRSS``, ``VmHWM`` in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise KeyError(name)


def threads(pid: int) -> int:
    return status_field(pid, "Threads")


def rss_mib(pid: int) -> float:
    return status_field(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return status_field(pid, "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
