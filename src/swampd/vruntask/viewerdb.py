"""The viewer database snapshot, ``codedx_viewerdb.tar.gz``: checked, restored, stored.

SWAMP restored a snapshot with ``tar -C in -xzf`` and carried on with an
empty database when that failed (lifecycle §4.7 ⚠), and saved whatever the
guest left, empty or not (§4.14).  Here a snapshot is used only when its
SHA-512 matches and it is a readable gzip tar holding at least one non-empty
regular file with a safe name; anything else is an error with the reason.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import time
from pathlib import Path

from swampd.checksums import file_digest
from swampd.results.archives import UNLIMITED, extract_tar
from swampd.results.errors import ResultsError

SNAPSHOT_NAME = "codedx_viewerdb.tar.gz"


class SnapshotError(Exception):
    """A snapshot is missing, corrupt, empty or unsafe; the message says which."""


def check_snapshot(path: Path) -> list[str]:
    """The member names of a usable snapshot; SnapshotError with the reason otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SnapshotError(f"{path} does not exist") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: {exc.strerror}") from None
    if size == 0:
        raise SnapshotError(f"{path} is empty")
    names: list[str] = []
    useful = False
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise SnapshotError(f"{path}: unsafe member name {member.name!r}")
                if not (member.isfile() or member.isdir()):
                    raise SnapshotError(f"{path}: member {member.name!r} is not a file or directory")
                if member.isfile() and member.size > 0:
                    useful = True
                names.append(member.name)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise SnapshotError(f"{path} is not a readable tar.gz: {exc}") from None
    if not useful:
        raise SnapshotError(f"{path} holds no non-empty file")
    return names


def restore_snapshot(db_path: Path, checksum: str, dest: Path) -> list[str]:
    """Check ``db_path`` against its SHA-512 and unpack it into ``dest``; the names unpacked."""
    if not checksum:
        raise SnapshotError(f"no checksum given for the viewer database {db_path}")
    try:
        actual = file_digest(db_path)
    except FileNotFoundError:
        raise SnapshotError(f"viewer database {db_path} does not exist") from None
    except OSError as exc:
        raise SnapshotError(f"viewer database {db_path}: {exc.strerror}") from None
    if actual.lower() != checksum.strip().lower():
        raise SnapshotError(f"viewer database {db_path} does not match its checksum "
                            f"(expected {checksum[:16]}..., found {actual[:16]}...)")
    names = check_snapshot(db_path)
    # Our own extraction, not extractall(filter=...): that argument only exists
    # from Python 3.11.4, and Debian 12 ships 3.11.2.
    try:
        extract_tar(db_path, dest, UNLIMITED)
    except ResultsError as exc:
        raise SnapshotError(f"viewer database {db_path}: {exc}") from None
    return names


def store_snapshot(source: Path, store_root: Path, projectid: str, viewer_uuid: str,
                   now: float | None = None) -> tuple[Path, str]:
    """Copy a checked snapshot to ``<store>/<project>/V-Runs/<viewer_uuid>/codedx_viewerdb_<ts>.tar.gz``.

    Written under a temporary name, synced, then renamed, so the path handed
    on is always a complete file.  Returns the path and its SHA-512.
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now if now is not None else time.time()))
    directory = Path(store_root) / projectid / "V-Runs" / viewer_uuid
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / f"codedx_viewerdb_{stamp}.tar.gz"
    n = 1
    while dest.exists():  # two saves within one second keep both
        dest = directory / f"codedx_viewerdb_{stamp}_{n}.tar.gz"
        n += 1
    tmp = directory / f".{dest.name}.tmp"
    digest = hashlib.sha512()
    with open(source, "rb") as src, open(tmp, "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dest)
    return dest, digest.hexdigest()
