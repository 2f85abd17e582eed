"""Small file operations for the paths a launch takes, without pathlib's and io's overhead.

A local launch makes a dozen files and directories (its sandbox, its events,
its logs) in the host agent, whose CPU per launch is what a burst of
launches waits on.  ``Path.mkdir(exist_ok=True)`` parses paths and stats
after a refused ``mkdir``, ``Path.touch`` tries ``utime`` before it creates,
and a text-mode ``open`` builds a buffered wrapper (with an ``isatty`` and
an ``lseek``) for one write.  These do the same with a system call or two:
the same modes, the same results.  Paths may be ``str`` or ``Path``.
"""
from __future__ import annotations

import os
from pathlib import Path

_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


def make_dir(path: str | Path, mode: int = 0o777, parents: bool = True) -> None:
    """``Path(path).mkdir(mode, parents, exist_ok=True)``: missing parents get the default mode."""
    try:
        os.mkdir(path, mode)
    except FileNotFoundError:
        if not parents:
            raise
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        make_dir(path, mode, parents=False)
    except OSError:
        if not os.path.isdir(path):
            raise


def touch(path: str | Path) -> None:
    """``Path(path).touch()``: created (0666 less the umask) if missing, else its times set to now.
    Unlike ``Path.touch``, a dangling symlink at ``path`` is an error, never followed to create its target."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        os.utime(path)
        return
    os.close(fd)


def start_text(path: str | Path, text: str) -> None:
    """A new file holding ``text`` (0666 less the umask), made with one ``open``; a file that exists
    already gets ``text`` appended.  Unlike ``touch`` and then ``append_text``, one creation and one
    ``write``; a symlink at ``path`` is an error (OSError), never followed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def append_text(path: str | Path, text: str) -> None:
    """``open(path, "a", encoding="utf-8").write(text)``, with one ``write`` (so a reader following the
    file sees whole lines)."""
    fd = os.open(path, _APPEND, 0o666)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def open_append(path: str | Path) -> int:
    """A descriptor appending to ``path`` (created 0666 less the umask), as ``open(path, "ab")`` opens
    it; the caller closes it."""
    return os.open(path, _APPEND, 0o666)


def replace_text(path: str | Path, text: str, mode: int = 0o666) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file beside it, created with ``mode`` less
    the umask, renamed over it), as ``Path.write_text`` on the temporary and ``os.replace`` did."""
    tmp = f"{os.fspath(path)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
