"""``swampd``: the daemon (``serve``) and the operator's commands that talk to it."""
from __future__ import annotations

import argparse
import logging
import sys
import xmlrpc.client
from dataclasses import replace
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swampd", description="swampd job manager for SWAMP viewers")
    parser.add_argument("--config", default=None, help="configuration file (else SWAMPD_CONFIG)")
    parser.add_argument("--url", default=None, help="AgentMonitor URL for client commands")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the AgentMonitor daemon in the foreground")
    serve.add_argument("--config", dest="serve_config", default=None)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--state-dir", default=None)
    serve.add_argument("--debug", action="store_true", help="log at debug level")
    serve.add_argument("--log-json", action="store_true",
                       help="log one JSON object per line (else [agentmonitor] log_format)")

    dm = sub.add_parser("domainmonitor", help="reap viewer VMs whose vruntask is gone (run on a hypervisor)")
    dm.add_argument("--once", action="store_true", help="one pass, then exit")
    dm.add_argument("--uri", default="qemu:///system", help="libvirt URI (default qemu:///system)")
    dm.add_argument("--grace", type=float, default=60.0, help="seconds an orphan is left before it is reaped")
    dm.add_argument("--interval", type=float, default=10.0, help="seconds between passes")
    dm.add_argument("--state-file", default=None,
                    help="where orphans' first sighting is kept (default: <state dir>/domainmonitor.json)")
    dm.add_argument("--log-json", action="store_true", help="log one JSON object per line")

    image = sub.add_parser("image", help="operator tools for viewer and assessment images")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    check = image_sub.add_parser(
        "check", help="run a candidate image through a real launch's path on this host; PASS or FAIL")
    check.add_argument("--platform", required=True, choices=("vm", "docker", "process"))
    check.add_argument("--image", required=True,
                       help="vm: the platform qcow2's absolute path; docker: an image name; "
                            "process: a program that serves HTTP on the port given as its argument")
    what = check.add_mutually_exclusive_group()
    what.add_argument("--viewer", default=None,
                      help="check it as this [viewers.NAME] of the configuration (default: the first one)")
    what.add_argument("--assessment", action="store_true", help="check it as an assessment platform")
    check.add_argument("--timeout", type=float, default=None, help="the ready deadline in seconds "
                       "(default: the viewer's ready_timeout)")
    check.add_argument("--work-dir", default=None, help="where the sandbox goes (default: the system's tmp)")
    check.add_argument("--keep", action="store_true", help="keep the sandbox after a PASS too")

    sub.add_parser("viewers", help="list every viewer the daemon knows")
    for name, help_text in (("status", "show one viewer"), ("stop", "stop one viewer (idempotent)"),
                            ("history", "show one viewer's state history")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("project")
        p.add_argument("viewer")

    runs = sub.add_parser("runs", help="list assessment runs")
    runs.add_argument("--state", default=None, help="only runs in this state (QUEUED, RUNNING, FINISHED, ...)")
    runs.add_argument("--project", default=None, help="only runs of this project")
    run = sub.add_parser("run", help="show one assessment run and its history")
    run.add_argument("execrunid")
    assess = sub.add_parser("assess", help="assess a package with a configured tool, without SWAMP's database")
    assess.add_argument("package", help="the package archive (under [assessments] package_roots)")
    assess.add_argument("--tool", required=True, help="a configured [tools.NAME]")
    assess.add_argument("--name", default="", help="the package's name (default: the archive's)")
    assess.add_argument("--version", default="", help="the package's version")
    assess.add_argument("--type", default="", help="SWAMP's package type, e.g. C/C++")
    assess.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                        help="wait until the run has ended and print its outcome and weakness count")
    sub.add_parser("pause", help="SWAMP off: assessment runs are accepted and queue")
    sub.add_parser("resume", help="SWAMP on: queued assessment runs take slots again")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "domainmonitor":
        return _domainmonitor(args)
    if args.command == "image":
        return _image_check(args)
    return _client(args)


