"""``vruntask``: the execute-node agent (run a launch, its pre/post steps, or follow a guest's events)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from swampd.jobdir import write_exit_status
from swampd.vruntask.job import JobError, load_job
from swampd.vruntask.runner import Exit, follow, report_bad_job, run
from swampd.vruntask.steps import finish_step, prepare_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vruntask", description="swampd execute-node agent")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("run", "run one launch from its BOG to the end"),
                            ("prepare", "lay out the sandbox, inputs and disks (pre-command)"),
                            ("monitor", "follow out/job_events.log and report to the AgentMonitor"),
                            ("finish", "save the run's outputs and report them (post-command)")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--job-dir", default=".", help="the job sandbox (default: the current directory)")
        p.add_argument("--bog", required=True, help="BOG file name inside the job dir")
        p.add_argument("--token-file", required=True, help="report token file inside the job dir (0600)")
        p.add_argument("--stop-grace", type=float, default=10.0, help="seconds between TERM and KILL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s vruntask[%(process)d] %(levelname)s %(message)s")
    job_dir = Path(args.job_dir).resolve()
    try:
        job = load_job(job_dir, args.bog, args.token_file)
        if args.command == "run":
            return run(job, args.stop_grace)
        if args.command == "prepare":
            return prepare_step(job)
        if args.command == "finish":
            return finish_step(job)
        return follow(job)
    except JobError as exc:
        print(f"vruntask: {exc}", file=sys.stderr)
        report_bad_job(exc)
        if args.command == "run":
            write_exit_status(job_dir, Exit.BAD_JOB)
        return Exit.BAD_JOB


if __name__ == "__main__":
    sys.exit(main())
