"""Log set-up, the same in the command-line process, in Granian's own loggers and in every worker.

Every line on stderr is one JSON object with the same leading fields, whoever logs it: ``time``
(UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and ``message``; a traceback comes as
``exception``, and the access log adds its request fields after these. One parser reads them all.

Access lines skip the logging machinery: they are written by `LineBatch` in the same format, a
batch at a time (`ACCESS_FLUSH_SECONDS` after the first line of a batch at the latest, and at
shutdown), when the lines go to the stream `configure_logging` set up.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import select
import sys
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from konifer_edge.config.model import LOG_LEVELS, LogLevel

ACCESS_LOGGER = "konifer_edge.access"
LEVEL_VARIABLE: Final = "LOG_LEVEL"

DEFAULT_LEVEL: Final[LogLevel] = "info"

# Granian's loggers: its process manager and its (unused, `log_access=False`) access log.
_GRANIAN_LOGGERS: Final = ("_granian", "granian.access")
# pyvips reports every colour conversion at INFO.
_CHATTY: Final = ("pyvips",)
_FIELDS: Final = "konifer_fields"


class LogLine(msgspec.Struct):
    time: str
    level: str
    logger: str
    message: str


_second: tuple[int, str] = (0, "")


def utc_time(timestamp: float) -> str:
    """``timestamp`` as the ``time`` field writes it: UTC, ISO 8601, milliseconds (``...T12:00:00.250+00:00``)."""
    global _second
    whole = int(timestamp)
    second, text = _second
    if whole != second:
        # Formatting a datetime costs more than the rest of an access line; one per second is enough.
        text = datetime.fromtimestamp(whole, UTC).isoformat()[:19]
        _second = (whole, text)
    return f"{text}.{int((timestamp - whole) * 1000):03d}+00:00"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the object given as ``extra=fields(...)`` adds its fields."""

    def format(self, record: logging.LogRecord) -> str:
        common = LogLine(
            time=utc_time(record.created),
            level=record.levelname.lower(),
            logger=record.name,
            message=record.getMessage(),
        )
        # Objects are spliced: the common fields first, then the record's own, then a traceback.
        problem: dict[str, str] = {}
        if record.exc_info:
            problem["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            problem["exception"] = record.exc_text
        if record.stack_info:
            problem["stack"] = self.formatStack(record.stack_info)
        line = msgspec.json.encode(common)[:-1]
        for more in (getattr(record, _FIELDS, None), problem):
            inner = msgspec.json.encode(more)[1:-1] if more else b""
            if inner:
                line += b"," + inner
        return (line + b"}").decode()


ACCESS_FLUSH_SECONDS: Final = 0.1
# A pipe takes a write of up to PIPE_BUF bytes whole: lines of several workers never interleave.
_BATCH_BYTES: Final = select.PIPE_BUF


class LineBatch:
    """Whole JSON lines bound for stderr, written together instead of one write per line.

    A batch is written when the next line would make it larger than `_BATCH_BYTES`, and
    ``delay`` seconds after its first line at the latest (a timer on the running event loop;
    at once when there is none). `flush` writes what is pending: at shutdown, and at exit.
    """

    def __init__(self, delay: float = ACCESS_FLUSH_SECONDS) -> None:
        self._delay = delay
        self._lines: list[bytes] = []
        self._size = 0

    def add(self, line: bytes) -> None:
        """Queue ``line``, which ends with a newline."""
        if self._size + len(line) > _BATCH_BYTES:
            self.flush()
        lines = self._lines
        lines.append(line)
        self._size += len(line)
        if len(lines) == 1:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
            else:
                # A timer that fires after its batch was written by size writes an early, smaller batch.
                loop.call_later(self._delay, self.flush)

    def flush(self) -> None:
        lines = self._lines
        if not lines:
            return
        self._lines = []
        self._size = 0
        _write_stderr(b"".join(lines))


def _write_stderr(data: bytes) -> None:
    stream = sys.stderr
    if stream is None:
        return
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        stream.write(data.decode("utf-8", "replace"))
        stream.flush()
        return
    # Lines other loggers wrote through the stream go first.
    stream.flush()
    view = memoryview(data)
    # A stderr nobody reads any more loses its lines; that is no reason to fail a request.
    with contextlib.suppress(OSError):
        while view:
            view = view[os.write(descriptor, view) :]


ACCESS_LINES = LineBatch()
atexit.register(ACCESS_LINES.flush)
_direct = False


def writes_lines_directly() -> bool:
    """Whether `configure_logging` set up the stderr handler, so a `LineBatch` may write beside it."""
    return _direct


def access_line(timestamp: float, message: str, values: msgspec.Struct) -> bytes:
    """The line `JsonFormatter` would write for an INFO record of the access logger, ``values`` its fields."""
    head = f'{{"time":"{utc_time(timestamp)}","level":"info","logger":"{ACCESS_LOGGER}","message":'
    return head.encode() + msgspec.json.encode(message) + b"," + msgspec.json.encode(values)[1:] + b"\n"


def fields(values: msgspec.Struct | dict[str, Any]) -> dict[str, Any]:
    """``extra=`` for a log call whose line carries more fields than its message."""
    return {_FIELDS: values}


def level_from_environment(default: LogLevel = DEFAULT_LEVEL) -> LogLevel:
    """``LOG_LEVEL`` before the configuration is read (an unknown value is the config loader's to refuse)."""
    value = os.environ.get(LEVEL_VARIABLE, "").strip().lower()
    return next((level for level in LOG_LEVELS if level == value), default)


def configure_logging(level: LogLevel | None = None) -> None:
    """Route every logger to one JSON handler on stderr at ``level`` (``LOG_LEVEL`` or info if None).

    Safe to call again: once the configuration is read, with its level.
    """
    # No line shows the caller, thread or process, so the logging module is told not to look them
    # up (its documented optimisation): an access line is written for every request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    global _direct
    numeric = logging.getLevelName((level or level_from_environment()).upper())
    ACCESS_LINES.flush()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in (ACCESS_LOGGER, *_GRANIAN_LOGGERS):
        # Granian's own set-up gives its loggers handlers of their own that write plain text.
        logger = logging.getLogger(name)
        for old in logger.handlers[:]:
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    # Python's own warnings become log lines too, in the same format.
    logging.captureWarnings(True)
    _direct = True


def granian_log_config(level: LogLevel) -> dict[str, Any]:
    """Granian's ``log_dictconfig``: its loggers write through the same JSON formatter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False} for name in _GRANIAN_LOGGERS
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }
