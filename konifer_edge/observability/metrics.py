"""Prometheus metrics: names with the `konifer_` prefix in base units, labels of low cardinality only.

A path or entry id never becomes a label. With several Granian workers, prometheus-client's
multiprocess mode aggregates every worker's samples (`PROMETHEUS_MULTIPROC_DIR`).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics import MetricWrapperBase

T = TypeVar("T")

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_RENDER = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("konifer_http_requests_total", "HTTP requests answered", ["route", "status_class", "cache"])
REQUEST_DURATION = Histogram(
    "konifer_http_request_duration_seconds", "Time to answer an HTTP request", ["route"], buckets=_FAST
)
SERVED_BYTES = Counter("konifer_http_response_bytes_total", "Body bytes sent", ["route"])
RENDERS = Counter("konifer_renders_total", "Variants rendered", ["format"])
RENDER_DURATION = Histogram(
    "konifer_render_duration_seconds", "Time to render and encode a variant", ["format"], buckets=_RENDER
)
VARIANT_LOOKUPS = Counter("konifer_variant_lookups_total", "Variant resolutions", ["outcome"])
OBJECT_STORE_DURATION = Histogram(
    "konifer_object_store_duration_seconds", "Object-store operation time", ["operation"], buckets=_FAST
)
DATABASE_DURATION = Histogram(
    "konifer_database_duration_seconds", "Metadata repository operation time", ["operation"], buckets=_FAST
)
IMAGING_IN_USE = Gauge(
    "konifer_imaging_pool_in_use", "Renders and upload decodes running or queued", ["pool"], multiprocess_mode="livesum"
)
IMAGING_CAPACITY = Gauge(
    "konifer_imaging_pool_capacity",
    "Renders and upload decodes admitted at most",
    ["pool"],
    multiprocess_mode="livesum",
)
DECODE_FAILURES = Counter(
    "konifer_decode_failures_total", "Upload decodes whose process crashed or was stopped at the timeout", ["cause"]
)
URL_DOWNLOADS = Counter("konifer_url_source_downloads_total", "URL-source downloads", ["outcome"])
REJECTED_INPUTS = Counter("konifer_rejected_inputs_total", "Requests refused with a 4xx", ["reason"])
SHARE_SERVES = Counter("konifer_share_serves_total", "Requests to share links, by outcome", ["outcome"])
_INFERENCE = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RULE_INFERENCE_DURATION = Histogram(
    "konifer_rule_inference_duration_seconds",
    "Time of one upload-rules model run, by tower (image: one upload; text: one batch of prompts)",
    ["tower"],
    buckets=_INFERENCE,
)
RULE_DECISIONS = Counter(
    "konifer_rule_decisions_total",
    "Uploads decided by upload rules, by outcome and the rule that decided ('(default)': no rule overrode default)",
    ["outcome", "rule"],
)
RULE_RESULTS = Counter(
    "konifer_rule_results_total", "Upload rules evaluated on uploads, by rule and result", ["rule", "result"]
)
# At 0 from the start, so that rates and alerts see the first inference and decision.
for _tower in ("image", "text"):
    RULE_INFERENCE_DURATION.labels(_tower)
for _outcome in ("accepted", "rejected"):
    RULE_DECISIONS.labels(_outcome, "(default)")
RESPONSES_CUT = Counter(
    "konifer_http_responses_cut_total",
    "Answers whose body had started when the object store failed or stalled, so the connection was cut",
    ["route"],
)


def export_at_zero(known: Mapping[MetricWrapperBase, Iterable[str]]) -> None:
    """Give every known label value its series from start-up, at zero.

    A series that appears only at its first use is missing from dashboards and alerts until
    then, and `rate()` over it misses that first increment.
    """
    for metric, values in known.items():
        for value in values:
            metric.labels(value)


def exposition() -> tuple[bytes, str]:
    """The text format, aggregated over workers when running in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


@asynccontextmanager
async def timed(histogram: Histogram, label: str) -> AsyncIterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(label).observe(time.perf_counter() - started)


def instrument(target: Any, histogram: Histogram, names: tuple[str, ...]) -> None:
    """Time the named coroutine methods of one object, labelled by method name."""
    for name in names:
        method: Callable[..., Awaitable[Any]] = getattr(target, name)

        def timed_method(*args: Any, __method: Any = method, __name: str = name, **kwargs: Any) -> Awaitable[Any]:
            async def run() -> Any:
                started = time.perf_counter()
                try:
                    return await __method(*args, **kwargs)
                finally:
                    histogram.labels(__name).observe(time.perf_counter() - started)

            return run()

        setattr(target, name, timed_method)
