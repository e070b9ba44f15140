"""`/metrics` on a port of its own (``metrics.port``), so that it need not be reachable through the CDN.

It runs in `serve`'s own process, beside Granian's worker manager, and answers from the samples every
worker writes to the multiprocess directory, so one scrape sees the whole node, as on the main port.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from konifer_edge.observability import metrics

log = logging.getLogger(__name__)

METRICS_PATH: Final = "/metrics"
_NOT_FOUND: Final = b'{"error":"not_found","message":"Only /metrics is served on this port"}'


class _MetricsHandler(BaseHTTPRequestHandler):
    server_version = "konifer-edge"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        if self.path.partition("?")[0] != METRICS_PATH:
            body, content_type, status = _NOT_FOUND, "application/json", 404
        else:
            body, content_type = metrics.exposition()
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Scrapes are not requests worth a line each (the main port does not log /metrics either).
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def start_metrics_server(host: str, port: int) -> ThreadingHTTPServer:
    """Listen on ``host:port`` in a daemon thread; raises OSError when the port cannot be bound."""
    server_class = _Server6 if ":" in host else _Server
    server = server_class((host, port), _MetricsHandler)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    log.info("serving /metrics on http://%s:%d", f"[{host}]" if ":" in host else host, port)
    return server
