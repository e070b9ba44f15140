"""Two nodes sharing PostgreSQL, Valkey and S3 behave as one service."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.conftest import STANDARD_CONFIG
from tests.support.deployment import Deployment
from tests.support.images import describe, make_image
from tests.support.services import PostgresService, S3Service, ValkeyService


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service, valkey: ValkeyService
) -> Iterator[tuple[Deployment, Deployment]]:
    config = STANDARD_CONFIG + f'\n[cache]\nredis-url = "{valkey.url}"\n'
    first = Deployment(tmp_path_factory.mktemp("node-a"), config, store="s3", postgres=postgres, s3=s3).start()
    second = Deployment(
        tmp_path_factory.mktemp("node-b"), config, store="s3", postgres=postgres, s3=s3, dsn=first.dsn
    ).start()
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


def _store(node: Deployment, path: str, image: bytes) -> None:
    answer = node.client.post(
        f"/assets{path}", files={"metadata": (None, "{}", "application/json"), "asset": ("a.jpg", image, "image/jpeg")}
    )
    assert answer.status_code == 201, answer.text


def test_a_store_on_one_node_is_served_by_the_other(cluster: tuple[Deployment, Deployment], path: str) -> None:
    first, second = cluster
    image = make_image("jpg", 120, 80)
    _store(first, path, image)
    assert second.client.get(f"/assets{path}/-/content").content == image
    _store(second, path, make_image("png", 30, 20))
    newest = first.client.get(f"/assets{path}/-/metadata")
    assert newest.json()["entryId"] == 1
    assert newest.json()["variants"][0]["attributes"]["format"] == "png"


def test_concurrent_first_requests_on_both_nodes_render_once(cluster: tuple[Deployment, Deployment], path: str) -> None:
    first, second = cluster
    _store(first, path, make_image("jpg", 400, 300))
    urls = [f"{node.base_url}/assets{path}/-/content?w=123&format=webp" for node in (first, second) * 8]

    def fetch(url: str) -> tuple[str, bytes]:
        answer = httpx.get(url, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.headers["K-Cache-Status"], answer.content

    with ThreadPoolExecutor(len(urls)) as pool:
        results = list(pool.map(fetch, urls))
    statuses = [status for status, _ in results]
    assert statuses.count("miss") == 1, statuses
    assert len({content for _, content in results}) == 1
    assert describe(results[0][1]).width == 123
    rows = first.query(
        "SELECT count(*) FROM variant v JOIN asset a ON a.id = v.asset_id"
        " WHERE a.path = $1 AND v.transformation_key <> ''",
        path,
    )
    assert rows == [(1,)]


def test_writes_on_one_node_are_seen_at_once_by_the_other(cluster: tuple[Deployment, Deployment], path: str) -> None:
    first, second = cluster
    _store(first, path, make_image("jpg", 40, 30))
    # the second node resolves (and caches) the newest asset at the path
    assert second.client.get(f"/assets{path}/-/metadata").json()["entryId"] == 0
    assert second.client.get(f"/assets{path}/-/entry/0/metadata").status_code == 200
    _store(first, path, make_image("png", 20, 10))
    assert second.client.get(f"/assets{path}/-/metadata").json()["entryId"] == 1
    assert first.client.put(f"/assets{path}/-/entry/1", json={"alt": "changed"}).status_code == 200
    assert second.client.get(f"/assets{path}/-/metadata").json()["alt"] == "changed"
    assert first.client.delete(f"/assets{path}/-/entry/1").status_code == 204
    assert second.client.get(f"/assets{path}/-/metadata").json()["entryId"] == 0
    assert first.client.delete(f"/assets{path}/-/all").status_code == 204
    assert second.client.get(f"/assets{path}/-/entry/0/metadata").status_code == 404
    assert second.client.get(f"/assets{path}/-/metadata").status_code == 404
