"""`/metrics` after a scripted workload, and the Grafana dashboards against what `/metrics` exports.

The workload runs over HTTP against a real server (which, started as `serve` starts it, runs
prometheus-client in multiprocess mode). Counters are compared before and after, so the test
holds however much traffic the shared server saw earlier. Every metric name in every PromQL
expression of every dashboard in grafana/dashboards/ must be one the server exports.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from konifer_edge.observability import metrics as metrics_module
from tests.integration.conftest import STANDARD_CONFIG
from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService
from tests.support.source_server import SourceServer

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO_ROOT / "grafana" / "dashboards"
OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"


# -- the exposition --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exposition:
    families: dict[str, str]  # family name -> type
    samples: list[tuple[str, dict[str, str], float]]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels`."""
        return sum(
            value
            for sample, sample_labels, value in self.samples
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items())
        )

    def where(self, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {
            tuple(sorted(sample_labels.items())): value
            for sample, sample_labels, value in self.samples
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items())
        }

    @property
    def sample_names(self) -> set[str]:
        return {name for name, _, _ in self.samples}


def scrape(deployment: Deployment) -> Exposition:
    response = deployment.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    families: dict[str, str] = {}
    samples: list[tuple[str, dict[str, str], float]] = []
    for family in text_string_to_metric_families(response.text):
        families[family.name] = family.type
        samples.extend((sample.name, dict(sample.labels), sample.value) for sample in family.samples)
    return Exposition(families=families, samples=samples)


