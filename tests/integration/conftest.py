"""Servers under test: one per object-store kind, each on its own fresh database.

The standard configuration below gives the suite path patterns for every behaviour a
path can switch on; tests use unique paths under those prefixes so they never collide.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.deployment import Deployment
from tests.support.services import PostgresService, S3Service
from tests.support.source_server import SourceServer

STANDARD_CONFIG = """
[source.url]
allowed-domains = ["127.0.0.1", "localhost"]
allow-private-networks = true
max-bytes = 2000000
timeout = "5s"

[source.multipart]
max-bytes = 2000000

[paths."/**"]
object-store.bucket = "assets"

[paths."/pngonly/**"]
allowed-content-types = ["image/png"]

[paths."/cached/**".cache-control]
enabled = true
visibility = "public"
max-age = 600
immutable = true

[paths."/revalidated/**".cache-control]
enabled = true
visibility = "private"
revalidate = "no-cache"
s-maxage = 60
stale-while-revalidate = 30
stale-if-error = 120

[paths."/tmpl/**".return-format.redirect]
strategy = "template"
template.string = "https://{bucket}.cdn.example.com/{key}"

[paths."/presigned/**".return-format.redirect]
strategy = "presigned"
presigned.ttl = "10m"

[paths."/inplace/**".return-format.redirect]
strategy = "none"

[paths."/other-bucket/**"]
object-store.bucket = "other-bucket"

[paths."/lqip/**"]
image.lqip = ["blurhash", "thumbhash"]
"""

STORES = ("filesystem", "in-memory", "s3")


def start_deployment(
    root: Path,
    config: str,
    *,
    store: str,
    postgres: PostgresService,
    s3: S3Service | None,
    env: dict[str, str] | None = None,
) -> Deployment:
    return Deployment(root, config, store=store, postgres=postgres, s3=s3, env=env).start()


@pytest.fixture(scope="session", params=STORES)
def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresService,
    s3: S3Service,
) -> Iterator[Deployment]:
    """A server on the standard configuration, once per object-store kind."""
    store: str = request.param
    deployment = start_deployment(
        tmp_path_factory.mktemp(f"api-{store}"), STANDARD_CONFIG, store=store, postgres=postgres, s3=s3
    )
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="session")
def fs_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service) -> Iterator[Deployment]:
    """One filesystem-backed server, for tests whose subject does not depend on the store."""
    deployment = start_deployment(
        tmp_path_factory.mktemp("api-fs-only"), STANDARD_CONFIG, store="filesystem", postgres=postgres, s3=s3
    )
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def path() -> str:
    """A path no other test uses."""
    return f"/t/{uuid.uuid4().hex[:12]}/image"


@pytest.fixture(scope="session")
def images_source(source_server: SourceServer) -> SourceServer:
    return source_server
