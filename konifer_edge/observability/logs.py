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
from collections.abc import Iterator
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
_PIPE_BYTES: Final = select.PIPE_BUF
# Enough lines for several pipe-sized writes per flush, few enough that a flush stays short.
_MOST_LINES: Final = 256
_LINES: Final = msgspec.json.Encoder()


class LineBatch:
    """Log lines bound for stderr, kept as the Structs they are made of and written together.

    Each Struct is one JSON line: its fields are the line's, in order, so an access line's Struct
    starts with ``time``, ``level``, ``logger`` and ``message`` like every other line. Encoding a
    whole batch in one `encode_lines` call costs a fraction of encoding its lines one by one, and
    nothing is encoded on the request's way. A batch is written when it holds `_MOST_LINES`, and
    ``delay`` seconds after its first line at the latest (a timer on the running event loop; at
    once when there is none), in writes of at most PIPE_BUF bytes that end at a line's end.
    `flush` writes what is pending: at shutdown, and at exit.
    """

    def __init__(self, delay: float = ACCESS_FLUSH_SECONDS) -> None:
        self._delay = delay
        self._lines: list[msgspec.Struct] = []

    def add(self, line: msgspec.Struct) -> None:
        lines = self._lines
        lines.append(line)
        if len(lines) == 1:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
            else:
                # A timer that fires after its batch was written by size writes an early, smaller batch.
                loop.call_later(self._delay, self.flush)
        elif len(lines) >= _MOST_LINES:
            self.flush()

    def flush(self) -> None:
        lines = self._lines
        if not lines:
            return
        self._lines = []
        _write_stderr(_LINES.encode_lines(lines))


def _pipe_sized(data: bytes) -> Iterator[memoryview]:
    """``data``'s lines in pieces of at most PIPE_BUF bytes (a longer line is a piece of its own)."""
    view = memoryview(data)
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + _PIPE_BYTES) + 1
        if end <= start:
            end = data.find(b"\n", start) + 1 or len(data)
        yield view[start:end]
        start = end


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
    # A stderr nobody reads any more loses its lines; that is no reason to fail a request.
    with contextlib.suppress(OSError):
        for piece in _pipe_sized(data):
            while piece:
                piece = piece[os.write(descriptor, piece) :]


ACCESS_LINES = LineBatch()
atexit.register(ACCESS_LINES.flush)
_direct = False


def writes_lines_directly() -> bool:
    """Whether `configure_logging` set up the stderr handler, so a `LineBatch` may write beside it."""
    return _direct


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