def changes(before: Exposition, after: Exposition, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def requests(before: Exposition, after: Exposition, route: str, status_class: str, cache: str | None = None) -> float:
    labels = {"route": route, "status_class": status_class} | ({"cache": cache} if cache is not None else {})
    return changes(before, after, "konifer_http_requests_total", **labels)


def served_from_store(before: Exposition, after: Exposition, route: str, status_class: str) -> float:
    """Answers whose variant was already stored: any cache outcome but `rendered` and `none`."""
    moved = 0.0
    for labels, value in after.where("konifer_http_requests_total", route=route, status_class=status_class).items():
        cache = dict(labels)["cache"]
        if cache not in ("rendered", "none"):
            moved += value - before.where("konifer_http_requests_total").get(labels, 0.0)
    return moved


# -- the workload ----------------------------------------------------------------------------------


def store(deployment: Deployment, path: str, image: bytes, mime: str) -> dict[str, Any]:
    answer = deployment.client.post(
        f"/assets{path}",
        files={"metadata": (None, json.dumps({"alt": "metrics"}), "application/json"), "asset": ("i", image, mime)},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_scripted_workload_moves_each_counter_by_what_it_did(
    fs_api: Deployment, path: str, source_server: SourceServer
) -> None:
    client = fs_api.client
    png = make_image("png", 64, 48)
    before = scrape(fs_api)

    store(fs_api, path, png, "image/png")
    url = source_server.add(f"/metrics/{uuid.uuid4().hex[:10]}/ok.jpg", make_image("jpg", 32, 24), "image/jpeg")
    from_url = client.post(f"/assets{path}/from-url", json={"url": url})
    assert from_url.status_code == 201, from_url.text
    refused_url = client.post(f"/assets{path}/refused", json={"url": "http://not-allowed.example/cat.png"})
    assert refused_url.status_code == 403, refused_url.text

    link = client.get(f"/assets{path}")
    content = client.get(f"/assets{path}/-/entry/0/content")
    download = client.get(f"/assets{path}/-/download")
    redirect = client.get(f"/assets{path}/-/redirect")
    metadata = client.get(f"/assets{path}/-/metadata")
    assert [a.status_code for a in (link, content, download, redirect, metadata)] == [200, 200, 200, 307, 200]
    assert content.content == png

    variant = f"/assets{path}/-/entry/0/content?w=20&format=webp"
    miss = client.get(variant)
    hit = client.get(variant)
    assert (miss.status_code, miss.headers["K-Cache-Status"]) == (200, "miss")
    assert (hit.status_code, hit.headers["K-Cache-Status"]) == (200, "hit")
    not_modified = client.get(variant, headers={"If-None-Match": hit.headers["ETag"]})
    assert not_modified.status_code == 304

    unknown_word = client.get(f"/assets{path}/-/sideways")
    assert unknown_word.status_code == 400
    assert unknown_word.json()["error"] == "invalid_selector"
    missing = client.get(f"/assets/nothing/here/{uuid.uuid4().hex}/-/metadata")
    assert missing.status_code == 404
    not_an_image = client.post(
        f"/assets{path}",
        files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", b"plain text", "image/png")},
    )
    assert not_an_image.status_code == 415
    deleted = client.delete(f"/assets{path}/-/entry/0")
    assert deleted.status_code == 204

    after = scrape(fs_api)

    # Requests by route, status class and cache outcome.
    assert requests(before, after, "store", "2xx") == 2
    assert requests(before, after, "store", "4xx") == 2  # the refused URL and the text "image"
    assert requests(before, after, "fetch_link", "2xx") == 1
    assert requests(before, after, "fetch_download", "2xx") == 1
    assert requests(before, after, "fetch_redirect", "3xx") == 1
    assert requests(before, after, "fetch_metadata", "2xx") == 1
    assert requests(before, after, "fetch_metadata", "4xx") == 1
    # The selector could not be read, so the fetch never learnt its return format.
    assert requests(before, after, "fetch", "4xx") == 1
    assert requests(before, after, "fetch_content", "2xx") == 3
    assert requests(before, after, "fetch_content", "2xx", cache="rendered") == 1
    assert served_from_store(before, after, "fetch_content", "2xx") == 2
    assert requests(before, after, "fetch_content", "3xx") == 1
    assert served_from_store(before, after, "fetch_content", "3xx") == 1
    assert requests(before, after, "delete", "2xx") == 1
    assert changes(before, after, "konifer_http_requests_total", status_class="5xx") == 0

    # Renders and variant lookups: one render, then two answers from the stored variant.
    assert changes(before, after, "konifer_renders_total", format="webp") == 1
    assert changes(before, after, "konifer_renders_total") == 1
    assert changes(before, after, "konifer_render_duration_seconds_count", format="webp") == 1
    assert changes(before, after, "konifer_variant_lookups_total", outcome="miss") == 1
    assert changes(before, after, "konifer_variant_lookups_total", outcome="hit") == 2

    # Refusals by reason, and URL downloads by outcome.
    assert changes(before, after, "konifer_rejected_inputs_total", reason="invalid_selector") == 1
    assert changes(before, after, "konifer_rejected_inputs_total", reason="asset_not_found") == 1
    assert changes(before, after, "konifer_rejected_inputs_total", reason="domain_not_allowed") == 1
    assert changes(before, after, "konifer_rejected_inputs_total", reason="unsupported_format") == 1
    assert changes(before, after, "konifer_rejected_inputs_total") == 4
    assert changes(before, after, "konifer_url_source_downloads_total", outcome="ok") == 1
    assert changes(before, after, "konifer_url_source_downloads_total", outcome="domain_not_allowed") == 1

    # Histograms: one observation per request and per timed call.
    assert changes(before, after, "konifer_http_request_duration_seconds_count", route="store") == 4
    assert changes(before, after, "konifer_http_request_duration_seconds_count", route="fetch_content") == 4
    duration_buckets = after.where("konifer_http_request_duration_seconds_bucket", route="fetch_content")
    assert max(duration_buckets.values()) == after.value(
        "konifer_http_request_duration_seconds_count", route="fetch_content"
    ), "the +Inf bucket counts every observation"
    assert changes(before, after, "konifer_object_store_duration_seconds_count", operation="put") == 3
    assert changes(before, after, "konifer_database_duration_seconds_count", operation="create") == 2
    assert changes(before, after, "konifer_http_request_duration_seconds_sum", route="fetch_content") > 0

    # Bytes: the original went out twice in full (content, download), the variant once (the 304 sends none).
    sent = changes(before, after, "konifer_http_response_bytes_total", route="fetch_content")
    assert sent == len(png) + len(miss.content) + len(hit.content)
    assert changes(before, after, "konifer_http_response_bytes_total", route="fetch_download") == len(png)

    # Saturation: a capacity per worker, and nothing left running.
    assert after.value("konifer_imaging_pool_capacity") >= 1
    assert after.value("konifer_imaging_pool_in_use") == 0


def test_every_metric_is_documented_in_the_operations_guide() -> None:
    text = OPERATIONS_DOC.read_text()
    for name in exported_metric_names():
        assert f"`{name}`" in text, f"{name} is not in docs/operations.md"


def exported_metric_names() -> list[str]:
    """Every metric the service defines, as its samples are named (counters with `_total`)."""
    names = []
    for value in vars(metrics_module).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        for family in value.describe():
            names.append(family.name + ("_total" if family.type == "counter" else ""))
    assert names, "no metric found in konifer_edge.observability.metrics"
    return sorted(set(names))


# -- the dashboards --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$\w+|\[\[\w+\]\])
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z]*)
  | (?P<identifier>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<punctuation>[{}()\[\],])
  | (?P<operator>[-+*/%^<>=!~@]+)
  | (?P<space>\s+)
    """,
    re.VERBOSE,
)
# Words that are PromQL's own, never a metric: aggregations, modifiers and set operators.
_KEYWORDS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
        "quantile", "limitk", "limit_ratio", "by", "without", "on", "ignoring", "group_left", "group_right",
        "bool", "offset", "and", "or", "unless", "atan2", "inf", "nan", "start", "end",
    }
)  # fmt: skip
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def promql_metric_names(expression: str) -> set[str]:
    """The metric names an expression selects: identifiers outside label matchers, ranges,
    label lists and strings that are neither a function being called nor a PromQL keyword."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        assert match is not None, f"cannot read {expression[position:]!r} in {expression!r}"
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append((kind, match.group()))
    names: set[str] = set()
    depth = {"{": 0, "[": 0}
    closing = {"}": "{", "]": "["}
    skip_label_list = False
    parens: list[bool] = []  # per open parenthesis: does it hold a label list?
    for index, (kind, text) in enumerate(tokens):
        if kind == "punctuation":
            if text in depth:
                depth[text] += 1
            elif text in closing:
                depth[closing[text]] -= 1
                assert depth[closing[text]] >= 0, f"unbalanced {text!r} in {expression!r}"
            elif text == "(":
                parens.append(skip_label_list)
                skip_label_list = False
            elif text == ")":
                assert parens, f"unbalanced ')' in {expression!r}"
                parens.pop()
            continue
        if kind != "identifier" or depth["{"] or depth["["] or (parens and parens[-1]):
            continue
        if text in _LABEL_LISTS:
            skip_label_list = True
            continue
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if text in _KEYWORDS or following == "(":
            continue
        names.add(text)
    assert depth == {"{": 0, "[": 0} and not parens, f"unbalanced brackets in {expression!r}"
    return names


