"""Holding an adopted command's liveness lock, as the agent that started it did.

A job is alive while its ``job.lock`` is locked.  The agent that starts a
command hands it a descriptor of the locked file and keeps one of its own on
the same open file description, so the lock outlives the command until the
job's outputs are collected.  An agent that adopts a command after a restart
has no such descriptor: a new ``open`` of the file is a new description,
which cannot share the command's ``flock``.  Without one, the lock went free
the moment the command ended, while the agent was still collecting its
outputs.  A resync then saw an ended job with nothing collected (an
assessment ended "without results").

``pidfd_getfd(2)`` (Linux 5.6) copies the command's own descriptor into
ours: the same description, so the same lock.  It needs the right to ptrace
the command (root, or its user under Yama's default).  Where that is refused
or the kernel lacks the call, ``take_when_free`` narrows the gap to the time
between the command's end and the exit watcher's wake-up.
"""
from __future__ import annotations

import errno
import fcntl
import functools
import logging
import os
import time
from typing import Any

log = logging.getLogger(__name__)

#: The system call's number: the same on every architecture since Linux 5.6.
SYS_PIDFD_GETFD = 438


@functools.cache
def _syscall() -> tuple[Any, Any]:
    """The C library's ``syscall`` and ctypes' ``get_errno``: loaded at the first adoption, not in
    every agent."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True).syscall, ctypes.get_errno


def share_lock(pid: int, lock_fd: int) -> int | None:
    """A descriptor on the open file description through which ``pid`` holds the lock of the file
    ``lock_fd`` names (the caller's to close), or None when there is none to be had."""
    try:
        wanted = os.fstat(lock_fd)
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for name in names:
        try:
            st = os.stat(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != (wanted.st_dev, wanted.st_ino):
            continue
        shared = _pidfd_getfd(pid, int(name))
        if shared is None:
            return None
        try:  # the description holds the lock already: this is a no-op; if another holds it, not ours
            fcntl.flock(shared, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(shared)
            continue
        return shared
    return None


def _pidfd_getfd(pid: int, target_fd: int) -> int | None:
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        syscall, get_errno = _syscall()
        fd = syscall(SYS_PIDFD_GETFD, pidfd, target_fd, 0)
        if fd < 0:
            err = get_errno()
            log.debug("pidfd_getfd of pid %d's descriptor %d: %s", pid, target_fd, os.strerror(err))
            return None
        return int(fd)
    finally:
        os.close(pidfd)


def take_when_free(lock_fd: int, patience: float) -> bool:
    """Lock ``lock_fd`` once its job's processes have let go of the lock (they are being killed);
    False when they still hold it after ``patience`` seconds."""
    give_up = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN) or time.monotonic() >= give_up:
                return False
        time.sleep(0.01)
