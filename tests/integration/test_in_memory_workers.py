"""The in-memory object store lives in one process, so a server using it runs one worker."""

from __future__ import annotations

import pytest

from tests.integration.conftest import STANDARD_CONFIG
from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService


def test_in_memory_store_serves_every_request_with_several_workers_asked_for(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, path: str
) -> None:
    node = Deployment(
        tmp_path_factory.mktemp("in-memory-workers"),
        STANDARD_CONFIG,
        store="in-memory",
        postgres=postgres,
        server_args=("--workers", "3"),
    ).start()
    try:
        image = make_image("png", 60, 40)
        stored = node.client.post(
            f"/assets{path}",
            files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", image, "image/png")},
        )
        assert stored.status_code == 201, stored.text
        # Each answer on a new connection, so that any worker could take it.
        statuses = [
            node.client.get(f"/assets{path}/-/content?w=30", headers={"Connection": "close"}) for _ in range(12)
        ]
        assert [answer.status_code for answer in statuses] == [200] * 12
        assert node.client.get(f"/assets{path}/-/content").content == image
        assert "serving with 1 worker instead of 3" in node.server.logs()
    finally:
        node.stop()
