"""The one error type of swampd's API and its stable fault codes.

Every API failure is raised as ``SwampdError(code, message)`` and turned into
an XML-RPC fault at exactly one place (the server's dispatch).  Callers match
on the codes; people read the messages.
"""
from __future__ import annotations

from enum import IntEnum


class Fault(IntEnum):
    """XML-RPC fault codes of the contract."""

    BAD_ARGUMENT = 1
    UNKNOWN = 2
    STALE = 3
    NOT_AUTHORIZED = 4
    UNAVAILABLE = 5


class SwampdError(Exception):
    """An error the API reports to its caller as a fault with a stable code."""

    def __init__(self, code: Fault, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"
