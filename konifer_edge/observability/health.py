"""Liveness (`/health`: the process answers) and readiness (`/ready`: its dependencies answer)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response, get

from konifer_edge.observability import metrics

_CHECK_TIMEOUT_SECONDS = 2.0


class HealthWire(msgspec.Struct):
    status: str
    checks: dict[str, str] = {}


def _json(value: HealthWire, status: int) -> Response[bytes]:
    return Response(content=msgspec.json.encode(value), status_code=status, media_type="application/json")


@get("/health", sync_to_thread=False)
def health() -> Response[bytes]:
    return _json(HealthWire(status="ok"), 200)


@get("/ready")
async def ready(request: Request[Any, Any, Any]) -> Response[bytes]:
    runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    for name, probe in (("database", runtime.repository.ping), ("object_store", runtime.objects.ping)):
        try:
            await asyncio.wait_for(probe(), _CHECK_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except Exception as error:  # any failure means not ready; the reason goes to the answer
            checks[name] = f"unavailable: {type(error).__name__}"
    if getattr(request.app.state, "shutting_down", False):
        checks["lifecycle"] = "shutting down"
    healthy = all(value == "ok" for value in checks.values())
    return _json(HealthWire(status="ok" if healthy else "unavailable", checks=checks), 200 if healthy else 503)


@get("/metrics", sync_to_thread=False, include_in_schema=False)
def metrics_endpoint() -> Response[bytes]:
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)


HEALTH_ROUTES = [health, ready, metrics_endpoint]
