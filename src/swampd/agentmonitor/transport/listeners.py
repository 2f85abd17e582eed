"""The listening sockets: TCP (host, port) and, when configured, a Unix-domain socket.

The Unix socket is the way for local clients that need no token: whoever may
open the socket file (its mode and group, set here) may call.  It is bound
under a umask that lets nobody in, then given its group and mode, so there
is no moment when it is open to more callers than configured.  A stale
socket file (no daemon behind it) is replaced; anything else at the path is
left alone and the start refused.
"""
from __future__ import annotations

import errno
import grp
import os
import socket
import stat
from pathlib import Path

BACKLOG = 1024


def tcp_listener(host: str, port: int) -> socket.socket:
    """A non-blocking listening TCP socket; OSError (with the errno) when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class UnixListener:
    """A listening Unix-domain socket at ``path`` with the given mode and group."""

    def __init__(self, path: str, mode: int, group: str) -> None:
        self.path = Path(path)
        gid = -1
        if group:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise OSError(errno.EINVAL, f"unix_socket_group {group!r} is not a group", path) from None
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        _clear_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        try:
            self._inode = os.lstat(self.path).st_ino
            os.chown(self.path, -1, gid)
            os.chmod(self.path, mode)
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            self.path.unlink(missing_ok=True)
            raise
        self.socket = sock

    def close(self) -> None:
        """Close the socket and remove its file, unless something else has replaced it."""
        self.socket.close()
        try:
            if os.lstat(self.path).st_ino == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass


def _clear_stale(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise OSError(errno.EEXIST, "exists and is not a socket; not replacing it", str(path))
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody listens: a socket left by a daemon that died
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "another process is listening on it", str(path))
