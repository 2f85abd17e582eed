"""The state dir: private to the daemon's user, and no file in it opened through a symlink.

Why (issue 9 finding 4): the daemon often runs as root, and its state dir
holds the registry, the single-instance lock and the pid file.  A state dir
that others may write to lets them plant a symlink where one of those files
goes, and the daemon then truncates, chmods or writes the link's target — a
file of root's.  So the dir is refused unless it belongs to the daemon's
user and neither group nor others may write to it, and the files are opened
with ``O_NOFOLLOW`` and checked with ``fstat`` (a regular file of ours) on
the open descriptor, never by path afterwards.
"""
from __future__ import annotations

import errno
import fcntl
import os
import pwd
import stat
from pathlib import Path

#: The files the daemon itself keeps directly in the state dir.
DAEMON_FILES = ("swampd.lock", "swampd.pid", "registry.sqlite3", "registry.sqlite3-wal",
                "registry.sqlite3-shm", "registry.sqlite3-journal")


class StateDirError(OSError):
    """The state dir, or a file in it, is not safe to use; the message says why and what to do.

    An OSError, so that code that guards an open against OSError also stops here.
    """


class LockHeld(Exception):
    """Another process holds the lock."""


def check_state_dir(path: Path) -> None:
    """Create the state dir (0700) if missing; refuse one that is not private to us.

    The dir itself may be a symlink an operator made (``/var/lib/swampd`` ->
    ``/data/swampd``); what it points to is checked.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.stat(path)
    except OSError as exc:
        raise StateDirError(f"state dir {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"state dir {path} is not a directory")
    me = os.geteuid()
    if info.st_uid != me:
        raise StateDirError(f"state dir {path} is owned by {_user(info.st_uid)}, not by the daemon's user "
                            f"{_user(me)}; chown it or choose another state_dir")
    if info.st_mode & 0o022:
        raise StateDirError(f"state dir {path} is writable by group or others "
                            f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 700 {path}")
    for name in DAEMON_FILES:
        if os.path.islink(path / name):
            raise StateDirError(f"state dir {path}: {name} is a symbolic link; refusing to follow it "
                                "(remove it and check who could create it)")


def open_private(path: Path, flags: int, mode: int = 0o600) -> int:
    """Open a file of the state dir without following a symlink; it must be a regular file of ours.

    Returns the descriptor; raises StateDirError (a symlink, a fifo, someone
    else's file) or OSError.
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateDirError(f"{path} is a symbolic link; refusing to follow it") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StateDirError(f"{path} is not a regular file")
        if info.st_uid != os.geteuid():
            raise StateDirError(f"{path} is owned by {_user(info.st_uid)}, not by the daemon's user")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def secure_registry(path: Path) -> None:
    """Create or open the registry file: private (0600), ours, no symlink — itself or its SQLite sidecars."""
    for suffix in ("-wal", "-shm", "-journal"):
        if os.path.islink(f"{path}{suffix}"):
            raise StateDirError(f"{path}{suffix} is a symbolic link; refusing to follow it")
    fd = open_private(path, os.O_RDWR | os.O_CREAT)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Replace the contents of a small private file (the pid file) without following a symlink."""
    fd = open_private(path, os.O_WRONLY | os.O_CREAT)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


class PrivateLock:
    """An exclusive ``flock`` on a private file; the kernel drops it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now or raise LockHeld; StateDirError if the lock file is not ours."""
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(str(self.path)) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
