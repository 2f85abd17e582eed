"""An assessment's results, copied from its results folder into the project's results tree.

SWAMP's PostAssessment copied, before ``insert_results`` (reference
swamp-assessment.md §3.2, §3.6), into

    ARun  <project_store>/<project>/A-Results/<R>/   the result, outputdisk.tar.gz (unless it
                                                     is the result), the package archive,
                                                     assessment-report.json
          <project_store>/<project>/A-Logs/<R>/run.out
    MRun  <metric_store>/<M-id>/                     the result, outputdisk.tar.gz, assessment-report.json
          (SWAMP's metric store: /swamp/store/SCAPackages/Metrics)

where ``R`` is the assessment_result uuid.  ``store_results`` does the same
from the folder an execute node described (``runreports.RunResults``) and
returns what ``insert_results`` needs (``StoredResult``).  No database here.

Every file is checked on the way: its name is a plain name in the results
folder (nothing else is read), it must be a regular file (a symbolic link,
a FIFO or a device is refused, never followed or opened for blocking), and
its SHA-512, computed while copying, must be the one the node reported; a
copy is written under a temporary name, flushed to disk and renamed, so the
tree never holds half a file.  A second call (after a crash between the
copy and the database call, say) finds the complete copies by their
SHA-512 and copies nothing again.

``ResultsStoreError``: the folder is not what the node described (a retry
cannot help).  ``OSError``: the destination could not be written (a full
disk, a store not mounted): the same call may work later.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from swampd.identifiers import is_identifier
from swampd.results.errors import ResultsError
from swampd.results.metrics import PackageLines, package_lines
from swampd.runreports import ResultFile, RunResults

LOG_NAME = "run.out"
_CHUNK = 1 << 20
FILE_MODE = 0o644
DIR_MODE = 0o755


class ResultsStoreError(Exception):
    """The results folder is not what its node described; the message says how."""


@dataclass(frozen=True)
class StoredResult:
    """What ``insert_results`` (ARun) or the metric_run update (MRun) records.

    Paths are absolute paths in the results tree; an empty path (and its
    empty checksum) means the run left no such file.  ``weakness_count`` and
    ``lines_of_code`` are -1 when unknown; ``status_out_error`` is the first
    failed task ("" for none).  ``package_lines``: an MRun's cloc counts, when
    its SCARF file has them.
    """

    result_uuid: str
    result_path: str
    result_checksum: str
    source_archive_path: str
    source_archive_checksum: str
    log_path: str
    log_checksum: str
    weakness_count: int
    lines_of_code: int
    status_out: str
    status_out_error: str
    package_lines: PackageLines | None = None

    def to_payload(self) -> dict[str, Any]:
        """A JSON-able dict (an outbox payload); ``from_payload`` reads it back."""
        payload = asdict(self)
        payload["package_lines"] = asdict(self.package_lines) if self.package_lines else None
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "StoredResult":
        values = {f.name: payload[f.name] for f in fields(cls) if f.name in payload}
        lines = values.get("package_lines")
        values["package_lines"] = PackageLines(**lines) if lines else None
        return cls(**values)


def store_results(results: RunResults, project_store: Path, projectid: str, result_uuid: str,
                  metric: bool, execrunid: str = "", metric_store: str | Path | None = None) -> StoredResult:
    """Copy the run's files into the results tree, checked; what the database call needs.

    ARun: ``<project_store>/<projectid>/A-Results/<result_uuid>/`` and
    ``.../A-Logs/<result_uuid>/run.out``.  MRun (``metric``): ``<metric_store>/<M-id>/``
    (SWAMP: /swamp/store/SCAPackages/Metrics/<M-id>/), or without a metric store
    ``<project_store>/Metrics/<M-id>/``; the M- id is ``execrunid``, or else the
    results folder's (``<resultsfolder>/<execrunid>/e<epoch>``, runreports).  The
    store directory is made if its parent exists; a missing parent is an OSError
    (a retry may find it).
    """
    for name, value in (("projectid", projectid), ("result_uuid", result_uuid)):
        if not is_identifier(value):
            raise ResultsStoreError(f"{name} {value[:60]!r} is not an identifier")
    if metric and not execrunid:
        execrunid = Path(results.results_dir).parent.name
    if metric and not (execrunid.startswith("M-") and is_identifier(execrunid)):
        raise ResultsStoreError(f"a metric run needs its M- run id, not {execrunid[:60]!r}")
    files = results.files
    if results.result not in files:
        raise ResultsStoreError(f"the result ({results.result}) is not among the run's files")
    store = Path(metric_store) if metric and metric_store else Path(project_store)
    try:
        os.mkdir(store, DIR_MODE)  # the store itself, not its parents: a missing parent is an OSError
    except FileExistsError:
        pass
    if not store.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "results store is not a directory", str(store))
    if metric:
        result_dir = _make_dirs(store, (execrunid,) if metric_store else ("Metrics", execrunid))
        log_dir = None
    else:
        result_dir = _make_dirs(store, (projectid, "A-Results", result_uuid))
        log_dir = _make_dirs(store, (projectid, "A-Logs", result_uuid))

    wanted: list[tuple[str, ResultFile, Path]] = [(results.result, files[results.result], result_dir)]
    if "outputdisk" in files and results.result != "outputdisk":
        wanted.append(("outputdisk", files["outputdisk"], result_dir))
    if not metric and "source" in files:
        wanted.append(("source", files["source"], result_dir))
    if "report" in files:
        wanted.append(("report", files["report"], result_dir))
    _no_clashes(wanted)

    stored: dict[str, str] = {}
    with _Folder(results.results_dir) as folder:
        for role, described, dest_dir in wanted:
            stored[role] = str(folder.copy(described, dest_dir / described.name))
        if log_dir is not None and "log" in files:
            stored["log"] = str(folder.copy(files["log"], log_dir / LOG_NAME))

    lines = None
    if metric and results.result == "scarf":
        try:
            lines = package_lines(Path(stored["scarf"]))
        except (ResultsError, OSError):
            lines = None  # SWAMP stored no counts when it could not read them
    status = results.status_out
    return StoredResult(
        result_uuid=result_uuid,
        result_path=stored[results.result], result_checksum=files[results.result].sha512,
        source_archive_path=stored.get("source", ""),
        source_archive_checksum=files["source"].sha512 if "source" in stored else "",
        log_path=stored.get("log", ""), log_checksum=files["log"].sha512 if "log" in stored else "",
        weakness_count=status.weaknesses, lines_of_code=results.lines_of_code,
        status_out=status.text, status_out_error=status.first_failure, package_lines=lines)


def _no_clashes(wanted: list[tuple[str, ResultFile, Path]]) -> None:
    """Two roles may share a destination name only when they are the same file."""
    seen: dict[tuple[Path, str], tuple[str, str]] = {}
    for role, described, dest_dir in wanted:
        key = (dest_dir, described.name)
        if key in seen and seen[key][1] != described.sha512:
            raise ResultsStoreError(f"{seen[key][0]} and {role} are both named {described.name[:80]!r}")
        seen[key] = (role, described.sha512)


def _make_dirs(store: Path, parts: tuple[str, ...]) -> Path:
    """``store/parts...``, made as needed (0755); none of them may be a symbolic link."""
    path = store
    for part in parts:
        path = path / part
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            pass
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise ResultsStoreError(f"{path} is not a directory (a link or a file is in the way)")
    return path


class _Folder:
    """The results folder, opened once; files are opened by plain name relative to it."""

    def __init__(self, results_dir: str) -> None:
        self.path = Path(results_dir)
        if not self.path.is_absolute():
            raise ResultsStoreError(f"results folder {results_dir[:200]!r} is not an absolute path")
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise ResultsStoreError(f"results folder {self.path}: {exc.strerror}") from None

    def __enter__(self) -> "_Folder":
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def copy(self, described: ResultFile, dest: Path) -> Path:
        """``described`` copied to ``dest`` (unless an intact copy is there), its SHA-512 checked."""
        name = self._plain_name(described)
        if _intact(dest, described.sha512):
            return dest
        try:
            info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            raise ResultsStoreError(f"{name} is not in the results folder {self.path}") from None
        if not stat.S_ISREG(info.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
            raise ResultsStoreError(f"{name} in the results folder is {kind}; refused")
        try:
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.fd)
        except OSError as exc:  # replaced by a link or removed since the stat
            raise ResultsStoreError(f"{name} in the results folder: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(src).st_mode):
                raise ResultsStoreError(f"{name} in the results folder is not a regular file; refused")
            _copy_checked(src, name, described.sha512, dest)
        finally:
            os.close(src)
        return dest

    def _plain_name(self, described: ResultFile) -> str:
        name = described.name
        if (not name or name in (".", "..") or "/" in name or "\0" in name
                or os.path.normpath(described.path) != os.path.join(os.path.normpath(str(self.path)), name)):
            raise ResultsStoreError(f"{described.path[:200]!r} is not a file of the results folder {self.path}")
        return name


def _intact(dest: Path, sha512: str) -> bool:
    """True when ``dest`` is a regular file with that SHA-512 (a copy made before)."""
    try:
        fd = os.open(dest, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        digest = hashlib.sha512()
        while block := os.read(fd, _CHUNK):
            digest.update(block)
        return digest.hexdigest() == sha512
    finally:
        os.close(fd)


def _copy_checked(src: int, name: str, sha512: str, dest: Path) -> None:
    """Copy the open ``src`` to ``dest`` through a temporary name; refuse it when the digest differs."""
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    done = False
    try:
        digest = hashlib.sha512()
        while block := os.read(src, _CHUNK):
            digest.update(block)
            view = memoryview(block)
            while view:
                view = view[os.write(out, view):]
        if digest.hexdigest() != sha512:
            raise ResultsStoreError(
                f"{name} in the results folder has SHA-512 {digest.hexdigest()[:16]}..., not the "
                f"{sha512[:16]}... its execute node reported; refused")
        os.fchmod(out, FILE_MODE)
        os.fsync(out)
        done = True
    finally:
        os.close(out)
        if not done:
            os.unlink(tmp)
    os.replace(tmp, dest)
    dir_fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