def test_the_promql_reader_finds_metric_names_only() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{instance=~"$instance", route!="x"}'
        "[$__rate_interval]))) / ignoring (cache) group_left () sum without (job) (b_total offset 5m)"
        " and on(instance) c > bool 1e3 or max(d[5m:1m] @ end())"
    )
    assert promql_metric_names(expression) == {"a_seconds_bucket", "b_total", "c", "d"}
    assert promql_metric_names('{__name__="x"}') == set()


def dashboard_expressions(dashboard: Any) -> Iterator[str]:
    """Every PromQL expression a dashboard holds: panel targets (at any depth) and query variables."""
    if isinstance(dashboard, dict):
        for key, value in dashboard.items():
            if key == "expr" and isinstance(value, str):
                yield value
            elif key == "templating":
                for variable in value.get("list", []):
                    if variable.get("type") != "query":
                        continue
                    query = variable.get("query")
                    text = query.get("query") if isinstance(query, dict) else query
                    if isinstance(text, str) and text:
                        yield _variable_expression(text)
            else:
                yield from dashboard_expressions(value)
    elif isinstance(dashboard, list):
        for item in dashboard:
            yield from dashboard_expressions(item)


def _variable_expression(query: str) -> str:
    """The PromQL inside a Grafana variable query: `label_values(EXPR, label)` or `query_result(EXPR)`."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query, re.DOTALL)
    if match:
        return match.group(1)
    match = re.fullmatch(r"\s*(?:query_result|metrics)\((.*)\)\s*", query, re.DOTALL)
    if match:
        return match.group(1)
    match = re.fullmatch(r"\s*label_values\(\s*\w+\s*\)\s*", query)
    return "" if match else query


def dashboards() -> list[Path]:
    found = sorted(DASHBOARDS.glob("**/*.json"))
    assert found, f"no dashboard in {DASHBOARDS}"
    return found


def acceptable_sample_names(exposition: Exposition) -> set[str]:
    """What a query may select: each family's samples as Prometheus stores them."""
    names = set(exposition.sample_names)
    for family, kind in exposition.families.items():
        if kind == "counter":
            names.add(f"{family}_total")
        elif kind == "histogram":
            names |= {f"{family}_bucket", f"{family}_sum", f"{family}_count"}
        elif kind == "summary":
            names |= {family, f"{family}_sum", f"{family}_count"}
        else:
            names.add(family)
    return names


