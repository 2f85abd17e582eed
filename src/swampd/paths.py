"""Confined paths: files that callers name, read only inside the roots the configuration names.

Why (issue 9 findings 1-3): the daemon runs as root and reads the files a
caller names — a viewer database to verify and restore, result files and a
source archive to upload into the caller's Code Dx project.  Any local user
could name ``/etc/shadow`` (and read back part of its digest, or have it
uploaded), ``/dev/zero`` or a FIFO (and block a worker for good), or learn
whether any path exists.  So a caller's path must lie under a configured
root, is reached one directory at a time with ``O_NOFOLLOW`` (a symlink,
planted before or swapped in after the check, cannot lead out), is opened
``O_NONBLOCK`` (a FIFO cannot block the open), must be a regular file on the
open descriptor (``fstat``), and is read no further than a size cap.

``confine`` is the check made when the call arrives (fault 1 there, never a
status later); ``open_confined`` is how the file is opened when it is read,
repeating every check on what is actually opened.  A path outside the roots
is refused before anything on disk is looked at, with the same words
whether it exists or not.  The roots themselves are the operator's: a root
may be a symlink (``/swamp`` -> ``/data/swamp``); below it, none is followed.
"""
from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import Sequence


class PathRefused(Exception):
    """A caller's path may not be read; the message says why (and never what an outside file holds)."""


def confine(path: str, roots: Sequence[str], max_bytes: int | None = None, what: str = "path") -> Path:
    """Check that ``path`` names a regular file under one of ``roots``, without symlinks below the root.

    Raises PathRefused.  Nothing is read; the file is opened (non-blocking)
    and closed, so that the answer is about the very file a later
    ``open_confined`` will find, unless it is replaced meanwhile — which that
    open checks again.
    """
    fd = _open(path, roots, max_bytes, what)
    os.close(fd)
    return Path(path)


def open_confined(path: str, roots: Sequence[str], max_bytes: int, what: str = "path") -> io.BufferedReader:
    """Open a caller's file for reading: confined, a regular file, at most ``max_bytes`` (also while read).

    Raises PathRefused.  The returned file is seekable (tar and zip readers
    need that) and raises OSError(EFBIG) rather than read past ``max_bytes``.
    """
    return io.BufferedReader(_CappedFile(_open(path, roots, max_bytes, what), max_bytes), 1 << 20)


def _open(path: str, roots: Sequence[str], max_bytes: int | None, what: str) -> int:
    root, rest = _under_root(path, roots, what)
    try:
        dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise PathRefused(f"{what} {path!r}: the directory {root} it must be in cannot be opened") from None
    try:
        for part in rest[:-1]:
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
            except OSError as exc:
                raise PathRefused(f"{what} {path!r}: {_why(exc, directory=True)}") from None
            os.close(dirfd)
            dirfd = next_fd
        try:
            fd = os.open(rest[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                         dir_fd=dirfd)
        except OSError as exc:
            raise PathRefused(f"{what} {path!r}: {_why(exc, directory=False)}") from None
    finally:
        os.close(dirfd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PathRefused(f"{what} {path!r} is not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise PathRefused(f"{what} {path!r} is {info.st_size} bytes; at most {max_bytes} are read")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _under_root(path: str, roots: Sequence[str], what: str) -> tuple[str, list[str]]:
    """The root ``path`` lies under and the components below it; judged on the text alone."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise PathRefused(f"{what} must be an absolute path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathRefused(f"{what} {path!r} must not contain '..'")
    for root in roots:
        for form in dict.fromkeys((os.path.normpath(root), os.path.realpath(root))):
            root_parts = [p for p in form.split("/") if p]
            if len(parts) > len(root_parts) and parts[:len(root_parts)] == root_parts:
                return form, parts[len(root_parts):]
    allowed = ", ".join(roots) or "(no directory is configured)"
    raise PathRefused(f"{what} {path!r} is not inside the directories allowed for it: {allowed}")


def _why(exc: OSError, directory: bool) -> str:
    if exc.errno == errno.ENOENT:
        return "does not exist"
    if exc.errno == errno.ELOOP or (directory and exc.errno == errno.ENOTDIR):
        return "is or passes through a symbolic link or a non-directory"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return os.strerror(exc.errno or 0) or "cannot be opened"


class _CappedFile(io.RawIOBase):
    """A read-only file descriptor that refuses to read past ``max_bytes`` (a file grown since its check)."""

    def __init__(self, fd: int, max_bytes: int) -> None:
        super().__init__()
        self._fd = fd
        self._max = max_bytes

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        position = os.lseek(self._fd, 0, os.SEEK_CUR)
        view = memoryview(buffer).cast("B")
        data = os.read(self._fd, min(len(view), self._max + 1 - position) if position <= self._max else 1)
        if position + len(data) > self._max:
            raise OSError(errno.EFBIG, f"file grew past {self._max} bytes while being read")
        view[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
