"""Render admission and request limits: refuse early and cheaply, and keep serving."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.conftest import STANDARD_CONFIG, start_deployment
from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService, S3Service

# One render at a time, nothing queued; a timeout no real render meets.
ADMISSION_CONFIG = STANDARD_CONFIG + "\n[variant-generation]\nworkers = 1\nqueue-size = 0\n"
TIMEOUT_CONFIG = STANDARD_CONFIG + '\n[variant-generation]\nrender-timeout = "1ms"\n'


def _server(
    tmp: pytest.TempPathFactory, name: str, config: str, postgres: PostgresService, s3: S3Service
) -> Deployment:
    return start_deployment(tmp.mktemp(name), config, store="filesystem", postgres=postgres, s3=s3)


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service) -> Iterator[Deployment]:
    deployment = _server(tmp_path_factory, "narrow", ADMISSION_CONFIG, postgres, s3)
    yield deployment
    deployment.stop()


def _store(api: Deployment, path: str, image: bytes) -> None:
    answer = api.client.post(
        f"/assets{path}", files={"metadata": (None, "{}", "application/json"), "asset": ("a", image, "image/jpeg")}
    )
    assert answer.status_code == 201, answer.text


def test_a_full_render_queue_answers_503_with_retry_after(narrow: Deployment, path: str) -> None:
    # A PNG has no shrink-on-load: every render decodes all its pixels, long enough for the twelve
    # requests to overlap even when their arrival is spread out.
    _store(narrow, path, make_image("png", 3000, 2000))
    urls = [f"{narrow.base_url}/assets{path}/-/content?w={300 + index}&blur=2&format=webp" for index in range(12)]
    with ThreadPoolExecutor(len(urls)) as pool:
        answers = list(pool.map(lambda url: httpx.get(url, timeout=60), urls))
    statuses = [answer.status_code for answer in answers]
    assert 503 in statuses and 200 in statuses, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["Retry-After"] == "1"
            assert answer.json()["error"] == "render_queue_full"
    # the node is still up and renders what was refused, once asked again
    again = narrow.client.get(urls[statuses.index(503)])
    assert again.status_code == 200


def test_a_render_past_its_timeout_answers_503_and_the_node_stays_up(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service, path: str
) -> None:
    deployment = _server(tmp_path_factory, "timeout", TIMEOUT_CONFIG, postgres, s3)
    try:
        stored = deployment.client.post(
            f"/assets{path}",
            files={"metadata": (None, "{}", "application/json"), "asset": ("a", make_image("png", 8, 8), "image/png")},
        )
        # even probing a store is pipeline work: with 1 ms, it cannot finish in time
        assert stored.status_code == 503, stored.text
        assert stored.json()["error"] == "render_timeout"
        assert stored.headers["Retry-After"] == "1"
        assert deployment.client.get("/health").status_code == 200
        assert deployment.query("SELECT count(*) FROM asset") == [(0,)]
    finally:
        deployment.stop()


def test_every_answer_says_nosniff(fs_api: Deployment, path: str) -> None:
    _store(fs_api, path, make_image("jpg", 20, 20))
    for url in (f"/assets{path}/-/content", f"/assets{path}/-/metadata", "/assets/none/here", "/health", "/nope"):
        assert fs_api.client.get(url).headers["X-Content-Type-Options"] == "nosniff", url


def test_an_overlong_query_string_is_400(fs_api: Deployment, path: str) -> None:
    _store(fs_api, path, make_image("jpg", 20, 20))
    answer = fs_api.client.get(f"/assets{path}/-/metadata?" + "&".join(f"k{i}=v" for i in range(1000)))
    assert answer.status_code == 400
    assert answer.json()["error"] == "query_too_long"
    assert fs_api.client.get(f"/assets{path}/-/metadata").status_code == 200


def test_many_distinct_first_renders_at_once_all_complete(fs_api: Deployment, path: str) -> None:
    # Without Redis, render locks are PostgreSQL advisory locks; more concurrent first renders
    # than the request pool has connections must still all finish (no lock may starve its holder).
    _store(fs_api, path, make_image("jpg", 400, 300))
    urls = [f"{fs_api.base_url}/assets{path}/-/content?w={100 + index}&format=webp" for index in range(24)]
    with ThreadPoolExecutor(len(urls)) as pool:
        answers = list(pool.map(lambda url: httpx.get(url, timeout=90), urls))
    assert [answer.status_code for answer in answers] == [200] * len(urls)
    assert fs_api.client.get("/ready").status_code == 200