def test_every_metric_a_dashboard_queries_is_exported(fs_api: Deployment) -> None:
    # The workload test may not have run first: make sure every family has a sample.
    exposition = scrape(fs_api)
    exported = acceptable_sample_names(exposition)
    missing: dict[str, set[str]] = {}
    for path in dashboards():
        queried: set[str] = set()
        for expression in dashboard_expressions(json.loads(path.read_text())):
            queried |= promql_metric_names(expression)
        assert queried, f"{path.name} queries no metric"
        if queried - exported:
            missing[path.name] = queried - exported
    assert not missing, f"dashboards query metrics the service does not export: {missing}"


@pytest.fixture(scope="module", autouse=True)
def every_family_has_samples(fs_api: Deployment, source_server: SourceServer) -> None:
    """In multiprocess mode a family appears once it has a sample; give each one a sample."""
    path = f"/t/{uuid.uuid4().hex[:12]}/warm"
    store(fs_api, path, make_image("png", 16, 12), "image/png")
    url = source_server.add(f"/metrics/{uuid.uuid4().hex[:10]}/warm.png", make_image("png", 8, 8), "image/png")
    assert fs_api.client.post(f"/assets{path}/url", json={"url": url}).status_code == 201
    assert fs_api.client.get(f"/assets{path}/-/content?w=5&format=png").status_code == 200
    assert fs_api.client.get(f"/assets{path}/-/sideways").status_code == 400


def test_dashboards_are_provisionable(fs_api: Deployment) -> None:
    for path in dashboards():
        dashboard = json.loads(path.read_text())
        assert dashboard.get("uid") and dashboard.get("title"), path.name
        assert dashboard.get("id") is None, f"{path.name}: a provisioned dashboard must not carry a database id"
        variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
        panels = list(_panels(dashboard.get("panels", [])))
        ids = [panel["id"] for panel in panels]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for panel in panels:
            assert {"x", "y", "w", "h"} <= set(panel.get("gridPos", {})), f"{path.name}: {panel.get('title')}"
            if panel.get("type") == "row":
                continue
            for holder in [panel, *panel.get("targets", [])]:
                uid = holder.get("datasource", {}).get("uid")
                if uid is None:
                    continue
                # Either the provisioned data source, or a data-source variable that defaults to it.
                variable = re.fullmatch(r"\$\{?(\w+)\}?", uid)
                if variable:
                    assert variables[variable.group(1)]["type"] == "datasource", uid
                    assert variables[variable.group(1)]["current"]["value"] == "prometheus", uid
                else:
                    assert uid == "prometheus", f"{path.name}: {panel.get('title')} uses data source {uid!r}"
            assert panel.get("targets"), f"{path.name}: {panel.get('title')} has no query"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


# -- a fresh server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    """A server that has answered nothing but the start-up health checks."""
    deployment = Deployment(
        tmp_path_factory.mktemp("metrics-fresh"), STANDARD_CONFIG, store="filesystem", postgres=postgres
    ).start()
    try:
        yield deployment
    finally:
        deployment.stop()


