"""The files of an assessment's ``out/`` directory, found as SWAMP's backend found them.

``output_files.conf`` (written by run.sh) names some files; the framework's
``build.conf``, ``results.conf`` and ``parsed_results.conf`` name archives and
the files inside them (``reference/swamp-assessment.md`` §2.1, §2.3).  Every
name comes from the guest, so every path is confined to ``out/``: a name that
resolves elsewhere (``../``, an absolute path, a link out) is treated as
absent.  Files are read with a size cap, and a file inside an archive is read
from the archive stream without unpacking it.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

DEFAULTS = {
    "buildAssessOut": "build_assess.out", "buildConf": "build.conf", "captureArchive": "capture.tar.gz",
    "envSh": "env.sh", "parsedResultsConf": "parsed_results.conf", "resultsConf": "results.conf",
    "runOut": "run.out", "statusOut": "status.out",
}
CONF_KEYS = ("buildConf", "parsedResultsConf", "resultsConf")
#: (archive key, dir key, alternative dir key) inside each conf.
ARCHIVE_KEYS = {
    "buildConf": ("build-archive", "build-dir", "build-root-dir"),
    "resultsConf": ("results-archive", "results-dir", None),
    "parsedResultsConf": ("parsed-results-archive", "parsed-results-dir", None),
}
MAX_CONTENT = 8 << 20
TRUNCATED = "\n[... truncated by swampd: the file is larger than 8 MiB]"


def read_conf(path: Path) -> dict[str, str]:
    """``key = value`` lines (``#`` comments); {} for an unreadable file."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


class OutDir:
    """One unpacked ``out/`` directory and the files SWAMP's backend would locate in it."""

    def __init__(self, top: Path) -> None:
        self.top = Path(top)
        self.real = os.path.realpath(self.top)
        self.files: dict[str, str] = {}
        self.confs: dict[str, dict[str, str]] = {}
        self._locate()

    def path(self, name: str) -> Path | None:
        """``name`` inside out/, if it is a readable regular file there."""
        if not name or "\x00" in name:
            return None
        real = os.path.realpath(os.path.join(self.real, name))
        if not real.startswith(self.real + os.sep):
            return None
        if not os.path.isfile(real) or not os.access(real, os.R_OK):
            return None
        return Path(real)

    def _locate(self) -> None:
        listed = read_conf(self.top / "output_files.conf") if self.path("output_files.conf") else {}
        files = dict(listed) if listed else dict(DEFAULTS)
        files = {key: value for key, value in files.items() if self.path(value) is not None}
        for key in CONF_KEYS:
            if key not in files and self.path(DEFAULTS[key]) is not None:
                files[key] = DEFAULTS[key]
        for key in CONF_KEYS:
            if key in files:
                conf = read_conf(self.path(files[key]))  # type: ignore[arg-type]
                if conf:
                    self.confs[key] = conf
                del files[key]
        self.files = files

    def text(self, name: str) -> str | None:
        """A flat file's text (capped), or None when it is not there."""
        path = self.path(name)
        if path is None:
            return None
        with open(path, "rb") as fh:
            return _decode(fh.read(MAX_CONTENT + 1))

    def archived(self, conf_key: str, name_or_key: str) -> tuple[str, str] | None:
        """(path inside the archive, text) of a file in a conf's archive, or None.

        ``name_or_key`` is looked up as a key of the conf first (its value is the
        file name), else taken as the file name, and is relative to the conf's dir.
        """
        conf = self.confs.get(conf_key)
        if conf is None:
            return None
        archive_key, dir_key, alt_key = ARCHIVE_KEYS[conf_key]
        archive = self.path(conf.get(archive_key, ""))
        directory = conf.get(dir_key) or (conf.get(alt_key, "") if alt_key else "")
        if archive is None or not directory:
            return None
        inner = f"{directory.rstrip('/')}/{conf.get(name_or_key, name_or_key)}"
        text = _member_text(archive, inner)
        return None if not text else (inner, text)


def _normal(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


def _member_text(archive: Path, inner: str) -> str | None:
    wanted = _normal(inner)
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                if member.isreg() and _normal(member.name) == wanted:
                    source = tar.extractfile(member)
                    return None if source is None else _decode(source.read(MAX_CONTENT + 1))
    except (tarfile.TarError, EOFError, OSError, ValueError):
        return None
    return None


def _decode(data: bytes) -> str:
    text = data[:MAX_CONTENT].decode("utf-8", errors="replace")
    return text + TRUNCATED if len(data) > MAX_CONTENT else text
