"""The job directory: the files a scheduler and the execute-node agent share.

Both sides of a job meet in its directory (``<state_dir>/jobs/<launch_id>``
locally, HTCondor's initialdir on a pool): the daemon's LaunchPad writes the
BOG and the report token there, the local scheduler keeps its liveness lock
and spawn record there, and ``vruntask`` writes its exit status there as its
last act.  The names live here, in a module that imports nothing of either
side, so that the execute node never imports the daemon's scheduler code.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from swampd.fileops import replace_text

#: The report token of the launch (0600); its name is passed to vruntask, never the token.
TOKEN_FILE = "token"
#: The local scheduler's liveness lock: held by the job's processes while any of them lives.
LOCK_FILE = "job.lock"
#: Environment variable naming the inherited descriptor of that lock.
LOCK_FD_ENV = "SWAMPD_JOB_LOCK_FD"
#: Written once the job's processes were started (pid and process group).
SPAWNED_FILE = "spawned"
#: Written by removal, so an end observed afterwards reads as "removed".
REMOVED_FILE = "removed"
#: The job's exit status, written by vruntask as its last act.
EXIT_FILE = "exit_status"
#: vruntask's own log (stdout and stderr of the job).
LOG_FILE = "vruntask.log"


def bog_file_name(execrunid: str) -> str:
    """The BOG's file name in the job directory (SWAMP names it after the run)."""
    return f"{execrunid}.bog"


def write_exit_status(job_dir: Path, code: int) -> None:
    """Record the job's exit status atomically, so an observer can tell success from a kill."""
    replace_text(os.path.join(job_dir, EXIT_FILE), f"{code}\n")


def write_spawn_record(job_dir: Path, pid: int, hosted: bool = False) -> None:
    """Record, atomically, the process (and its group) that runs the job: who is removed, who is adopted.
    ``hosted``: the daemon's host agent started it (no ``vruntask`` of its own)."""
    record: dict[str, object] = {"pid": pid, "pgid": pid}
    if hosted:
        record["host"] = True
    record["at"] = time.time()
    replace_text(os.path.join(job_dir, SPAWNED_FILE), json.dumps(record))


def read_exit_status(job_dir: Path) -> int | None:
    """The exit status vruntask recorded, or None when it never wrote one (it was killed)."""
    try:
        return int((Path(job_dir) / EXIT_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
