"""The process platform's run.sh: runs a tool's command on ``in/`` and ``out/`` as SWAMP's run.sh ran the framework.

``python -m swampd.tools.runsh --in-dir IN --out-dir OUT --events FILE [--begin EVENT] [--wait S] -- ARGV...``

What it keeps of run.sh (reference/swamp-assessment.md §1.5): it records
``runOut``, ``buildAssessOut`` and ``statusOut`` in ``out/output_files.conf``,
starts the tool only once ``BEGINASSESSMENT`` is in the events file (the
platform writes it; run.sh wrote it just before ``build_assess_driver``),
runs the tool in ``in/`` with its output in ``out/build_assess.out``, ignores
the tool's exit status, and when the tool left no ``status.out`` writes one,
as run.sh's ``Shutdown`` did.  SIGTERM (the node stopping the run) ends the
tool's whole process group and becomes a ``setup (signal)`` failure, as in
run.sh.  What it leaves out: users, sudo, the network check and the
connected-users wait belong to a machine, not to a local process.

Deliberate difference: a tool that exits leaving no status.out is recorded
as a failed ``assess`` task (run.sh wrote ``PASS: all`` when the driver
exited without one); a result nobody vouched for is not a pass.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from swampd.tools.framework import STATUS_OUT, StatusOut, append_output_files

BUILD_ASSESS_OUT = "build_assess.out"
#: Seconds the tool's process group gets between TERM and KILL (well inside the platform's own grace for us).
TERM_GRACE = 3.0
_PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swampd.tools.runsh")
    parser.add_argument("--in-dir", required=True, type=Path)
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--events", required=True, type=Path)
    parser.add_argument("--begin", default="BEGINASSESSMENT")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the begin event")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    out_dir: Path = args.out_dir
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    append_output_files(out_dir, {"runOut": "run.out", "buildAssessOut": BUILD_ASSESS_OUT,
                                  "statusOut": STATUS_OUT})
    if not command:
        return shutdown(out_dir, "setup", "no-tool-command")
    if not wait_for_event(args.events, args.begin, args.wait, stopping):
        return shutdown(out_dir, "setup", "signal" if stopping else "no-begin-event")
    code = run_tool(command, args.in_dir, out_dir, stopping)
    if stopping:
        return shutdown(out_dir, "setup", "signal")
    if code is None:
        return shutdown(out_dir, "assess", "command-not-found")
    if code < 0:
        return shutdown(out_dir, "assess", f"exit-signal-{-code}")
    return shutdown(out_dir, "assess", f"exit-status-{code}" if code else "no-status-out")


def wait_for_event(events: Path, name: str, seconds: float, stopping: list[int]) -> bool:
    deadline = time.monotonic() + seconds
    while not stopping:
        try:
            if name in events.read_text(encoding="utf-8", errors="replace").split():
                return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return False


def run_tool(command: list[str], in_dir: Path, out_dir: Path, stopping: list[int]) -> int | None:
    """Run the tool in its own process group; TERM ends the group. Its exit status, None if it cannot start."""
    with open(out_dir / BUILD_ASSESS_OUT, "ab") as output:
        try:
            proc = subprocess.Popen(command, cwd=in_dir, stdin=subprocess.DEVNULL, stdout=output,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent)
        except OSError as exc:
            output.write(f"swampd.tools.runsh: cannot start {command[0]}: {exc.strerror}\n".encode())
            return None
    while True:
        try:
            return proc.wait(0.2)
        except subprocess.TimeoutExpired:
            pass
        if stopping:
            _end_group(proc)
            return proc.wait()


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        if grace is None:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _die_with_parent() -> None:
    """In the tool: be killed when runsh dies (it is killed by force only when it ignores TERM)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def shutdown(out_dir: Path, task: str, subtask: str) -> int:
    """run.sh's Shutdown: a status.out of our own only when the tool left none."""
    if not (out_dir / STATUS_OUT).exists():
        log = StatusOut(out_dir)
        log.note("begin")
        log.note("generator", "swampd.tools.runsh")
        log.record("FAIL", task, subtask)
        log.record("FAIL", "all")
        log.note("end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
