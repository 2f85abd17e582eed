"""Unpacking tar and zip archives so that nothing lands outside the target directory.

Results and saved viewer databases arrive as archives written elsewhere, by
tools and guests we do not control.  ``tarfile``'s ``filter=`` argument would
do part of this, but only from Python 3.11.4 on (Debian 12 ships 3.11.2), and
``zipfile`` has nothing comparable for links or sizes.  So every member goes
through the same checks here, and is written by our own code:

* names: no absolute paths, no ``..`` part, no NUL; every write is re-checked
  against the real path of its directory at the moment it happens;
* links: a symbolic or hard link is allowed only when what it points at
  resolves inside the directory; files are opened with ``O_NOFOLLOW``;
* kinds: regular files, directories and those links; devices, FIFOs and
  anything else are refused;
* size: at most ``max_members`` members and ``max_bytes`` bytes written, counted
  as they are written (a zip's declared sizes are not trusted);
* modes: files 0644 (0755 when the archive marks them executable), directories
  0755; never setuid, setgid or sticky; owners are not restored.

A refusal raises ResultsError naming the member; what was written up to then
stays, so callers unpack into a fresh directory and remove it on failure.
"""
from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from swampd.results.errors import ResultsError

COPY_CHUNK = 1 << 20
MAX_LINK_TARGET = 4096


@dataclass(frozen=True)
class Limits:
    """Caps on one unpacking; None means no cap."""

    max_bytes: int | None = 4 << 30
    max_members: int | None = 200_000


UNLIMITED = Limits(None, None)


