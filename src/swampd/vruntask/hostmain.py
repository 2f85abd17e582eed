"""The host agent's own process: ``python -m swampd.vruntask.hostmain --link-fd N ...``.

Started by the daemon (``hostprocess.HostProcess``), never by hand.  It
runs the ``HostAgent`` (staging, starting, probing and collecting every
local process job) on a CPU of its own, so a burst of launches uses both
cores: the daemon answers callers and keeps the registry while this process
starts the commands.  It serves the daemon's calls over the link and sends
its jobs' reports back over it; when the daemon goes away (end of file on
the link) it leaves at once, as if killed with it: the commands keep
running, holding their locks, and the next daemon's agent adopts them.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from swampd import cpus, runas, runlog
from swampd.vruntask.host import HostAgent
from swampd.vruntask.hostlink import Link
from swampd.vruntask.reportbatch import ReportBatcher

log = logging.getLogger(__name__)


def _one_fd(op: str, fds: list[int]) -> int:
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise ValueError(f"{op} needs exactly one lock descriptor, got {len(fds)}")
    return fds[0]


class Calls:
    """The daemon's calls, each onto the agent; a lock descriptor that comes with one is the agent's
    from then on."""

    def __init__(self, agent: HostAgent) -> None:
        self.agent = agent

    def __call__(self, op: str, args: list[Any], fds: list[int]) -> Any:
        if op == "start":
            job_dir, bog_file, token_file, inputs = args
            return self.agent.start(Path(job_dir), bog_file, token_file, _one_fd(op, fds), dict(inputs))
        if op == "adopt":
            job_dir, bog_file, token_file, pid = args
            return self.agent.adopt(Path(job_dir), bog_file, token_file, int(pid), _one_fd(op, fds))
        if op == "recover":
            job_dir, bog_file, token_file = args
            return self.agent.recover(Path(job_dir), bog_file, token_file, _one_fd(op, fds))
        for fd in fds:
            os.close(fd)
        if op == "stop":
            launch_id, grace, force = args
            return self.agent.stop(str(launch_id), float(grace), bool(force))
        if op == "count":
            return self.agent.count()
        raise ValueError(f"no such call {op!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swampd-host", description=__doc__)
    parser.add_argument("--link-fd", type=int, required=True)
    parser.add_argument("--stop-grace", type=float, default=10.0)
    parser.add_argument("--run-as", default="")
    parser.add_argument("--run-as-group", default="")
    parser.add_argument("--allow-root-jobs", action="store_true")
    parser.add_argument("--one-cpu", action="store_true")
    parser.add_argument("--log-format", default="text")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    runlog.configure("swampd-host", args.log_format, logging.DEBUG if args.debug else logging.INFO)
    if args.one_cpu:
        cpus.pin_to_one_cpu(last=False)  # the daemon keeps the last one
    try:
        user = runas.job_user(args.run_as, args.run_as_group, args.allow_root_jobs)
    except runas.RunAsError as exc:
        log.error("%s", exc)
        return 2
    agent = HostAgent(args.stop_grace, user)
    link = Link(socket.socket(fileno=args.link_fd), Calls(agent), "host", workers=32)
    reports = ReportBatcher(lambda entries: link.call("report_batch", [entries]))
    agent.dispatch = lambda method, body: reports.call(method, [body])
    agent.dispatch_all = reports.call
    link.start()
    link.wait_down()
    # The daemon is gone: leave now, as if killed with it (whatever is half done is what a
    # kill -9 leaves, and the next daemon's agent recovers it).
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
