"""The ceiling of the stack: a bare ASGI app on Granian, as konifer-edge runs it (same interface, loop and
number of workers), answering the hot scenario's bytes from memory with no framework, database or logging.

Not a goal and not a competitor: a reference for what Python on Granian can serve on this machine, so that
the distance between konifer-edge and nginx can be split into "the stack" and "konifer-edge's own work".
BENCH_CEILING_FILE names the file whose bytes it serves; If-None-Match with its ETag answers 304.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BODY = Path(os.environ["BENCH_CEILING_FILE"]).read_bytes()
ETAG = b'"ceiling"'
HEADERS = [(b"content-type", b"image/jpeg"), (b"content-length", str(len(BODY)).encode()), (b"etag", ETAG)]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if any(name == b"if-none-match" and value == ETAG for name, value in scope["headers"]):
        await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", ETAG)]})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
