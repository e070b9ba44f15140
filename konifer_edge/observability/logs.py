"""Log set-up, the same in the command-line process, in Granian's own loggers and in every worker.

Every line on stderr is one JSON object with the same leading fields, whoever logs it: ``time``
(UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and ``message``; a traceback comes as
``exception``, and the access log adds its request fields after these. One parser reads them all.
"""

from __future__ import annotations

import logging
import os
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


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the object given as ``extra=fields(...)`` adds its fields."""

    def format(self, record: logging.LogRecord) -> str:
        common = LogLine(
            time=datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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
    numeric = logging.getLevelName((level or level_from_environment()).upper())
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