def _domainmonitor(args: argparse.Namespace) -> int:
    import os
    import signal
    import threading

    from swampd.clients.rpc import client_settings
    from swampd.config import default_state_dir

    from swampd import runlog

    runlog.configure("domainmonitor", runlog.wanted_format(args.log_json))
    try:
        from swampd.domainmonitor.monitor import DomainMonitor
    except ImportError as exc:
        print(f"swampd: domainmonitor needs libvirt-python (pip install 'swampd[vm]'): {exc}", file=sys.stderr)
        return EXIT_USAGE
    # No --url: each domain's own AgentMonitor URL (from its metadata) is asked.
    settings = client_settings(args.config)
    token, cafile = (settings.token, settings.cafile) if settings else (None, None)
    url = args.url or os.environ.get("SWAMPD_URL") or None
    state_file = Path(args.state_file) if args.state_file else default_state_dir() / "domainmonitor.json"
    monitor = DomainMonitor(args.uri, args.grace, url, token, state_file, cafile=cafile)
    if args.once:
        for decision in monitor.pass_once():
            print(f"{decision.name} {decision.action.value} {decision.reason}".rstrip())
        return EXIT_OK
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    monitor.run(args.interval, stop)
    return EXIT_OK


def _image_check(args: argparse.Namespace) -> int:
    from swampd.config import ConfigError, config_path_from, load_config
    from swampd.imagecheck.check import ImageCheck, candidate
    from swampd.vruntask.payloads import PAYLOADS

    logging.basicConfig(level=logging.WARNING, format="swampd image check: %(levelname)s %(message)s")
    try:
        config = load_config(config_path_from(args.config))
    except ConfigError as exc:
        print(f"swampd: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.assessment:
        if not ({"arun", "mrun"} & set(PAYLOADS)):
            print("swampd: image check --assessment: this build has no assessment payload yet", file=sys.stderr)
            return EXIT_USAGE
        print("swampd: image check --assessment is not wired to the assessment payload yet", file=sys.stderr)
        return EXIT_USAGE
    name = args.viewer or next(iter(config.viewers))
    viewer = config.viewers.get(name)
    if viewer is None:
        print(f"swampd: image check: no [viewers.{name}] in {config.source}", file=sys.stderr)
        return EXIT_USAGE
    if args.platform == "vm" and not args.image.startswith("/"):
        print("swampd: image check: a vm image is the absolute path of its qcow2", file=sys.stderr)
        return EXIT_USAGE
    if args.timeout is not None and args.timeout <= 0:
        print("swampd: image check: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    check = ImageCheck(candidate(viewer, args.platform, args.image, args.timeout),
                       work_dir=Path(args.work_dir) if args.work_dir else None, keep=args.keep)
    return EXIT_OK if check.run().passed else EXIT_ERROR


def _serve(args: argparse.Namespace) -> int:
    from swampd.config import ConfigError, config_path_from, load_config
    from swampd.agentmonitor.daemon import serve

    from swampd import runlog

    level = logging.DEBUG if args.debug else logging.INFO
    runlog.configure("swampd", runlog.wanted_format(args.log_json), level)
    try:
        config = load_config(config_path_from(args.serve_config or args.config))
    except ConfigError as exc:
        print(f"swampd: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    runlog.configure("swampd", runlog.wanted_format(args.log_json, config.agentmonitor.log_format), level)
    am = config.agentmonitor
    changes: dict[str, Any] = {}
    if args.host is not None:
        changes["host"] = args.host
    if args.port is not None:
        changes["port"] = args.port
    if args.state_dir is not None:
        changes["state_dir"] = Path(args.state_dir)
    if changes:
        from swampd.config import is_loopback

        am = replace(am, **changes)
        if not is_loopback(am.host) and not am.token_file:
            print(f"swampd: configuration error: --host {am.host} is not loopback; "
                  "set agentmonitor.token_file so callers must send a bearer token", file=sys.stderr)
            return EXIT_USAGE
        config = replace(config, agentmonitor=am)
    return serve(config)


def _client(args: argparse.Namespace) -> int:
    from swampd.clients.rpc import connect, resolve

    target = resolve(args.url, args.config)
    url = target.url
    api = connect(*target).agentMonitor
    try:
        if args.command == "viewers":
            _print_table(api.listViewers())
        elif args.command == "status":
            _print_record(api.getViewer(args.project, args.viewer))
        elif args.command == "stop":
            _print_record(api.stopViewer(args.project, args.viewer))
        elif args.command == "history":
            _print_history(api.viewerHistory(args.project, args.viewer))
        elif args.command == "runs":
            filters = {k: v for k, v in (("state", args.state), ("projectid", args.project)) if v}
            _print_runs(api.listRuns(filters))
        elif args.command == "run":
            run = api.getRun(args.execrunid)
            _print_fields(run, ("execrunid", "kind", "state_name", "status", "epoch", "tool", "outcome",
                                "weaknesses", "queued_at", "started_at", "finished_at", "results_dir", "job"))
            if run["state"]:
                _print_history(api.runHistory(args.execrunid))
        elif args.command == "assess":
            return _assess(api, args)
        elif args.command in ("pause", "resume"):
            answer = api.pauseRuns() if args.command == "pause" else api.resumeRuns()
            print(f"assessments {'paused' if answer['paused'] else 'resumed'}; {answer['queued']} queued")
    except xmlrpc.client.Fault as fault:
        print(f"swampd: {fault.faultString} (fault {fault.faultCode})", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, xmlrpc.client.ProtocolError) as exc:
        print(f"swampd: cannot reach the daemon at {url}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return EXIT_OK


def _assess(api: Any, args: argparse.Namespace) -> int:
    import os

    package = os.path.abspath(args.package)
    run = api.assess({"package_path": package, "tool": args.tool,
                      "package_name": args.name or os.path.basename(package).split(".tar")[0].split(".zip")[0],
                      "package_version": args.version, "package_type": args.type})
    print(f"run {run['execrunid']} accepted: {run['status']}")
    if args.wait is None:
        return EXIT_OK
    import time

    deadline = time.monotonic() + args.wait
    while run["state_name"] not in ("FINISHED", "FAILED", "TERMINATED", "TERMINATE_FAILED"):
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"swampd: run {run['execrunid']} not done within {args.wait:g}s: {run['status']}",
                  file=sys.stderr)
            return EXIT_ERROR
        run = api.waitRun(run["execrunid"], min(left, 20.0))  # slices shorter than the 30 s timeout
    print(f"{run['state_name']}: {run['status']}")
    if run["state_name"] == "FINISHED":
        print(f"weaknesses: {run['weaknesses']}")
        for role in ("scarf", "report"):
            if role in run.get("files", {}):
                print(f"{role}: {run['files'][role]}")
    return EXIT_OK if run["state_name"] == "FINISHED" else EXIT_ERROR


def _print_history(history: list[dict[str, Any]]) -> None:
    for h in history:
        moved = f"{h.get('from_state_name', '-')} -> {h['state_name']}"
        why = f"  ({h['reason']})" if h.get("reason") and h["reason"] != h["status"] else ""
        print(f"{h['at']}  epoch {h['epoch']:<3} {moved:<30} {h['source']:<12} {h['status']}{why}")


def _print_runs(rows: list[dict[str, Any]]) -> None:
    print(f"{'RUN':<38} {'KIND':<5} {'EPOCH':>5} {'STATE':<12} {'TOOL':<10} {'WEAK':>5} STATUS")
    for r in rows:
        print(f"{r['execrunid']:<38} {r['kind']:<5} {r['epoch']:>5} {r['state_name']:<12} {r['tool']:<10} "
              f"{r['weaknesses']:>5} {r['status']}")


def _print_fields(r: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in r:
            print(f"{key:<11} {r[key]}")


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'PROJECT':<38} {'VIEWER':<10} {'EPOCH':>5} {'STATE':<16} {'URL':<30} STATUS")
    for r in rows:
        print(f"{r['projectid']:<38} {r['viewer']:<10} {r['epoch']:>5} {r['state_name']:<16} "
              f"{r['url'] or '-':<30} {r['status']}")


def _print_record(r: dict[str, Any]) -> None:
    _print_fields(r, ("execrunid", "state_name", "status", "epoch", "url", "vmip", "url_uuid", "updated",
                      "job", "stale", "last_seen"))


if __name__ == "__main__":
    sys.exit(main())
