"""Log set-up, the same in the command-line process and in every server worker."""

from __future__ import annotations

import logging

ACCESS_LOGGER = "konifer_edge.access"


def configure_logging() -> None:
    # An access line is logged for every request. No format here shows the caller, thread or
    # process, so the logging module is told not to look them up (its documented optimisation).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # pyvips reports every colour conversion at INFO.
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    access = logging.getLogger(ACCESS_LOGGER)
    if access.handlers:
        return
    # Access lines are JSON already; they go out as they are, one per line.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
