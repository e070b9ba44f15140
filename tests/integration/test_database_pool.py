"""`data-store.postgresql.pool-size` bounds the connections a worker holds for requests, under load.

The server names its pools in `application_name`, so the test counts them in `pg_stat_activity`
from the outside, on a database only this server uses.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService

CONCURRENT = 8


def load(deployment: Deployment) -> None:
    """Stores and reads from several clients at once, so that a larger pool would open more connections."""

    def one(number: int) -> None:
        with httpx.Client(base_url=deployment.base_url, timeout=60) as client:
            path = f"/assets/pool/case{number}"
            stored = client.post(
                path,
                files={
                    "metadata": (None, json.dumps({"alt": str(number)}), "application/json"),
                    "asset": ("a.png", make_image("png", 32, 16), "image/png"),
                },
            )
            assert stored.status_code == 201, stored.text
            for _ in range(3):
                assert client.get(f"{path}/-/metadata").status_code == 200

    with ThreadPoolExecutor(CONCURRENT) as pool:
        for result in [pool.submit(one, number) for number in range(CONCURRENT)]:
            result.result()


def request_connections(deployment: Deployment) -> int:
    ((count,),) = deployment.query(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'konifer-edge requests'"
    )
    return int(count)


def test_pool_size_caps_the_request_connections(tmp_path: Path, postgres: PostgresService) -> None:
    config = "[data-store.postgresql]\npool-size = 1\n"
    deployment = Deployment(tmp_path, config, store="filesystem", postgres=postgres).start()
    try:
        load(deployment)
        assert request_connections(deployment) == 1
    finally:
        deployment.stop()


def test_the_environment_sets_the_pool_size(tmp_path: Path, postgres: PostgresService) -> None:
    config = "[data-store.postgresql]\npool-size = 1\n"
    environment = {"DATABASE_POOL_SIZE": "3"}
    deployment = Deployment(tmp_path, config, store="filesystem", postgres=postgres, env=environment).start()
    try:
        load(deployment)
        # Two open at start-up (the pool's minimum), at most three under load.
        assert 2 <= request_connections(deployment) <= 3
    finally:
        deployment.stop()
