"""Prometheus metrics: names with the `konifer_` prefix in base units, labels of low cardinality only.

A path or entry id never becomes a label. With several Granian workers, prometheus-client's
multiprocess mode aggregates every worker's samples (`PROMETHEUS_MULTIPROC_DIR`).

The metrics every request moves (requests, durations, bytes, refusals, variant lookups) are counted
in plain numbers first (`Pending`) and folded into prometheus-client at most `FOLD_INTERVAL_SECONDS`
later and before every exposition: in multiprocess mode each increment takes a lock and writes a
mapped file, which would cost more than serving a recorded answer does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

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


FOLD_INTERVAL_SECONDS: Final = 1.0


class PendingCounter:
    """Increments of a labelled counter, kept in this process until `fold` adds them to it.

    The series of a label set is created at its first increment (at zero until the fold), so a
    scrape never misses a series because its count is still pending.
    """

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[tuple[str, ...], Counter] = {}
        self._pending: dict[tuple[str, ...], float] = {}
        _PENDING.append(self)

    def add(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        pending = self._pending
        if labels in pending:
            pending[labels] += amount
        else:
            self._children[labels] = self._counter.labels(*labels)
            pending[labels] = amount

    def fold(self) -> None:
        pending = self._pending
        for labels, amount in pending.items():
            if amount:
                # Zeroed in place: label sets are few, and a known one stays on the cheap branch of `add`.
                pending[labels] = 0.0
                self._children[labels].inc(amount)


class PendingHistogram:
    """Observations of a labelled histogram, kept as bucket counts and a sum until `fold`."""

    def __init__(self, histogram: Histogram, buckets: tuple[float, ...]) -> None:
        self._histogram = histogram
        self._bounds = (*buckets, math.inf)
        self._children: dict[tuple[str, ...], Histogram] = {}
        # Per label set: the count of each bucket (not cumulative), then the sum.
        self._pending: dict[tuple[str, ...], list[float]] = {}
        _PENDING.append(self)

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        counts = self._pending.get(labels)
        if counts is None:
            self._children[labels] = self._histogram.labels(*labels)
            counts = self._pending[labels] = [0.0] * (len(self._bounds) + 1)
        # The bucket prometheus-client would pick: the first upper bound >= value.
        counts[bisect_left(self._bounds, value)] += 1
        counts[-1] += value

    def fold(self) -> None:
        for labels, counts in self._pending.items():
            if not any(counts):
                continue
            child = self._children[labels]
            # prometheus-client has no call that adds many observations at once: its own `observe`
            # adds the value to `_sum` and one to the value's (non-cumulative) bucket.
            for index, count in enumerate(counts[:-1]):
                if count:
                    child._buckets[index].inc(count)
            child._sum.inc(counts[-1])
            counts[:] = [0.0] * len(counts)


_PENDING: list[PendingCounter | PendingHistogram] = []


def fold_pending() -> None:
    """Add what this process counted since the last fold to prometheus-client's values."""
    for pending in _PENDING:
        pending.fold()


@asynccontextmanager
async def folding(interval: float = FOLD_INTERVAL_SECONDS) -> AsyncIterator[None]:
    """Fold pending counts every ``interval`` seconds while open, and once more on leaving."""

    async def fold_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            fold_pending()

    task = asyncio.create_task(fold_forever(), name="metrics fold")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        fold_pending()


HTTP_REQUESTS = PendingCounter(REQUESTS)
HTTP_DURATION = PendingHistogram(REQUEST_DURATION, _FAST)
HTTP_BYTES = PendingCounter(SERVED_BYTES)
REFUSALS = PendingCounter(REJECTED_INPUTS)
LOOKUPS = PendingCounter(VARIANT_LOOKUPS)


def exposition() -> tuple[bytes, str]:
    """The text format, aggregated over workers when running in multiprocess mode.

    This worker's pending counts are folded first, so its own requests are all in the answer;
    another worker's may be up to `FOLD_INTERVAL_SECONDS` behind.
    """
    fold_pending()
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
