"""``vruntask``: the execute-node agent (run a viewer launch, or follow a guest's events)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from swampd.bog import BogError
from swampd.jobdir import write_exit_status
from swampd.vruntask.run import EXIT_BAD_JOB, JobError, monitor_only, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vruntask", description="swampd execute-node agent")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("run", "run one viewer launch from its BOG to the end"),
                            ("prepare", "lay out the sandbox, viewer database and disks (pre-command)"),
                            ("monitor", "follow out/job_events.log and report to the AgentMonitor"),
                            ("finish", "save the viewer database snapshot and report it (post-command)")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--job-dir", default=".", help="the job sandbox (default: the current directory)")
        p.add_argument("--bog", required=True, help="BOG file name inside the job dir")
        p.add_argument("--token-file", required=True, help="report token file inside the job dir (0600)")
        p.add_argument("--stop-grace", type=float, default=10.0, help="seconds between TERM and KILL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s vruntask[%(process)d] %(levelname)s %(message)s")
    job_dir = Path(args.job_dir).resolve()
    try:
        if args.command == "run":
            return run(job_dir, args.bog, args.token_file, args.stop_grace)
        if args.command == "prepare":
            from swampd.vruntask.steps import prepare_step

            return prepare_step(job_dir, args.bog, args.token_file)
        if args.command == "finish":
            from swampd.vruntask.steps import finish_step

            return finish_step(job_dir, args.bog, args.token_file)
        return monitor_only(job_dir, args.bog, args.token_file)
    except (JobError, BogError) as exc:
        print(f"vruntask: {exc}", file=sys.stderr)
        if args.command == "run":
            write_exit_status(job_dir, EXIT_BAD_JOB)
        return EXIT_BAD_JOB


if __name__ == "__main__":
    sys.exit(main())
