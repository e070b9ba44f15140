"""Storing from a source: `source.http.url`, `source.s3.arn` and the older top-level `url` (spec 06 section 9).

ARN sources are read from the moto S3 of the test setup. The server finds it the way any AWS SDK
would: AWS_ENDPOINT_URL_S3 points the default chain at moto, and the credentials come from the
environment, never from `object-store.s3` (these servers keep their own objects on the filesystem).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import start_deployment
from tests.support.aws import SOURCE_BUCKET, aws_env
from tests.support.deployment import Deployment
from tests.support.images import describe, make_image
from tests.support.services import PostgresService, S3Service
from tests.support.source_server import SourceServer

MAX_BYTES = 300_000

# allowed-domains names no host of the test setup: an ARN source must not be subject to it.
CONFIG = f"""
[source.url]
allowed-domains = ["127.0.0.1"]
allow-private-networks = true
max-bytes = {MAX_BYTES}
timeout = "10s"

[paths."/**"]
object-store.bucket = "assets"
"""


@pytest.fixture(scope="module")
def arn_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service) -> Iterator[Deployment]:
    s3.create_bucket(SOURCE_BUCKET)
    deployment = start_deployment(
        tmp_path_factory.mktemp("arn-api"),
        CONFIG,
        store="filesystem",
        postgres=postgres,
        s3=s3,
        env=aws_env(s3, credentials=True),
    )
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="module")
def no_credentials_api(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service
) -> Iterator[Deployment]:
    deployment = start_deployment(
        tmp_path_factory.mktemp("arn-api-no-credentials"),
        CONFIG,
        store="filesystem",
        postgres=postgres,
        s3=s3,
        env=aws_env(s3, credentials=False),
    )
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def path() -> str:
    return f"/sources/{uuid.uuid4().hex[:12]}"


def put_source_object(s3: S3Service, content: bytes) -> str:
    key = f"images/{uuid.uuid4().hex}/photo.png"
    s3.client().put_object(Bucket=SOURCE_BUCKET, Key=key, Body=content, ContentType="image/png")
    return key


def store_json(api: Deployment, path: str, body: object) -> httpx.Response:
    return api.client.post(f"/assets{path}", json=body)


def assert_refused(api: Deployment, response: httpx.Response, status: int, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    if message is not None:
        assert response.json()["message"] == message


# --- S3 ARN sources ----------------------------------------------------------------------------


def test_an_arn_source_is_read_with_the_default_credential_chain(arn_api: Deployment, s3: S3Service, path: str) -> None:
    image = make_image("png", 40, 30)
    key = put_source_object(s3, image)
    arn = f"arn:aws:s3:::{SOURCE_BUCKET}/{key}"

    response = store_json(
        arn_api, path, {"source": {"s3": {"arn": arn}}, "alt": "from S3", "labels": {"k": "v"}, "tags": ["t"]}
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source"] == "arn"
    assert body["sourceUrl"] == arn
    assert body["externalSourceAddress"] == arn
    assert (body["alt"], body["labels"], body["tags"]) == ("from S3", {"k": "v"}, ["t"])
    attributes = body["variants"][0]["attributes"]
    assert (attributes["width"], attributes["height"], attributes["format"]) == (40, 30, "png")
    content = arn_api.client.get(f"/assets{path}/-/entry/{body['entryId']}/content")
    assert content.status_code == 200
    assert describe(content.content).width == 40
    # The metadata read back later says the same.
    info = arn_api.client.get(f"/assets{path}/-/metadata").json()
    assert (info["source"], info["sourceUrl"], info["externalSourceAddress"]) == ("arn", arn, arn)


def test_a_missing_object_is_502_with_the_s3_error_code(arn_api: Deployment, path: str) -> None:
    before = arn_api.snapshot()
    response = store_json(arn_api, path, {"source": {"s3": {"arn": f"arn:aws:s3:::{SOURCE_BUCKET}/no/such.png"}}})
    assert_refused(arn_api, response, 502)
    assert response.json()["error"] == "NoSuchKey"
    assert arn_api.snapshot() == before


def test_a_missing_bucket_is_502_with_the_s3_error_code(arn_api: Deployment, path: str) -> None:
    before = arn_api.snapshot()
    response = store_json(arn_api, path, {"source": {"s3": {"arn": "arn:aws:s3:::no-such-bucket-here/a.png"}}})
    assert_refused(arn_api, response, 502)
    assert response.json()["error"] == "NoSuchBucket"
    assert arn_api.snapshot() == before


def test_an_arn_source_is_capped_by_the_url_source_max_bytes(arn_api: Deployment, s3: S3Service, path: str) -> None:
    key = put_source_object(s3, b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_BYTES + 1))
    before = arn_api.snapshot()
    response = store_json(arn_api, path, {"source": {"s3": {"arn": f"arn:aws:s3:::{SOURCE_BUCKET}/{key}"}}})
    assert_refused(arn_api, response, 413)
    assert arn_api.snapshot() == before


def test_an_arn_source_that_is_no_image_is_refused_like_an_upload(
    arn_api: Deployment, s3: S3Service, path: str
) -> None:
    key = put_source_object(s3, b"not an image at all")
    before = arn_api.snapshot()
    response = store_json(arn_api, path, {"source": {"s3": {"arn": f"arn:aws:s3:::{SOURCE_BUCKET}/{key}"}}})
    assert 400 <= response.status_code < 500, response.text
    assert arn_api.snapshot() == before


def test_without_credentials_an_arn_source_is_502(no_credentials_api: Deployment, s3: S3Service, path: str) -> None:
    key = put_source_object(s3, make_image("png"))
    before = no_credentials_api.snapshot()
    response = store_json(no_credentials_api, path, {"source": {"s3": {"arn": f"arn:aws:s3:::{SOURCE_BUCKET}/{key}"}}})
    assert_refused(no_credentials_api, response, 502)
    assert response.json()["error"] == "no_credentials"
    assert no_credentials_api.snapshot() == before


# --- HTTP sources ------------------------------------------------------------------------------


def test_source_http_url_stores_with_dot_segments_resolved(
    arn_api: Deployment, source_server: SourceServer, path: str
) -> None:
    name = uuid.uuid4().hex
    source_server.add(f"/{name}/photo.png", make_image("png", 20, 10), "image/png")
    written = source_server.url(f"/{name}/extra/../photo.png")
    resolved = source_server.url(f"/{name}/photo.png")

    response = store_json(arn_api, path, {"source": {"http": {"url": written}}})

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source"] == "url"
    assert body["sourceUrl"] == resolved
    assert body["externalSourceAddress"] == resolved


def test_source_http_url_wins_over_the_deprecated_url(
    arn_api: Deployment, source_server: SourceServer, path: str
) -> None:
    name = uuid.uuid4().hex
    current = source_server.add(f"/{name}/current.png", make_image("png", 12, 12), "image/png")
    deprecated = source_server.url(f"/{name}/missing.png")
    response = store_json(arn_api, path, {"source": {"http": {"url": current}}, "url": deprecated})
    assert response.status_code == 201, response.text
    assert response.json()["externalSourceAddress"] == current


def test_the_deprecated_url_is_used_when_source_http_url_is_absent(
    arn_api: Deployment, source_server: SourceServer, path: str
) -> None:
    url = source_server.add(f"/{uuid.uuid4().hex}.png", make_image("png", 12, 12), "image/png")
    response = store_json(arn_api, path, {"url": url, "source": {}})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["source"], body["sourceUrl"], body["externalSourceAddress"]) == ("url", url, url)


# --- refusals, in Konifer's words ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "URL or S3 ARN must be supplied"),
        ({"source": {}}, "URL or S3 ARN must be supplied"),
        ({"source": {"http": {}, "s3": {}}, "alt": "x"}, "URL or S3 ARN must be supplied"),
        (
            {"source": {"http": {"url": "https://a.example/a.png"}, "s3": {"arn": "arn:aws:s3:::b/k.png"}}},
            "Only one of source.http.url or source.s3.arn, or url can be supplied",
        ),
        (
            {"url": "https://a.example/a.png", "source": {"s3": {"arn": "arn:aws:s3:::b/k.png"}}},
            "Only one of source.http.url or source.s3.arn, or url can be supplied",
        ),
        ({"source": {"http": {"url": "https://[invalid"}}}, "https://[invalid is not a valid URL"),
        ({"url": "https://a.example/a b.png"}, "https://a.example/a b.png is not a valid URL"),
        ({"source": {"s3": {"arn": "not-an-arn"}}}, "Invalid ARN"),
        ({"source": {"s3": {"arn": "arn:aws:s3:::asset-sources/"}}}, "Invalid ARN"),
        ({"source": {"s3": {"arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}}}, "Not an S3 object ARN"),
        ({"source": {"s3": {"arn": "arn:aws:s3:us-east-1::asset-sources/asset.png"}}}, "Not an S3 object ARN"),
        ({"source": {"s3": {"arn": "arn:aws:s3::123456789012:asset-sources/asset.png"}}}, "Not an S3 object ARN"),
        ({"source": {"s3": {"arn": "arn:aws:s3:::asset-sources"}}}, "S3 object ARN must contain a bucket and key"),
        ({"source": {"s3": {"arn": "arn:aws:s3:::/asset.png"}}}, "S3 object ARN must contain a bucket and key"),
    ],
)
def test_bad_sources_are_400_with_konifers_messages(
    arn_api: Deployment, path: str, body: dict[str, object], message: str
) -> None:
    before = arn_api.snapshot()
    response = store_json(arn_api, path, body)
    assert_refused(arn_api, response, 400, message)
    assert arn_api.snapshot() == before


def test_a_source_object_of_the_wrong_shape_is_400(arn_api: Deployment, path: str) -> None:
    for body in ({"source": "https://a.example/a.png"}, {"source": {"s3": {"arn": 5}}}):
        response = store_json(arn_api, path, body)
        assert_refused(arn_api, response, 400)


@pytest.mark.parametrize(
    "metadata",
    [
        b'{"source": {"s3": {"arn": "arn:aws:s3:::b/k.png"}}}',
        b'{"source": {"http": {"url": "https://a.example/a.png"}}}',
    ],
)
def test_a_source_in_multipart_metadata_is_400(arn_api: Deployment, path: str, metadata: bytes) -> None:
    before = arn_api.snapshot()
    response = arn_api.client.post(
        f"/assets{path}",
        files={"metadata": (None, metadata, "application/json"), "asset": ("upload.bin", make_image("png"))},
    )
    assert_refused(arn_api, response, 400)
    assert arn_api.snapshot() == before


def test_a_source_is_refused_on_update(arn_api: Deployment, s3: S3Service, path: str) -> None:
    stored = arn_api.client.post(
        f"/assets{path}", files={"metadata": (None, b"{}", "application/json"), "asset": ("a.png", make_image("png"))}
    )
    assert stored.status_code == 201, stored.text
    response = arn_api.client.put(
        f"/assets{path}/-/entry/{stored.json()['entryId']}",
        json={"source": {"s3": {"arn": "arn:aws:s3:::b/k.png"}}},
    )
    assert_refused(arn_api, response, 400)
