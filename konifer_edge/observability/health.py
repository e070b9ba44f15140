"""Health answers, in Konifer's forms and ours.

- `/health`: Konifer's liveness, exactly `{"status":"okay"}` once the app has started; it
  probes nothing, so an orchestrator never restarts a node for a dependency's outage.
- `/health/live`: 200 with an empty body, checking nothing.
- `/health/ready`: 200 or 503 with an empty body, from the same checks as `/ready`, cached
  and refreshed at most every 5 s so a probe storm cannot become a database storm.
- `/ready`: our readiness with the checks named, probed afresh on every request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from konifer_edge.observability import metrics

_CHECK_TIMEOUT_SECONDS = 2.0
READY_CACHE_SECONDS = 5.0
HEALTH_BODY = b'{"status":"okay"}'

AnyRequest = Request[Any, Any, Any]


class _Pingable(Protocol):
    async def ping(self) -> None: ...


class Dependencies(Protocol):
    """What readiness checks, as the app's runtime holds it; named here so that this package imports no service."""

    @property
    def repository(self) -> _Pingable: ...
    @property
    def objects(self) -> _Pingable: ...


class HealthWire(msgspec.Struct):
    status: str
    checks: dict[str, str] = {}


def _json(value: HealthWire, status: int) -> Response[bytes]:
    return Response(content=msgspec.json.encode(value), status_code=status, media_type="application/json")


async def _probe(runtime: Dependencies) -> dict[str, str]:
    """Each dependency's state, probed concurrently, none waiting longer than the check timeout."""

    async def check(probe: Any) -> str:
        try:
            await asyncio.wait_for(probe(), _CHECK_TIMEOUT_SECONDS)
        except Exception as error:  # any failure means not ready; the reason goes to the answer
            return f"unavailable: {type(error).__name__}"
        return "ok"

    database, object_store = await asyncio.gather(check(runtime.repository.ping), check(runtime.objects.ping))
    return {"database": database, "object_store": object_store}


def _shutting_down(app: Litestar) -> bool:
    return bool(getattr(app.state, "shutting_down", False))


class _ReadyCache:
    """The last dependency verdict of this process and when it was taken; one refresh at a time."""

    def __init__(self) -> None:
        self.healthy = False
        self.checked_at: float | None = None
        self.lock = asyncio.Lock()

    async def healthy_now(self, runtime: Dependencies) -> bool:
        if self._fresh():
            return self.healthy
        async with self.lock:
            if not self._fresh():  # another request may have refreshed it while this one waited
                checks = await _probe(runtime)
                self.healthy = all(value == "ok" for value in checks.values())
                self.checked_at = time.monotonic()
        return self.healthy

    def _fresh(self) -> bool:
        return self.checked_at is not None and time.monotonic() - self.checked_at < READY_CACHE_SECONDS


def _ready_cache(app: Litestar) -> _ReadyCache:
    cache: _ReadyCache | None = getattr(app.state, "ready_cache", None)
    if cache is None:
        cache = _ReadyCache()
        app.state.ready_cache = cache
    return cache


@get("/health", sync_to_thread=False)
def health() -> Response[bytes]:
    return Response(content=HEALTH_BODY, media_type="application/json")


_EMPTY_OK = ResponseSpec(data_container=None, description="Up (empty body)")


@get("/health/live", sync_to_thread=False, responses={200: _EMPTY_OK})
def health_live() -> Response[bytes]:
    return Response(content=b"", media_type="text/plain")


@get(
    "/health/ready",
    responses={
        200: ResponseSpec(data_container=None, description="Ready (empty body)"),
        503: ResponseSpec(data_container=None, description="Not ready: a dependency or the lifecycle (empty body)"),
    },
)
async def health_ready(request: AnyRequest) -> Response[bytes]:
    runtime: Dependencies | None = request.app.state.get("runtime")
    healthy = (
        runtime is not None and not _shutting_down(request.app) and await _ready_cache(request.app).healthy_now(runtime)
    )
    return Response(content=b"", status_code=200 if healthy else 503, media_type="text/plain")


@get("/ready")
async def ready(request: AnyRequest) -> Response[bytes]:
    checks = await _probe(request.app.state.runtime)
    if _shutting_down(request.app):
        checks["lifecycle"] = "shutting down"
    healthy = all(value == "ok" for value in checks.values())
    return _json(HealthWire(status="ok" if healthy else "unavailable", checks=checks), 200 if healthy else 503)


@get("/metrics", sync_to_thread=False, include_in_schema=False)
def metrics_endpoint() -> Response[bytes]:
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)


HEALTH_ROUTES = [health, health_live, health_ready, ready, metrics_endpoint]
