"""Who listens on a local port: the owner the kernel records for the listening socket.

A viewer's port is free when the agent picks it and the command binds it a
moment later.  Any local user may bind it in between and answer the probe,
and the viewer would be reported up at an address a stranger serves (the
command then fails with "Address already in use" and is started again on
another port, but the report has gone).  So a probe's answer counts only
when the socket listening on the port belongs to the job's own user.

The kernel says so without a dump: one NETLINK_SOCK_DIAG request for the
socket bound to ``127.0.0.1:port`` (an exact lookup, which finds the
listener when no remote end is given) returns its uid.  Reading
``/proc/net/tcp`` instead formats every socket of the host at each look.
"""
from __future__ import annotations

import errno
import logging
import socket
import struct

log = logging.getLogger(__name__)

#: From linux/sock_diag.h, linux/netlink.h and linux/inet_diag.h.
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 0x2
TCP_LISTEN = 10
INET_DIAG_NOCOOKIE = 0xFFFFFFFF

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
#: inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid: sport, dport
#: (network order), src[16], dst[16], interface, cookie[2].
_REQUEST = struct.Struct("=BBBBIHH16s16sIII")
#: inet_diag_msg after its 4 leading bytes and its 48-byte sockid: expires, rqueue, wqueue, uid, inode.
_MESSAGE_TAIL = struct.Struct("=IIIII")
_MESSAGE_TAIL_AT = _HEADER.size + 4 + 48


class OwnerUnknown(OSError):
    """The kernel could not be asked (no sock_diag here): nobody's ownership can be checked."""


def listener_uid(port: int, host: str = "127.0.0.1") -> int | None:
    """The uid of the TCP socket listening on ``host:port`` (IPv4); None when none listens there.

    OwnerUnknown when the kernel cannot be asked at all.
    """
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as link:
            link.settimeout(1.0)
            link.send(_request(port, host, 1))
            reply = link.recv(8192)
    except OSError as exc:
        raise OwnerUnknown(exc.errno or errno.EIO, f"cannot ask the kernel who listens: {exc}") from None
    return _owner(reply)


class ListenerLookup:
    """``listener_uid`` for a caller that asks every few milliseconds (the prober, before each probe):
    one netlink socket kept open, so a look is two system calls (the kernel answers within the send).
    For one thread at a time."""

    def __init__(self) -> None:
        self._link: socket.socket | None = None
        self._seq = 0

    def uid(self, port: int, host: str = "127.0.0.1") -> int | None:
        """As ``listener_uid``; OwnerUnknown when the kernel cannot be asked (the socket is made anew
        at the next look)."""
        try:
            if self._link is None:
                self._link = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
            self._seq = self._seq % 0xFFFFFFFF + 1
            self._link.send(_request(port, host, self._seq))
            while True:  # the answer is queued by the time send returns; never wait for one
                reply = self._link.recv(8192, socket.MSG_DONTWAIT)
                if len(reply) >= _HEADER.size and _HEADER.unpack_from(reply)[3] == self._seq:
                    break  # an older look's late answer is skipped
        except OSError as exc:
            self.close()
            raise OwnerUnknown(exc.errno or errno.EIO, f"cannot ask the kernel who listens: {exc}") from None
        return _owner(reply)

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None


def _request(port: int, host: str, seq: int) -> bytes:
    """The exact-lookup request for the listener on ``host:port``."""
    address = socket.inet_aton(host) + bytes(12)
    body = _REQUEST.pack(socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN,
                         socket.htons(port), 0, address, bytes(16), 0,
                         INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
    return _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq, 0) + body


def _owner(reply: bytes) -> int | None:
    """The listener's uid from a lookup's answer, None for "no listener"; OwnerUnknown for a refusal."""
    if len(reply) < _HEADER.size:
        raise OwnerUnknown(errno.EIO, "a short answer from sock_diag")
    _, kind, _, _, _ = _HEADER.unpack_from(reply)
    if kind == NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", reply, _HEADER.size)
        if -code == errno.ENOENT:
            return None
        raise OwnerUnknown(-code, f"sock_diag refused the lookup: {errno.errorcode.get(-code, -code)}")
    if kind != SOCK_DIAG_BY_FAMILY or len(reply) < _MESSAGE_TAIL_AT + _MESSAGE_TAIL.size:
        raise OwnerUnknown(errno.EIO, f"an unexpected answer from sock_diag (type {kind})")
    state = reply[_HEADER.size + 1]
    if state != TCP_LISTEN:
        return None
    _, _, _, uid, _ = _MESSAGE_TAIL.unpack_from(reply, _MESSAGE_TAIL_AT)
    return int(uid)


_warned_unknown = False


def listens_as(port: int, uid: int, host: str = "127.0.0.1") -> bool:
    """Whether the socket listening on ``host:port`` is ``uid``'s.

    Where the kernel cannot be asked (no sock_diag), every listener passes,
    as before this check: said once in the log (``unknown_owner``), since a
    viewer that never comes up would be worse than the race this closes.
    """
    try:
        return listener_uid(port, host) == uid
    except OwnerUnknown as exc:
        unknown_owner(exc)
        return True


def unknown_owner(exc: OwnerUnknown) -> None:
    """Say once in this process's log that listeners cannot be told apart here."""
    global _warned_unknown
    if not _warned_unknown:
        _warned_unknown = True
        log.warning("%s: a local user who binds a viewer's port before the viewer does could answer "
                    "its probe", exc)
