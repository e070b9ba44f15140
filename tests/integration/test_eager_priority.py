"""`variant-generation.synchronous-priority` through HTTP: eager renders never delay or duplicate a request's.

The share of workers itself is pinned in tests/unit/test_imaging_lanes.py, where the order of
picks can be observed; here a real server must answer a request for an eager variant at once, with
that variant, whether its eager render has run, is queued or is running, and keep one row for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import start_deployment
from tests.support.deployment import Deployment
from tests.support.images import describe, make_image
from tests.support.polling import wait_for
from tests.support.services import PostgresService

CONFIG = """
[variant-generation]
workers = 1
synchronous-priority = 80

[variant-profiles.p16]
w = 16
[variant-profiles.p24]
w = 24
[variant-profiles.p32]
w = 32
[variant-profiles.p40]
w = 40

[paths."/**"]
object-store.bucket = "assets"

[paths."/eager/**".transform]
eager-variants = ["p16", "p24", "p32", "p40"]
"""


@pytest.fixture(scope="module")
def eager_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    root: Path = tmp_path_factory.mktemp("eager-priority")
    deployment = start_deployment(root, CONFIG, store="filesystem", postgres=postgres, s3=None)
    try:
        yield deployment
    finally:
        deployment.stop()


def variant_count(api: Deployment, path: str) -> int:
    rows = api.query(
        "SELECT count(*) FROM variant v JOIN asset a ON a.id = v.asset_id"
        " WHERE a.path = $1 AND v.transformation_key <> ''",
        path,
    )
    return int(rows[0][0])


def test_an_eager_variant_asked_for_at_once_is_served_and_rendered_once(eager_api: Deployment) -> None:
    path = f"/eager/{uuid.uuid4().hex[:12]}"
    stored = eager_api.client.post(
        f"/assets{path}",
        files={"metadata": (None, b"{}", "application/json"), "asset": ("a.png", make_image("png", 400, 300))},
    )
    assert stored.status_code == 201, stored.text

    # The last eager profile is the one most likely still queued behind the others.
    for profile, width in (("p40", 40), ("p16", 16)):
        response = eager_api.client.get(f"/assets{path}/-/content", params={"profile": profile})
        assert response.status_code == 200, response.text
        assert describe(response.content).width == width

    # Every eager profile ends up stored exactly once, the ones asked for included.
    wait_for(lambda: variant_count(eager_api, path) == 4, "the four eager variants")
    assert variant_count(eager_api, path) == 4
