"""CORS per path through HTTP: ordinary answers, errors, repeats answered by the fast path, and preflights."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService

CONFIG = """
[paths."/**"]
object-store.bucket = "assets"

[paths."/anyone/**".cors]
allowed-origins = ["*"]

[paths."/apps/**".cors]
allowed-origins = ["https://app.example.com", "http://localhost:3000"]
allowed-methods = ["GET", "HEAD", "POST"]
allowed-headers = ["Authorization", "Range"]
max-age = "1h"
allow-credentials = true

[paths."/apps/closed/**".cors]
allowed-origins = []
"""

APP = "https://app.example.com"
LOCAL = "http://localhost:3000"
STRANGER = "https://evil.example.net"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path_factory.mktemp("cors"), CONFIG, store="filesystem", postgres=postgres).start()
    try:
        yield deployment
    finally:
        deployment.stop()


def store(server: Deployment, path: str) -> None:
    response = server.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, json.dumps({"alt": "cors"}), "application/json"),
            "asset": ("a.png", make_image("png", 40, 20), "image/png"),
        },
    )
    assert response.status_code == 201, response.text


def get(server: Deployment, url: str, origin: str | None, **headers: str) -> httpx.Response:
    sent = dict(headers) | ({"Origin": origin} if origin else {})
    return server.client.get(url, headers=sent)


def vary(response: httpx.Response) -> set[str]:
    return {part.strip().lower() for value in response.headers.get_list("vary") for part in value.split(",")}


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def test_a_path_without_cors_sends_no_cors_headers(server: Deployment) -> None:
    path = unique("/plain")
    store(server, path)
    response = get(server, f"/assets{path}/-/metadata", APP)
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("access-control-")]
    assert "origin" not in vary(response)


def test_any_origin_is_answered_with_a_star_and_no_vary(server: Deployment) -> None:
    path = unique("/anyone")
    store(server, path)
    for origin in (APP, STRANGER, None):
        response = get(server, f"/assets{path}/-/metadata", origin)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert "ETag" in response.headers["access-control-expose-headers"]
        assert "access-control-allow-credentials" not in response.headers
        assert "origin" not in vary(response)


def test_named_origins_are_echoed_and_others_get_nothing(server: Deployment) -> None:
    path = unique("/apps")
    store(server, path)
    url = f"/assets{path}/-/metadata"
    for origin in (APP, LOCAL):
        allowed = get(server, url, origin)
        assert allowed.headers["access-control-allow-origin"] == origin
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "Konifer-Alt" in allowed.headers["access-control-expose-headers"]
        assert "origin" in vary(allowed)
    for origin in (STRANGER, None):
        refused = get(server, url, origin)
        assert refused.status_code == 200
        assert "access-control-allow-origin" not in refused.headers
        # The answer still depends on the Origin, so a shared cache must keep them apart.
        assert "origin" in vary(refused)


def test_a_deeper_pattern_can_turn_cors_off(server: Deployment) -> None:
    path = unique("/apps/closed")
    store(server, path)
    response = get(server, f"/assets{path}/-/metadata", APP)
    assert "access-control-allow-origin" not in response.headers
    assert "origin" not in vary(response)


def test_errors_carry_cors_so_the_browser_can_read_them(server: Deployment) -> None:
    missing = get(server, f"/assets{unique('/apps')}/-/metadata", APP)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.headers["access-control-allow-origin"] == APP
    refused = get(server, f"/assets{unique('/apps')}/-/content?w=nonsense", APP)
    assert refused.status_code == 400
    assert refused.headers["access-control-allow-origin"] == APP


def test_repeats_from_the_fast_path_answer_each_requests_own_origin(server: Deployment) -> None:
    """The fast path replays a recorded answer: its CORS headers must still be this request's."""
    path = unique("/apps")
    store(server, path)
    for url in (f"/assets{path}/-/entry/0/content?w=20&format=webp", f"/assets{path}/-/entry/0/metadata"):
        first = get(server, url, APP)
        assert first.status_code == 200
        for origin, expected in ((LOCAL, LOCAL), (STRANGER, None), (None, None), (APP, APP), (LOCAL, LOCAL)):
            repeat = get(server, url, origin)
            assert repeat.status_code == 200
            assert repeat.content == first.content
            assert repeat.headers.get("access-control-allow-origin") == expected, (url, origin)
            assert "origin" in vary(repeat)
        revalidated = get(server, url, LOCAL, **{"If-None-Match": first.headers.get("etag", '"none"')})
        assert revalidated.headers.get("access-control-allow-origin") == LOCAL


