"""An AgentMonitor stand-in for execute-node tests: records what vruntask reports.

It answers ``agentMonitor.viewerStatus`` and ``agentMonitor.viewerSnapshot``
(and any method it is told to), may start late (to show that reports are
retried, not dropped), and can refuse a launch as stale (fault 3) to show
what a fenced execute node does.
"""
from __future__ import annotations

import threading
import xmlrpc.client
from typing import Any
from xmlrpc.server import SimpleXMLRPCServer


class ReportSink:
    def __init__(self, port: int, methods: tuple[str, ...] = ("viewerStatus", "viewerSnapshot")) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.methods = methods
        self.calls: list[tuple[str, dict[str, Any]]] = []
        #: Once set, every call is refused as stale (fault 3).
        self.fenced = threading.Event()
        self.server: SimpleXMLRPCServer | None = None
        self._lock = threading.Lock()

    def start(self) -> ReportSink:
        self.server = SimpleXMLRPCServer(("127.0.0.1", self.port), logRequests=False, allow_none=True)
        for method in self.methods:
            self.server.register_function(self._recorder(method), f"agentMonitor.{method}")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def of(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for name, body in self.calls if name == method]

    def _recorder(self, method: str) -> Any:
        def record(body: dict[str, Any]) -> bool:
            if self.fenced.is_set():
                raise xmlrpc.client.Fault(3, "stale report: a newer launch exists")
            with self._lock:
                self.calls.append((method, body))
            return True
        return record
