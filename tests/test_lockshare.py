"""Sharing an adopted command's lock (``vruntask.lockshare``), against real processes and locks."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from swampd.vruntask.lockshare import _pidfd_getfd, share_lock, take_when_free

#: Keeps the descriptors it inherited (a locked one among them) until its stdin closes.
HOLDER = "import sys; sys.stdin.read()"


def locked_by_someone(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def start_holder(path: Path) -> subprocess.Popen[bytes]:
    """A process holding ``path``'s lock on a description only it has (ours is closed)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        return subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, pass_fds=(fd,))
    finally:
        os.close(fd)


def test_the_shared_descriptor_keeps_the_lock_after_the_holder_ends(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    holder = start_holder(path)
    mine = os.open(path, os.O_RDONLY)  # a description of our own, as the daemon hands the agent
    try:
        shared = share_lock(holder.pid, mine)
        assert shared is not None
        holder.communicate(b"")  # the command ends
        assert locked_by_someone(path)  # still held: through the description we share
        os.close(shared)
        assert not locked_by_someone(path)
    finally:
        os.close(mine)


def test_a_process_without_the_file_open_has_nothing_to_share(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    path.touch()
    other = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE)
    mine = os.open(path, os.O_RDONLY)
    try:
        assert share_lock(other.pid, mine) is None
        assert share_lock(2 ** 22 + 12345, mine) is None  # no such process
    finally:
        other.communicate(b"")
        os.close(mine)


def test_take_when_free_waits_for_the_holder_and_gives_up_after_its_patience(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    holder = start_holder(path)
    mine = os.open(path, os.O_RDONLY)
    try:
        assert not take_when_free(mine, 0.05)
        holder.communicate(b"")
        assert take_when_free(mine, 5.0)
        assert locked_by_someone(path)
    finally:
        os.close(mine)


def test_a_descriptor_the_process_does_not_have_is_refused_not_raised() -> None:
    other = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE)
    try:
        assert _pidfd_getfd(other.pid, 4095) is None  # EBADF from the kernel
    finally:
        other.communicate(b"")
