"""The results folder of one assessment launch, built from what the machine left in ``out/``.

SWAMP's PostAssessment (reference/swamp-assessment.md §2.4, §3.1, §3.4)
found the output files, read status.out, and filled
``<resultsfolder>/<execrunid>/`` with:

    inputdisk.tar.gz         in/, top entry in/
    outputdisk.tar.gz        out/ (lost+found left out), top entry out/
    status.out, run.out      copies
    <package archive>        from in/
    assessment-report.json   the status report (§2.5), one line
    parsed_results.xml       the SCARF file (name from parsed-results-file)
    weakness_count.out | weaknesses.txt   whichever the parsed results hold
    results.tar.gz           only when there are no results or the framework did not pass

Every file's SHA-512 is computed on the folder's copy.  Every name comes
from the machine, so every path is confined: out/'s files through
``results.outputfiles.OutDir`` (a name that leaves out/ is absent), the
parsed-results archive unpacked by ``results.archives`` into a scratch
directory (``../``, absolute names, links leaving it, devices: refused, and
then there are no results), archives of in/ and out/ made of directories
and regular files only (links and special files are left out, never
followed).  status.out is read up to ``STATUS_OUT_READ`` bytes.

Deliberate differences from SWAMP: the folder is one per launch
(``<execrunid>/e<epoch>``), built under a temporary name and renamed, so an
attempt never mixes with the files of the one before it and a reader never
sees half a folder; a SCARF file that our reader refuses is no result.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from swampd.results.archives import Limits, extract_tar
from swampd.results.errors import ResultsError
from swampd.results.failedreport import NOT_FOUND_ANCHOR, entry, status_entries
from swampd.results.outputfiles import OutDir
from swampd.results.scarf import ScarfReader
from swampd.results.statusout import parse_status_out
from swampd.runreports import ResultFile, RunResults, StatusSummary, outcome

log = logging.getLogger(__name__)

INPUT_ARCHIVE = "inputdisk.tar.gz"
OUTPUT_ARCHIVE = "outputdisk.tar.gz"
REPORT = "assessment-report.json"
STATUS_OUT = "status.out"
RUN_OUT = "run.out"
RESULTS_ARCHIVE = "results.tar.gz"
WEAKNESS_FILES = ("weakness_count.out", "weaknesses.txt")
VERSIONS = "versions.txt"
#: status.out is read up to this many bytes; a real one is a few KiB.
STATUS_OUT_READ = 1 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FolderInputs:
    """What one results folder is built from."""

    in_dir: Path
    out_dir: Path
    package_archive: str
    dest: Path
    scratch: Path
    limits: Limits
    versions: str
    #: out/ names left out of outputdisk.tar.gz (the node's own records).
    exclude: frozenset[str] = frozenset()


def build_results_folder(src: FolderInputs) -> RunResults:
    """Build ``src.dest`` (replacing a partial one) and describe it; ``problem`` says what fell short."""
    problems: list[str] = []
    tmp = src.dest.with_name(f".{src.dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(src.scratch, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o755)
    src.scratch.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    try:
        _write_versions(src.out_dir, src.versions)
        files["inputdisk"] = tmp / INPUT_ARCHIVE
        problems += archive_tree(src.in_dir, "in", files["inputdisk"], src.limits, frozenset())
        files["outputdisk"] = tmp / OUTPUT_ARCHIVE
        problems += archive_tree(src.out_dir, "out", files["outputdisk"], src.limits,
                                 src.exclude | {"lost+found"})
        out = OutDir(src.out_dir)
        status = _status(out)
        for role, key, name in (("status", "statusOut", STATUS_OUT), ("log", "runOut", RUN_OUT)):
            _keep(files, problems, role, out.path(out.files.get(key, "")), tmp / name)
        if src.package_archive:
            _keep(files, problems, "source", src.in_dir / src.package_archive, tmp / src.package_archive)
        files["report"] = tmp / REPORT
        _write_report(src.out_dir, files["report"])
        scarf, bugs, problem = _parsed_results(out, src.scratch / "parsed", src.limits, tmp, files)
        if problem:
            problems.append(problem)
        have_results = scarf is not None and bugs >= 0
        if not (have_results and status.passed):
            _keep(files, problems, "results_archive", _conf_file(out, "resultsConf", "results-archive"),
                  tmp / RESULTS_ARCHIVE)
        described = {role: _describe(path, src.dest) for role, path in files.items()}
        for path in tmp.iterdir():
            os.chmod(path, 0o644)
        if src.dest.exists():
            shutil.rmtree(src.dest)
        os.replace(tmp, src.dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(src.scratch, ignore_errors=True)
    return RunResults(
        results_dir=str(src.dest), files=described,
        result="scarf" if have_results and status.passed else "outputdisk",
        status_out=status, have_results=have_results, scarf_bugs=bugs,
        outcome=outcome(status, have_results), problem="; ".join(problems))


# -- status.out --------------------------------------------------------------------
def _status(out: OutDir) -> StatusSummary:
    name = out.files.get("statusOut", "")
    path = out.path(name) if name else None
    if path is None:
        return StatusSummary()
    with open(path, "rb") as fh:
        data = fh.read(STATUS_OUT_READ + 1)
    truncated = len(data) > STATUS_OUT_READ
    parsed = parse_status_out(data[:STATUS_OUT_READ].decode("utf-8", errors="replace"))
    verdict = "" if parsed.all_pass is None else ("pass" if parsed.all_pass else "fail")
    return StatusSummary(
        found=True, verdict=verdict, first_failure=parsed.first_failure or "", retry=parsed.retry,
        weaknesses=parsed.weaknesses if parsed.weaknesses is not None else -1,
        no_build=parsed.no_build, source_files=parsed.source_files, compilable=parsed.compilable,
        no_files=parsed.no_files, text=parsed.content, truncated=truncated)


def _write_report(out_dir: Path, dest: Path) -> None:
    """assessment-report.json: ``{"status": [...]}`` on one line, as SWAMP's ``to_json`` wrote it."""
    try:
        items = status_entries(out_dir)
    except (ResultsError, OSError, ValueError) as exc:
        log.warning("assessment-report.json: %s", exc)
        items = [entry("Status Not Found", "Unable to determine the final status of the assessment.", False,
                       NOT_FOUND_ANCHOR)]
    with open(dest, "w", encoding="utf-8") as fh:
        json.dump({"status": items}, fh, ensure_ascii=False)


