"""The same ceiling as bench/ceiling_app.py on Granian's other interface, RSGI (its native one), with the
same workers and loop: what Python on Granian can serve when no ASGI messages are built or read.

BENCH_CEILING_FILE names the file whose bytes it serves; If-None-Match with its ETag answers 304.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BODY = Path(os.environ["BENCH_CEILING_FILE"]).read_bytes()
ETAG = '"ceiling"'
HEADERS = [("content-type", "image/jpeg"), ("content-length", str(len(BODY))), ("etag", ETAG)]


class Ceiling:
    def __rsgi_init__(self, loop: Any) -> None:
        return None

    def __rsgi_del__(self, loop: Any) -> None:
        return None

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        if scope.headers.get("if-none-match") == ETAG:
            protocol.response_empty(304, [("etag", ETAG)])
            return
        protocol.response_bytes(200, HEADERS, BODY)


app = Ceiling()
