"""The AgentMonitor's part in an image check: a local XML-RPC endpoint that takes one launch's reports.

``vruntask run`` reports to whatever URL its BOG names; here that is this
receiver on loopback, so a check needs no daemon and touches no registry.
It checks what the daemon checks (the run id, the epoch, the token: a
report for anything else is refused with the daemon's fault codes), keeps
each report with the time it arrived, and for a saved viewer database
checks that the file is there and matches its checksum.
"""
from __future__ import annotations

import hashlib
import hmac
import queue
import threading
import time
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer


@dataclass(frozen=True)
class Received:
    """One report (or saved database) as it arrived, ``at`` seconds after the check began."""

    at: float
    method: str
    fields: dict[str, Any] = field(default_factory=dict)


class _Quiet(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/", "/RPC2")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        return


class Receiver:
    """Serves ``agentMonitor.viewerStatus`` and ``viewerSnapshot`` for one launch on 127.0.0.1."""

    def __init__(self, execrunid: str, epoch: int, token: str, t0: float) -> None:
        self.execrunid, self.epoch, self._token, self.t0 = execrunid, epoch, token, t0
        self.received: queue.Queue[Received] = queue.Queue()
        self.server = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=_Quiet, allow_none=True,
                                         logRequests=False)
        self.server.register_function(self.viewer_status, "agentMonitor.viewerStatus")
        self.server.register_function(self.viewer_snapshot, "agentMonitor.viewerSnapshot")
        self._thread = threading.Thread(target=self.server.serve_forever, name="imagecheck-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _check(self, args: Any) -> dict[str, Any]:
        if not isinstance(args, dict) or args.get("execrunid") != self.execrunid:
            raise xmlrpc.client.Fault(2, "not the run this check launched")
        if args.get("epoch") != self.epoch:
            raise xmlrpc.client.Fault(3, "not the launch this check made")
        if not hmac.compare_digest(str(args.get("token", "")).encode(), self._token.encode()):
            raise xmlrpc.client.Fault(4, "wrong report token")
        return {k: v for k, v in args.items() if k != "token"}

    def viewer_status(self, args: Any) -> bool:
        self.received.put(Received(time.monotonic() - self.t0, "status", self._check(args)))
        return True

    def viewer_snapshot(self, args: Any) -> bool:
        fields = self._check(args)
        path = Path(str(fields.get("path", "")))
        try:
            digest = hashlib.sha512(path.read_bytes()).hexdigest()
            fields["size"] = path.stat().st_size
        except OSError as exc:
            fields["problem"] = f"the saved database {path} cannot be read: {exc.strerror}"
        else:
            if digest != fields.get("checksum"):
                fields["problem"] = f"the saved database {path} does not match its checksum"
        self.received.put(Received(time.monotonic() - self.t0, "snapshot", fields))
        return True
