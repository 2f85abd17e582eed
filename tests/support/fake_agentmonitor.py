"""A stand-in AgentMonitor for the programs the database starts: it records ``launchRun`` calls.

``agentMonitor.launchRun`` is the daemon's (its real tests run against a
real daemon); this one answers what a test sets (a struct, or an XML-RPC
fault), on TCP or on a Unix socket, so that ``execute_execution_record``
can be tested on its own and through the database's ``sys_exec``.
"""
from __future__ import annotations

import os
import socket
import socketserver
import threading
import xmlrpc.client
from pathlib import Path
from typing import Any, Callable
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer


class _UnixServer(SimpleXMLRPCServer):
    address_family = socket.AF_UNIX


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/", "/RPC2")


class _UnixHandler(_Handler):
    disable_nagle_algorithm = False  # TCP_NODELAY: not for a Unix socket

    def address_string(self) -> str:  # a Unix socket's peer has no address
        return "local"


class FakeAgentMonitor:
    """``launchRun`` recorded in ``calls``; ``fault`` (code, text) makes it answer a fault instead."""

    def __init__(self, unix_socket: Path | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fault: tuple[int, str] | None = None
        self.delay = 0.0
        #: Called with each launchRun struct before the answer (what the daemon does meanwhile).
        self.on_launch: Callable[[dict[str, Any]], None] | None = None
        if unix_socket is not None:
            self.server: SimpleXMLRPCServer = _UnixServer(str(unix_socket), requestHandler=_UnixHandler,
                                                          logRequests=False, allow_none=False)
            os.chmod(unix_socket, 0o666)
            self.url = f"unix:{unix_socket}"
        else:
            self.server = socketserver_tcp()
            self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.server.register_function(self._launch_run, "agentMonitor.launchRun")
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _launch_run(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(body)
        if self.on_launch is not None:
            self.on_launch(body)
        if self.delay:
            threading.Event().wait(self.delay)
        if self.fault is not None:
            raise xmlrpc.client.Fault(*self.fault)
        return {"execrunid": body.get("execrunid", ""), "state_name": "QUEUED", "launched": len(self.calls) == 1}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def socketserver_tcp() -> SimpleXMLRPCServer:
    """A threading XML-RPC server on a free loopback port."""

    class Server(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
        daemon_threads = True

    return Server(("127.0.0.1", 0), requestHandler=_Handler, logRequests=False, allow_none=False)