class _Target:
    """The directory being filled, with the running totals of one unpacking."""

    def __init__(self, dest: Path, limits: Limits, label: str) -> None:
        Path(dest).mkdir(parents=True, exist_ok=True)
        self.root = os.path.realpath(dest)
        self.limits = limits
        self.label = label
        self.members = 0
        self.written = 0
        self.names: list[str] = []

    # -- checks ----------------------------------------------------------------
    def refuse(self, name: str, why: str) -> ResultsError:
        return ResultsError(f"{self.label}: member {name[:80]!r} {why}")

    def parts(self, name: str) -> list[str]:
        """The path parts of a member name, or a refusal if it could leave the directory."""
        if "\x00" in name:
            raise self.refuse(name, "has a NUL in its name")
        if name.startswith("/"):
            raise self.refuse(name, "has an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(name, "has a '..' in its path")
        return parts

    def inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def count_member(self, name: str) -> None:
        self.members += 1
        cap = self.limits.max_members
        if cap is not None and self.members > cap:
            raise ResultsError(f"{self.label}: more than {cap} members (the configured cap)")
        self.names.append(name)

    def count_bytes(self, name: str, n: int) -> None:
        self.written += n
        cap = self.limits.max_bytes
        if cap is not None and self.written > cap:
            raise ResultsError(f"{self.label}: expands past {cap} bytes (the configured cap) at {name[:80]!r}")

    # -- writing ---------------------------------------------------------------
    def directory(self, name: str, parts: list[str]) -> str:
        """Create the directories of ``parts`` one by one; the real path of the last."""
        current = self.root
        for part in parts:
            path = os.path.join(current, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                os.chmod(path, 0o755)
                current = path
                continue
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                if not self.inside(real) or not os.path.isdir(real):
                    raise self.refuse(name, "would be written through a link that leaves the directory")
                current = real
            elif stat.S_ISDIR(st.st_mode):
                current = path
            else:
                raise self.refuse(name, f"needs {part!r} to be a directory, but it is a file")
        if not self.inside(os.path.realpath(current)):
            raise self.refuse(name, "would be written outside the directory")
        return current

    def _clear(self, path: str, name: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise self.refuse(name, "would replace a directory")
        os.unlink(path)

    def file(self, name: str, source: BinaryIO, executable: bool, declared: int | None = None) -> None:
        parts = self.parts(name)
        if not parts:
            raise self.refuse(name, "has no file name")
        if declared is not None:
            cap = self.limits.max_bytes
            if cap is not None and self.written + declared > cap:
                raise ResultsError(f"{self.label}: expands past {cap} bytes (the configured cap) "
                                   f"at {name[:80]!r}")
        parent = self.directory(name, parts[:-1])
        path = os.path.join(parent, parts[-1])
        self._clear(path, name)
        mode = 0o755 if executable else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            while True:
                block = source.read(COPY_CHUNK)
                if not block:
                    break
                self.count_bytes(name, len(block))
                out.write(block)

    def mkdir(self, name: str) -> None:
        self.directory(name, self.parts(name))

    def symlink(self, name: str, target: str) -> None:
        parts = self.parts(name)
        if not parts:
            raise self.refuse(name, "has no file name")
        if not target or "\x00" in target or target.startswith("/"):
            raise self.refuse(name, f"is a link to {target[:80]!r}, which leaves the directory")
        parent = self.directory(name, parts[:-1])
        resolved = os.path.realpath(os.path.join(parent, target))
        if not self.inside(resolved):
            raise self.refuse(name, f"is a link to {target[:80]!r}, which leaves the directory")
        path = os.path.join(parent, parts[-1])
        self._clear(path, name)
        os.symlink(target, path)

    def hardlink(self, name: str, target: str) -> None:
        parts = self.parts(name)
        target_parts = self.parts(target)
        if not parts or not target_parts:
            raise self.refuse(name, "has no file name")
        source = os.path.realpath(os.path.join(self.root, *target_parts))
        if not self.inside(source) or not os.path.isfile(source):
            raise self.refuse(name, f"is a hard link to {target[:80]!r}, which is not a file in the directory")
        parent = self.directory(name, parts[:-1])
        path = os.path.join(parent, parts[-1])
        self._clear(path, name)
        os.link(source, path)


def extract_tar(archive: Path, dest: Path, limits: Limits = Limits()) -> list[str]:
    """Unpack a (possibly compressed) tar into ``dest``; the member names, in order."""
    target = _Target(dest, limits, f"archive {Path(archive).name}")
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                name = member.name
                target.count_member(name)
                if member.isdir():
                    target.mkdir(name)
                elif member.isreg():
                    source = tar.extractfile(member)
                    assert source is not None
                    target.file(name, source, bool(member.mode & 0o111), declared=member.size)
                elif member.issym():
                    target.symlink(name, member.linkname)
                elif member.islnk():
                    target.hardlink(name, member.linkname)
                else:
                    raise target.refuse(name, "is a device, FIFO or other special file")
    except (tarfile.TarError, EOFError, ValueError, OSError) as exc:
        raise ResultsError(f"archive {Path(archive).name} cannot be unpacked: {exc}") from None
    return target.names


def extract_zip(archive: Path, dest: Path, limits: Limits = Limits()) -> list[str]:
    """Unpack a zip into ``dest``; the member names, in order."""
    target = _Target(dest, limits, f"archive {Path(archive).name}")
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = info.filename
                target.count_member(name)
                mode = info.external_attr >> 16
                kind = stat.S_IFMT(mode)
                if info.is_dir() or kind == stat.S_IFDIR:
                    target.mkdir(name)
                elif kind == stat.S_IFLNK:
                    with zf.open(info) as fh:
                        link = fh.read(MAX_LINK_TARGET + 1)
                    if len(link) > MAX_LINK_TARGET:
                        raise target.refuse(name, "is a link with an over-long target")
                    target.symlink(name, os.fsdecode(link))
                elif kind in (0, stat.S_IFREG):
                    with zf.open(info) as fh:
                        target.file(name, fh, bool(mode & 0o111))
                else:
                    raise target.refuse(name, "is a device, FIFO or other special file")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError, OSError) as exc:
        raise ResultsError(f"archive {Path(archive).name} cannot be unpacked: {exc}") from None
    return target.names