def test_a_negotiated_answer_varies_by_accept_and_origin(server: Deployment) -> None:
    path = unique("/apps")
    store(server, path)
    url = f"/assets{path}/-/entry/0/content?w=20"
    for _ in range(3):
        response = get(server, url, APP, Accept="image/webp,*/*")
        assert response.status_code == 200
        assert {"accept", "origin"} <= vary(response)
        assert len(response.headers.get_list("vary")) == 1, "one Vary header, not two"


def preflight(server: Deployment, url: str, origin: str, method: str, headers: str | None = None) -> httpx.Response:
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return server.client.request("OPTIONS", url, headers=sent)


def test_a_preflight_is_answered_with_the_paths_rules(server: Deployment) -> None:
    url = f"/assets{unique('/apps')}/-/content"
    response = preflight(server, url, LOCAL, "GET", "range, authorization")
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == LOCAL
    assert response.headers["access-control-allow-methods"] == "GET, HEAD, POST"
    assert {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")} == {
        "authorization",
        "range",
    }
    assert response.headers["access-control-max-age"] == "3600"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert {"origin", "access-control-request-method", "access-control-request-headers"} <= vary(response)
    anyone = preflight(server, f"/assets{unique('/anyone')}", STRANGER, "GET")
    assert anyone.status_code == 204
    assert anyone.headers["access-control-allow-origin"] == "*"
    assert anyone.headers["access-control-max-age"] == "600"
    assert anyone.headers["access-control-allow-methods"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("origin", "method", "headers", "said"),
    [
        (STRANGER, "GET", None, "origin"),
        (APP, "DELETE", None, "DELETE"),
        (APP, "GET", "X-Custom", "X-Custom"),
    ],
)
def test_a_preflight_outside_the_rules_is_a_clear_403(
    server: Deployment, origin: str, method: str, headers: str | None, said: str
) -> None:
    response = preflight(server, f"/assets{unique('/apps')}", origin, method, headers)
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "cors_refused" and said in body["message"]
    assert "access-control-allow-origin" not in response.headers


def test_paths_and_other_urls_follow_the_path_and_root_rules(server: Deployment) -> None:
    listed = get(server, "/paths/anyone", STRANGER)
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == "*"
    # The root pattern has no CORS: share links, /shares and the schema send none.
    schema = get(server, "/schema/openapi.json", APP)
    assert "access-control-allow-origin" not in schema.headers


def test_a_preflight_where_cors_is_off_reaches_the_routes(server: Deployment) -> None:
    response = preflight(server, f"/assets{unique('/plain')}", APP, "GET")
    # The framework's own OPTIONS answer (its Allow header), without a CORS header: the browser refuses.
    assert response.status_code == 204
    assert "GET" in response.headers["allow"]
    assert not [name for name in response.headers if name.startswith("access-control-")]


def test_cors_settings_are_checked_at_start_up(tmp_path: Path) -> None:
    from konifer_edge.config import ConfigError, load_config

    for text, said in (
        ('[paths."/**".cors]\nallowed-origins = ["*"]\nallow-credentials = true\n', "allow-credentials"),
        ('[paths."/**".cors]\nallowed-origins = ["app.example.com"]\n', "not an origin"),
        ('[paths."/**".cors]\nallowed-origins = ["*"]\nallowed-headers = ["Bad Header"]\n', "header name"),
        ('[paths."/**".cors]\nallowed-origins = ["*"]\nmax-age = "2d"\n', "at most"),
    ):
        path = tmp_path / "konifer.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=said):
            load_config(path, {})