# What each labelled counter must show from start-up, at zero.
KNOWN_AT_START = {
    "konifer_url_source_downloads_total": (
        "outcome",
        {"ok", "invalid_url", "domain_not_allowed", "private_address", "too_large", "upstream_status"}
        | {"upstream_unreachable", "timeout", "too_many_redirects"},
    ),
    "konifer_variant_lookups_total": ("outcome", {"hit", "miss"}),
    "konifer_decode_failures_total": ("cause", {"crash", "timeout"}),
    "konifer_renders_total": ("format", {"jpg", "png", "webp", "avif", "heic", "gif"}),
    "konifer_share_serves_total": (
        "outcome",
        {"served", "not_counted", "not_found", "refused", "revoked", "expired", "exhausted"},
    ),
    "konifer_http_responses_cut_total": ("route", {"fetch_content", "fetch_download"}),
}


def test_a_fresh_server_exports_every_dashboard_metric(fresh_server: Deployment) -> None:
    exposition = scrape(fresh_server)
    exported = acceptable_sample_names(exposition)
    for path in dashboards():
        queried: set[str] = set()
        for expression in dashboard_expressions(json.loads(path.read_text())):
            queried |= promql_metric_names(expression)
        assert not queried - exported, f"{path.name}: missing before any traffic: {queried - exported}"
    # Every metric the service defines (and the operations guide documents), too.
    defined = {name.removesuffix("_total") for name in exported_metric_names()}
    missing = defined - set(exposition.families) - PER_CONFIGURED_RULE
    assert not missing, missing


# Labelled by the names of the configured upload rules alone: a server without rules has no series
# of it (the rules engine exports each configured rule's at zero when it starts).
PER_CONFIGURED_RULE = {"konifer_rule_results"}


def test_a_fresh_server_exports_each_known_label_value_at_zero(fresh_server: Deployment) -> None:
    exposition = scrape(fresh_server)
    for name, (label, values) in KNOWN_AT_START.items():
        found = {dict(labels)[label]: value for labels, value in exposition.where(name).items()}
        assert values <= set(found), f"{name}: no series yet for {values - set(found)}"
        assert all(found[value] == 0 for value in values), (name, found)


def test_the_first_requests_of_several_widths_of_one_image_ask_the_database_once(
    tmp_path: Path, postgres: PostgresService
) -> None:
    """A page's `srcset` asks several widths of a new image at once: the worker that listed the image's
    variants for the first of them, and rendered each, knows the others are not stored yet."""
    deployment = Deployment(tmp_path, STANDARD_CONFIG, store="filesystem", postgres=postgres).start()
    try:
        path = f"/srcset/{uuid.uuid4().hex[:10]}"
        store(deployment, path, make_image("jpg", 320, 240), "image/jpeg")
        before = scrape(deployment)
        widths = (40, 60, 80, 100)
        for width in widths:
            answer = deployment.client.get(f"/assets{path}/-/entry/0/content?w={width}")
            assert (answer.status_code, answer.headers["K-Cache-Status"]) == (200, "miss"), answer.text
        again = deployment.client.get(f"/assets{path}/-/entry/0/content?w=60")
        assert (again.status_code, again.headers["K-Cache-Status"]) == (200, "hit")
        after = scrape(deployment)
        assert changes(before, after, "konifer_renders_total") == len(widths)
        assert changes(before, after, "konifer_database_duration_seconds_count", operation="variant_keys") == 1
        assert changes(before, after, "konifer_database_duration_seconds_count", operation="find_variant") == 0

        # A change of the entry moves the path's generation: what was known goes, and is listed again.
        updated = deployment.client.put(f"/assets{path}/-/entry/0", json={"alt": "changed"})
        assert updated.status_code == 200, updated.text
        listed = deployment.client.get(f"/assets{path}/-/entry/0/content?w=80")
        assert (listed.status_code, listed.headers["K-Cache-Status"]) == (200, "hit")
        later = scrape(deployment)
        assert changes(after, later, "konifer_database_duration_seconds_count", operation="variant_keys") == 1
        assert changes(after, later, "konifer_renders_total") == 0
    finally:
        deployment.stop()
