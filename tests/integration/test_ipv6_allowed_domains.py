"""`source.url.allowed-domains` with IPv6 literals, as a Konifer configuration writes them ("[::1]").

The literal passes the domain check, and the SSRF guard still refuses loopback and private
addresses unless `allow-private-networks` says otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.conftest import start_deployment
from tests.support.deployment import Deployment
from tests.support.services import PostgresService

CONFIG = """
[source.url]
allowed-domains = ["[::1]", "0:0:0:0:0:0:0:2"]
allow-private-networks = false
timeout = "5s"

[paths."/**"]
object-store.bucket = "assets"
"""


@pytest.fixture(scope="module")
def v6_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    deployment = start_deployment(
        tmp_path_factory.mktemp("ipv6-domains"), CONFIG, store="filesystem", postgres=postgres, s3=None
    )
    try:
        yield deployment
    finally:
        deployment.stop()


def store(api: Deployment, url: str) -> tuple[int, str]:
    response = api.client.post(f"/assets/v6/{uuid.uuid4().hex[:8]}", json={"source": {"http": {"url": url}}})
    return response.status_code, response.json()["error"]


@pytest.mark.parametrize("url", ["http://[::1]:9/a.png", "http://[0:0::1]:9/a.png", "http://[::2]/a.png"])
def test_a_listed_ipv6_literal_passes_the_domain_check_and_meets_the_ssrf_guard(v6_api: Deployment, url: str) -> None:
    before = v6_api.snapshot()
    assert store(v6_api, url) == (403, "private_address")
    assert v6_api.snapshot() == before


def test_an_ipv6_literal_not_listed_is_not_allowed(v6_api: Deployment) -> None:
    assert store(v6_api, "http://[::3]/a.png") == (403, "domain_not_allowed")