def _write_versions(out_dir: Path, versions: str) -> None:
    """SWAMP added its component versions to out/ before archiving it; a machine's own file is kept."""
    path = out_dir / VERSIONS
    if versions and not os.path.lexists(path):
        path.write_text(versions, encoding="utf-8")


# -- parsed results (§3.4) -----------------------------------------------------------
def _parsed_results(out: OutDir, scratch: Path, limits: Limits, tmp: Path,
                    files: dict[str, Path]) -> tuple[Path | None, int, str]:
    """Unpack the parsed-results archive; copy its SCARF and weakness files. (SCARF, its bugs, problem)."""
    conf = out.confs.get("parsedResultsConf")
    if conf is None:
        return None, -1, ""
    archive = out.path(conf.get("parsed-results-archive", ""))
    directory, name = conf.get("parsed-results-dir", ""), conf.get("parsed-results-file", "")
    if archive is None or not directory or not name:
        return None, -1, "parsed_results.conf names no archive, directory and file that are in out/"
    try:
        extract_tar(archive, scratch, limits)
    except ResultsError as exc:
        return None, -1, f"parsed results refused: {exc}"
    scarf = _inside(scratch, f"{directory}/{name}")
    if scarf is None:
        return None, -1, f"the parsed results hold no {directory}/{name}"
    problems: list[str] = []
    if not _keep(files, problems, "scarf", scarf, tmp / (_plain_name(name) or "parsed_results.xml")):
        return None, -1, "; ".join(problems)
    for weakness in WEAKNESS_FILES:
        found = _inside(scratch, f"{directory}/{weakness}")
        if found is not None:
            _keep(files, problems, "weaknesses", found, tmp / weakness)
            break
    try:
        reader = ScarfReader(files["scarf"])
        bugs = sum(1 for _ in reader)
    except ResultsError as exc:
        return scarf, -1, f"the SCARF file is unusable: {exc}"
    return scarf, bugs, ""


