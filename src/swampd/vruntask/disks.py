"""The disks a viewer VM gets: input (the sandbox's ``in/``), output (empty), delta.

SWAMP built these with libguestfs (``virt-make-fs``, ``guestfish``), which
boots an appliance VM per disk.  We use the standard tools directly, with
argv lists: ``mkfs.ext4 -d`` fills a file system from a directory without
mounting anything, ``qemu-img`` converts it to qcow2 and creates the delta,
and ``debugfs`` reads files back out of an ext4 image, again without a
mount, so none of this needs loop devices or root.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

INPUT_DISK = "inputdisk.qcow2"
OUTPUT_DISK = "outputdisk.qcow2"
DELTA_DISK = "delta.qcow2"
#: Head room for the input disk: ext4 metadata, journal, and a little spare.
_INPUT_SLACK_BYTES = 16 * 1024 * 1024
_SAFE_DISK_PATH = re.compile(r"/[A-Za-z0-9._/-]*")


class DiskError(Exception):
    """A disk image could not be built or read; the message says which and why."""


def _run(argv: list[str], what: str) -> str:
    try:
        done = subprocess.run(argv, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise DiskError(f"{what}: {argv[0]} is not installed") from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise DiskError(f"{what}: {argv[0]} failed (status {exc.returncode}): "
                        f"{detail[-1] if detail else 'no output'}") from None
    return done.stdout


def tree_bytes(directory: Path) -> int:
    """Bytes used by the regular files under ``directory`` (rounded up to 4 KiB blocks)."""
    total = 0
    for path in Path(directory).rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += (path.stat().st_size + 4095) // 4096 * 4096
    return total


def _ext4_qcow2(dest: Path, size_bytes: int, label: str, source: Path | None) -> None:
    """Make an ext4 file system (filled from ``source`` if given) and store it as qcow2."""
    dest = Path(dest)
    fd, raw_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".raw", dir=dest.parent)
    os.close(fd)
    raw = Path(raw_name)
    try:
        os.truncate(raw, size_bytes)
        argv = ["mkfs.ext4", "-q", "-F", "-L", label, "-E", "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0"]
        if source is not None:
            argv += ["-d", str(source)]
        _run(argv + [str(raw)], f"building {dest.name}")
        tmp = dest.with_name(dest.name + ".tmp")
        _run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(tmp)],
             f"converting {dest.name}")
        os.replace(tmp, dest)
    finally:
        raw.unlink(missing_ok=True)


def build_input_disk(source: Path, dest: Path, min_bytes: int = 32 * 1024 * 1024) -> None:
    """``dest`` (qcow2, ext4) holding exactly the files of ``source`` with their modes."""
    size = max(min_bytes, int(tree_bytes(source) * 1.2) + _INPUT_SLACK_BYTES)
    _ext4_qcow2(dest, size, "swampin", Path(source))


def build_output_disk(dest: Path, size_bytes: int) -> None:
    """An empty ext4 file system the guest writes its results (the DB snapshot) to."""
    _ext4_qcow2(dest, size_bytes, "swampout", None)
    os.chmod(dest, 0o644)


def image_info(path: Path) -> dict[str, object]:
    """``qemu-img info`` as a dict (format, backing file, virtual size)."""
    out = _run(["qemu-img", "info", "--output=json", "-U", str(path)], f"reading {Path(path).name}")
    return dict(json.loads(out))


def create_delta(platform_image: Path, dest: Path) -> None:
    """A qcow2 overlay on the platform image: the guest writes here, never to the image."""
    image = Path(platform_image).resolve()
    if not image.is_file():
        raise DiskError(f"platform image {image} does not exist")
    fmt = str(image_info(image).get("format") or "")
    if not fmt:
        raise DiskError(f"cannot tell the format of platform image {image}")
    tmp = Path(dest).with_name(Path(dest).name + ".tmp")
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(image), str(tmp)],
         f"creating {Path(dest).name}")
    os.replace(tmp, dest)


def backing_file(path: Path) -> str:
    return str(image_info(path).get("backing-filename") or "")


class Ext4Reader:
    """Reads an ext4 file system inside a qcow2 image with ``debugfs`` (no mount, no root).

    Use as a context manager: the image is converted to a temporary raw file
    once, next to the image, and removed on exit.
    """

    def __init__(self, image: Path) -> None:
        self.image = Path(image)
        self._raw: Path | None = None

    def __enter__(self) -> "Ext4Reader":
        fd, name = tempfile.mkstemp(prefix=f".{self.image.name}.", suffix=".raw", dir=self.image.parent)
        os.close(fd)
        self._raw = Path(name)
        try:
            _run(["qemu-img", "convert", "-q", "-U", "-f", "qcow2", "-O", "raw", str(self.image), name],
                 f"reading {self.image.name}")
        except Exception:
            self._raw.unlink(missing_ok=True)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._raw is not None:
            self._raw.unlink(missing_ok=True)

    def _debugfs(self, request: str) -> str:
        assert self._raw is not None, "use Ext4Reader as a context manager"
        return _run(["debugfs", "-R", request, str(self._raw)], f"reading {self.image.name}")

    def listing(self, directory: str = "/") -> dict[str, int]:
        """Entry name -> mode (with file type bits) in ``directory``; '.', '..' left out."""
        return {name: mode for name, (mode, _) in self.entries(directory).items()}

    def entries(self, directory: str = "/") -> dict[str, tuple[int, int]]:
        """Entry name -> (mode with file type bits, size in bytes) in ``directory``; '.', '..' left out."""
        _check_disk_path(directory)
        entries: dict[str, tuple[int, int]] = {}
        for line in self._debugfs(f"ls -p {directory}").splitlines():
            # /inode/mode/uid/gid/name/size/
            parts = line.strip().split("/")
            if len(parts) == 8 and parts[5] not in (".", ".."):
                try:
                    entries[parts[5]] = (int(parts[2], 8), int(parts[6] or 0))
                except ValueError:
                    continue  # a line debugfs printed for a name we cannot read back: left out
        return entries

    def walk(self) -> list[tuple[str, int, int]]:
        """Every (relative path, mode, size) on the disk, parents before children, lost+found left out.

        Names that could not be handed back to debugfs safely are listed but
        never descended into; the caller decides what to do with them.
        """
        found: list[tuple[str, int, int]] = []
        pending = [""]
        while pending:
            rel = pending.pop(0)
            for name, (mode, size) in sorted(self.entries("/" + rel if rel else "/").items()):
                path = f"{rel}/{name}" if rel else name
                if path == "lost+found":
                    continue
                found.append((path, mode, size))
                if mode & 0o170000 == 0o040000 and safe_disk_path("/" + path):
                    pending.append(path)
        return found

    def tree(self) -> dict[str, int]:
        """Every path (relative, '/'-separated) -> mode, lost+found left out."""
        out: dict[str, int] = {}
        pending = [""]
        while pending:
            rel = pending.pop()
            for name, mode in self.listing("/" + rel if rel else "/").items():
                path = f"{rel}/{name}" if rel else name
                if path == "lost+found":
                    continue
                out[path] = mode
                if mode & 0o170000 == 0o040000:
                    pending.append(path)
        return out

    def copy_out(self, disk_path: str, dest: Path) -> bool:
        """Copy one regular file out of the image; False when it is not there."""
        _check_disk_path(disk_path)
        parent, _, name = disk_path.rpartition("/")
        mode = self.listing(parent or "/").get(name)
        if mode is None or mode & 0o170000 != 0o100000:
            return False
        tmp = Path(dest).with_name(Path(dest).name + ".tmp")
        tmp.unlink(missing_ok=True)
        if any(c in str(tmp) for c in '"\n\\'):
            raise DiskError(f"refusing destination {tmp!r}")
        self._debugfs(f'dump {disk_path} "{tmp}"')
        if not tmp.exists():
            raise DiskError(f"debugfs did not write {disk_path} out of {self.image.name}")
        os.replace(tmp, dest)
        return True


def safe_disk_path(path: str) -> bool:
    """True for a plain absolute path that may be put into a debugfs command string."""
    return _SAFE_DISK_PATH.fullmatch(path) is not None and "/../" not in f"{path}/" and "/./" not in f"{path}/"


def _check_disk_path(path: str) -> None:
    """debugfs takes one command string: only plain absolute paths reach it."""
    if not safe_disk_path(path):
        raise DiskError(f"refusing disk path {path!r}")
