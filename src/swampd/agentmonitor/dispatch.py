"""Registered XML-RPC methods, who may call them, and the one place errors become faults.

Every ``SwampdError`` becomes a fault with its stable code; anything else is
logged with its traceback (it is our bug, not the caller's) and answered
with fault 5.  Authorization is decided here per method, so that it holds
inside ``system.multicall`` too: without the bearer token (or a connection
on the Unix socket) only the methods in ``OPEN_METHODS`` may be called.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import xmlrpc.client
from typing import Any, Callable

from swampd import metrics
from swampd.agentmonitor.changes import Deferred
from swampd.errors import Fault, SwampdError

log = logging.getLogger("swampd.agentmonitor.server")

#: Methods that carry their own per-launch credential and need no bearer token.
SELF_AUTHENTICATED = frozenset({"agentMonitor.viewerStatus", "agentMonitor.viewerSnapshot",
                                "agentMonitor.runStatus", "agentMonitor.runResults"})
#: Methods anyone who can connect may call: the reports (own credential) and
#: introspection, which reveals nothing about anybody's viewers.  Calls inside
#: system.multicall are checked one by one.
OPEN_METHODS = SELF_AUTHENTICATED | {"system.listMethods", "system.methodHelp", "system.multicall"}


class Dispatcher:
    """Registered methods plus ``system.*``; translates errors to faults."""

    def __init__(self) -> None:
        self._methods: dict[str, Callable[..., Any]] = {}
        #: Methods only this process calls (``call_in_process``); no client can reach them.
        self._in_process: dict[str, Callable[..., Any]] = {}
        self._local = threading.local()
        self.register("system.listMethods", self.list_methods)
        self.register("system.methodHelp", self.method_help)
        self.register("system.multicall", self.multicall)

    def register(self, name: str, fn: Callable[..., Any]) -> None:
        self._methods[name] = fn
        metrics.know_methods(self._methods)

    def register_in_process(self, name: str, fn: Callable[..., Any]) -> None:
        """A method for the daemon's own parts (the host agent's reports of one instant, together):
        its errors become faults as any call's do, and it is counted under ``name``."""
        self._in_process[name] = fn

    def call_in_process(self, name: str, params: tuple[Any, ...]) -> Any:
        """Call an in-process method exactly as ``call`` calls a published one."""
        return self.call(name, params, self._in_process)

    def register_namespace(self, prefix: str, obj: object) -> None:
        for name in dir(obj):
            if not name.startswith("_") and name[0].islower() and callable(getattr(obj, name)):
                self.register(f"{prefix}.{name}", getattr(obj, name))

    def list_methods(self) -> list[str]:
        """system.listMethods() -> array of method names."""
        return sorted(self._methods)

    def method_help(self, name: Any) -> str:
        """system.methodHelp(name) -> the method's documentation."""
        if not isinstance(name, str) or name not in self._methods:
            raise SwampdError(Fault.UNKNOWN, f"no method {name!r}")
        return (self._methods[name].__doc__ or "").strip()

    def multicall(self, calls: Any) -> list[Any]:
        """system.multicall(array of {methodName, params}) -> array of [result] or fault structs."""
        if not isinstance(calls, list):
            raise SwampdError(Fault.BAD_ARGUMENT, "system.multicall takes an array of calls")
        out: list[Any] = []
        for call in calls:
            if not isinstance(call, dict) or not isinstance(call.get("methodName"), str):
                out.append(_fault_struct(Fault.BAD_ARGUMENT, "each call needs a methodName string"))
                continue
            name, params = call["methodName"], call.get("params", [])
            if name == "system.multicall":
                out.append(_fault_struct(Fault.BAD_ARGUMENT, "system.multicall cannot be nested"))
                continue
            if not isinstance(params, list):
                out.append(_fault_struct(Fault.BAD_ARGUMENT, "params must be an array"))
                continue
            try:
                result = self.call(name, tuple(params))
            except xmlrpc.client.Fault as fault:
                out.append(_fault_struct(fault.faultCode, fault.faultString))
                continue
            if isinstance(result, Deferred):  # a long-poll answers on its own, never inside a batch
                out.append(_fault_struct(Fault.BAD_ARGUMENT, f"{name} cannot be called inside system.multicall"))
                continue
            out.append([result])
        return out

    def authorize(self, authorized: bool) -> None:
        """Record, for this thread's request, whether it carried the bearer token."""
        self._local.authorized = authorized

    def call(self, name: str, params: tuple[Any, ...], methods: dict[str, Callable[..., Any]] | None = None) -> Any:
        """Call ``name``; any failure comes back as ``xmlrpc.client.Fault`` with a contract code."""
        elapsed = metrics.timer()
        try:
            result = self._call(name, params, self._methods if methods is None else methods)
        except xmlrpc.client.Fault as fault:
            metrics.rpc_call(name, int(fault.faultCode), elapsed())
            raise
        metrics.rpc_call(name, 0, elapsed())
        return result

    def _call(self, name: str, params: tuple[Any, ...], methods: dict[str, Callable[..., Any]]) -> Any:
        fn = methods.get(name)
        if fn is None:
            raise xmlrpc.client.Fault(int(Fault.UNKNOWN), f"no method {name!r}")
        if not getattr(self._local, "authorized", True) and name not in OPEN_METHODS:
            raise xmlrpc.client.Fault(int(Fault.NOT_AUTHORIZED),
                                      "missing or wrong bearer token (send Authorization: Bearer <token>, "
                                      "or call through the daemon's Unix socket)")
        try:
            return fn(*params)
        except SwampdError as exc:
            raise xmlrpc.client.Fault(int(exc.code), exc.message) from None
        except TypeError as exc:
            if _is_arity_error(exc):
                raise xmlrpc.client.Fault(int(Fault.BAD_ARGUMENT), f"{name}: wrong number of arguments") from None
            log.exception("%s failed", name)
            raise xmlrpc.client.Fault(int(Fault.UNAVAILABLE), f"{name}: internal error; see the daemon log") from None
        except sqlite3.OperationalError as exc:
            log.error("%s: registry unavailable: %s", name, exc)
            raise xmlrpc.client.Fault(int(Fault.UNAVAILABLE), f"registry temporarily unavailable: {exc}") from None
        except Exception:
            log.exception("%s failed", name)
            raise xmlrpc.client.Fault(int(Fault.UNAVAILABLE), f"{name}: internal error; see the daemon log") from None


def _is_arity_error(exc: TypeError) -> bool:
    text = str(exc)
    return "positional argument" in text or "required argument" in text


def _fault_struct(code: int, message: str) -> dict[str, Any]:
    return {"faultCode": int(code), "faultString": message}
