"""Every line the server writes is JSON of one shape, at the configured level; `/metrics` may move to its own port."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.server import ServerStartError
from tests.support.services import PostgresService, free_port

COMMON_FIELDS = ["time", "level", "logger", "message"]
ACCESS_FIELDS = {"method", "path", "route", "status", "duration_ms", "cache", "bytes", "request_id"}


def store_and_fetch(deployment: Deployment, path: str) -> None:
    stored = deployment.client.post(
        f"/assets{path}",
        files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", make_image("png"), "image/png")},
    )
    assert stored.status_code == 201, stored.text
    assert deployment.client.get(f"/assets{path}/-/metadata").status_code == 200
    assert deployment.client.get("/no-such-route").status_code == 404


def log_lines(deployment: Deployment) -> list[dict[str, Any]]:
    text = deployment.server.stderr_path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the server wrote nothing to stderr"
    parsed = []
    for line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(value, dict)
        assert list(value)[:4] == COMMON_FIELDS, line
        parsed.append(value)
    return parsed


def test_every_line_is_json_with_the_access_lines_common_fields(tmp_path: Path, postgres: PostgresService) -> None:
    deployment = Deployment(tmp_path, "", store="filesystem", postgres=postgres).start()
    try:
        store_and_fetch(deployment, "/logs/json")
    finally:
        deployment.stop()
    lines = log_lines(deployment)
    loggers = {line["logger"] for line in lines}
    # konifer-edge's own start-up line, Granian's process manager and the access log: one format.
    assert {"konifer_edge", "_granian", "konifer_edge.access"} <= loggers, loggers
    access = [line for line in lines if line["logger"] == "konifer_edge.access"]
    by_path = {line["path"]: line for line in access}
    assert by_path["/no-such-route"]["status"] == 404
    stored = by_path["/assets/logs/json"]
    assert set(stored) >= ACCESS_FIELDS
    assert (stored["level"], stored["method"], stored["status"]) == ("info", "POST", 201)
    assert stored["message"] == "POST /assets/logs/json 201"
    assert all(line["time"].endswith("+00:00") for line in lines)


def test_the_level_comes_from_the_configuration_and_the_environment(tmp_path: Path, postgres: PostgresService) -> None:
    config = '[logging]\nlevel = "debug"\n'
    # LOG_LEVEL wins over the file, as every environment override does.
    deployment = Deployment(tmp_path, config, store="filesystem", postgres=postgres, env={"LOG_LEVEL": "WARNING"})
    deployment.start()
    try:
        store_and_fetch(deployment, "/logs/quiet")
    finally:
        deployment.stop()
    text = deployment.server.stderr_path.read_text()
    levels = [json.loads(line)["level"] for line in text.splitlines() if line.strip()]
    assert not {"debug", "info"} & set(levels), levels


def test_a_bad_level_is_refused_naming_the_key(tmp_path: Path, postgres: PostgresService) -> None:
    deployment = Deployment(tmp_path, '[logging]\nlevel = "loud"\n', store="filesystem", postgres=postgres)
    with pytest.raises(ServerStartError, match=r"logging\.level"):
        deployment.start()


def test_metrics_on_their_own_port_leave_the_main_port(tmp_path: Path, postgres: PostgresService) -> None:
    metrics_port = free_port()
    deployment = Deployment(tmp_path, f"[metrics]\nport = {metrics_port}\n", store="filesystem", postgres=postgres)
    deployment.start()
    try:
        store_and_fetch(deployment, "/metrics/port")
        assert deployment.client.get("/metrics").status_code == 404
        with httpx.Client(base_url=f"http://127.0.0.1:{metrics_port}", timeout=10) as client:
            scraped = client.get("/metrics")
            assert scraped.status_code == 200
            assert scraped.headers["content-type"].startswith("text/plain")
            # The samples of the server's workers, counted on the main port.
            assert 'konifer_http_requests_total{cache="none",route="store",status_class="2xx"}' in scraped.text
            assert client.get("/").status_code == 404
            assert client.get("/assets/metrics/port").status_code == 404
    finally:
        deployment.stop()


def test_metrics_port_from_the_environment(tmp_path: Path, postgres: PostgresService) -> None:
    metrics_port = free_port()
    environment = {"METRICS_PORT": str(metrics_port)}
    deployment = Deployment(tmp_path, "", store="filesystem", postgres=postgres, env=environment)
    deployment.start()
    try:
        assert deployment.client.get("/metrics").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).status_code == 200
    finally:
        deployment.stop()
