"""Counts kept in the process and folded into prometheus-client equal counting there directly."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from konifer_edge.observability.metrics import PendingCounter, PendingHistogram, fold_pending

BUCKETS = (0.001, 0.01, 0.1, 1.0)
VALUES = [0.0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.5, 1.0, 3.0, 250.0]


def test_folded_counts_and_observations_equal_direct_ones() -> None:
    direct, folded = CollectorRegistry(), CollectorRegistry()
    counters = [Counter("c", "c", ["a", "b"], registry=registry) for registry in (direct, folded)]
    histograms = [Histogram("h", "h", ["a"], buckets=BUCKETS, registry=registry) for registry in (direct, folded)]
    pending_counter = PendingCounter(counters[1])
    pending_histogram = PendingHistogram(histograms[1], BUCKETS)

    for round_ in range(3):
        for value in VALUES:
            label = "x" if value < 0.5 else "y"
            counters[0].labels(label, "1").inc(value)
            pending_counter.add((label, "1"), value)
            histograms[0].labels(label).observe(value)
            pending_histogram.observe((label,), value)
        if round_ == 0:
            # The series exist from the first increment on, at zero until the fold.
            assert 'c_total{a="x",b="1"} 0.0' in generate_latest(folded).decode()
        fold_pending()

    assert samples(folded) == pytest.approx(samples(direct))
    fold_pending()  # nothing pending: nothing changes
    assert samples(folded) == pytest.approx(samples(direct))


def samples(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }
