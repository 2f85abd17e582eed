"""The daemon's log: one line per event, the run it is about on every line, text or JSON lines.

Why a context and not arguments: a line about a run is written in many
rooms (the reconciler, a scheduler backend, a side effect's handler, the
service), and only some of them hold the run's record.  ``about(record)``
marks the current thread (a ``ContextVar``) as working on that run for a
block; every line logged inside it, by any module, carries the run's key,
epoch and launch id.  A line can also name its run explicitly with
``extra=run_fields(record)``.

One line per event: in text the message and any traceback are kept on one
line (newlines become ``\\n``), so a log reader never mistakes a
continuation for an event and a value cannot forge a line.  JSON lines
(``[agentmonitor] log_format = "json"`` or ``--log-json``) put each event
in one JSON object with fixed keys.  Neither format has a field for the
report token or an API key; nothing here reads a record's secrets.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, TextIO

#: (key, epoch, launch id) of the run the current thread works on, or what reads it when first needed.
_RUN: ContextVar["tuple[str, int, str] | _Lazy | None"] = ContextVar("swampd_run", default=None)

FORMATS = ("text", "json")


def run_fields(record: Any) -> dict[str, Any]:
    """``extra=`` for one log call about ``record`` (any run record)."""
    return {"run_key": record.key, "run_epoch": record.epoch, "run_launch": record.launch_id}


@contextmanager
def about(record: Any) -> Iterator[None]:
    """Every line logged in this block (in this thread) is about ``record``."""
    token = _RUN.set((record.key, record.epoch, record.launch_id) if record is not None else None)
    try:
        yield
    finally:
        _RUN.reset(token)


@contextmanager
def about_run(read_label: Callable[[], Any]) -> Iterator[None]:
    """As ``about``, for a block that knows only the run's id: ``read_label()`` (a registry read giving
    key, epoch and launch id, or None) is called the first time a line is logged in the block, and
    never when none is (the reconciler's turns, hundreds a second in a burst, mostly log nothing)."""
    token = _RUN.set(_Lazy(read_label))
    try:
        yield
    finally:
        _RUN.reset(token)


class _Lazy:
    def __init__(self, read: Callable[[], Any]) -> None:
        self._read: Callable[[], Any] | None = read
        self._fields: tuple[str, int, str] | None = None

    def fields(self) -> tuple[str, int, str] | None:
        if self._read is not None:
            read, self._read = self._read, None
            label = read()
            self._fields = (label.key, label.epoch, label.launch_id) if label is not None else None
        return self._fields


class RunFilter(logging.Filter):
    """Puts the current run (from ``about``) on records that do not name one themselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "run_key"):
            current = _RUN.get()
            if isinstance(current, _Lazy):
                try:
                    current = current.fields()
                except Exception:  # a line must be written even when the registry cannot be read
                    current = None
            if current is not None:
                record.run_key, record.run_epoch, record.run_launch = current
        return True


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


class TextFormatter(logging.Formatter):
    """``time program[pid] LEVEL logger: message [run=KEY epoch=N launch=ID]`` on one line."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        run = ""
        if getattr(record, "run_key", None):
            run = f" [run={record.run_key} epoch={record.run_epoch} launch={record.run_launch or '-'}]"
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        return (f"{stamp},{int(record.msecs):03d} {self.program}[{record.process}] {record.levelname} "
                f"{record.name}: {_one_line(text)}{run}")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, pid, msg, and run, epoch, launch when about a run."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "program": self.program,
            "pid": record.process,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "run_key", None):
            event.update(run=record.run_key, epoch=record.run_epoch, launch=record.run_launch)
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False)


def configure(program: str, log_format: str = "text", level: int = logging.INFO,
              stream: TextIO | None = None) -> None:
    """Send every log line of this process to ``stream`` (stderr) in ``log_format``."""
    global _settings
    _settings = (log_format, level)
    # Neither format shows the caller's file, line or function, nor the thread or the
    # multiprocessing name: the logging module need not look them up for every line (its own
    # documented switches; walking the stack for the caller was a third of a line's cost).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RunFilter())
    handler.setFormatter(JsonFormatter(program) if log_format == "json" else TextFormatter(program))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


#: What ``configure`` was last given: (format, level); a helper process logs the same way.
_settings: tuple[str, int] = ("text", logging.INFO)


def settings() -> tuple[str, int]:
    """The format and level this process logs with (for a process it starts to log alike)."""
    return _settings


def wanted_format(cli_json: bool, configured: str = "") -> str:
    """``--log-json`` wins, then ``SWAMPD_LOG_FORMAT``, then the configuration's ``log_format``."""
    if cli_json:
        return "json"
    env = os.environ.get("SWAMPD_LOG_FORMAT", "")
    if env in FORMATS:
        return env
    return configured or "text"