def _conf_file(out: OutDir, conf_key: str, key: str) -> Path | None:
    conf = out.confs.get(conf_key)
    return out.path(conf.get(key, "")) if conf else None


def _inside(top: Path, name: str) -> Path | None:
    """``name`` under ``top`` when it resolves to a regular file inside it."""
    real_top = os.path.realpath(top)
    real = os.path.realpath(os.path.join(real_top, name))
    if not real.startswith(real_top + os.sep) or not os.path.isfile(real):
        return None
    return Path(real)


def _plain_name(name: str) -> str:
    base = Path(name).name
    return "" if base in ("", ".", "..") else base


# -- files -----------------------------------------------------------------------------
def archive_tree(top: Path, arcname: str, dest: Path, limits: Limits, exclude: frozenset[str]) -> list[str]:
    """``dest`` (tar.gz) holding ``top`` as ``arcname/``: directories and regular files only.

    Links and special files are left out (never followed); so is what lies
    past the limits.  The problems, for the results report.
    """
    problems: list[str] = []
    skipped = 0
    total = members = 0
    with tarfile.open(dest, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.add(top, arcname, recursive=False)
        pending = [(top, arcname)]
        while pending:
            directory, name = pending.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                problems.append(f"{name}/ unreadable: {exc.strerror}")
                continue
            for item in entries:
                member = f"{name}/{item.name}"
                if directory == top and item.name in exclude:
                    continue
                st = item.stat(follow_symlinks=False)
                kind = stat.S_IFMT(st.st_mode)
                if kind not in (stat.S_IFDIR, stat.S_IFREG):
                    skipped += 1
                    continue
                members += 1
                total += st.st_size if kind == stat.S_IFREG else 0
                if (limits.max_members is not None and members > limits.max_members) or (
                        limits.max_bytes is not None and total > limits.max_bytes):
                    skipped += 1
                    continue
                try:
                    if kind == stat.S_IFDIR:
                        tar.add(item.path, member, recursive=False)
                        pending.append((Path(item.path), member))
                    else:
                        _add_file(tar, Path(item.path), member)
                except OSError as exc:
                    problems.append(f"{member} unreadable: {exc.strerror}")
    if skipped:
        problems.append(f"{skipped} entries of {arcname}/ left out of {dest.name} "
                        "(links, special files, or past the size limits)")
    return problems


def _add_file(tar: tarfile.TarFile, path: Path, member: str) -> None:
    """Add a regular file through a descriptor opened without following a link swapped in meanwhile."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "not a regular file")
        info = tar.gettarinfo(fileobj=fh, arcname=member)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, fh)


def _keep(files: dict[str, Path], problems: list[str], role: str, source: Path | None, dest: Path) -> bool:
    """Copy ``source`` (when there is one) into the folder as ``role``; a failure is a problem, not an end."""
    if source is None:
        return False
    try:
        files[role] = _copy(source, dest)
        return True
    except OSError as exc:
        dest.unlink(missing_ok=True)
        problems.append(f"{dest.name} not copied: {exc.strerror or exc}")
        return False


def _copy(source: Path, dest: Path) -> Path:
    """Copy a regular file's bytes (not a link swapped in meanwhile) into the folder."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh, open(dest, "wb") as out:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(0, f"{source.name} is not a regular file")
        shutil.copyfileobj(fh, out, _CHUNK)
    return dest


def _describe(path: Path, folder: Path) -> ResultFile:
    digest = hashlib.sha512()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
            size += len(block)
    return ResultFile(path.name, str(folder / path.name), digest.hexdigest(), size)
