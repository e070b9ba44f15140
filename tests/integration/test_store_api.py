"""Storing assets over HTTP (spec 02, 03 and 05 §1-2): multipart uploads, URL sources, and every refusal.

Core behaviour runs once per object store (`api`); refusals that do not depend on the store run on
the filesystem server (`fs_api`). Every refusal is checked three ways: its status, its JSON error
body, and a database + object-store snapshot that must not have moved.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.assets import upload
from tests.support.deployment import Deployment, Snapshot
from tests.support.errors import assert_refused_untouched
from tests.support.images import FORMATS, MIME_TYPES, describe, heif_compression, loader_name, make_image
from tests.support.source_server import SourceServer

ISO_LOCAL_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?$")
METADATA_KEYS = {"class", "entryId", "labels", "tags", "source", "variants", "createdAt", "modifiedAt"}
VARIANT_KEYS = {"isOriginalVariant", "storeBucket", "storeKey", "attributes", "lqip"}
ATTRIBUTE_KEYS = {"width", "height", "format", "colorSpace", "pageCount", "loop"}
MULTIPART_MAX_BYTES = 2_000_000  # source.multipart.max-bytes in STANDARD_CONFIG
URL_MAX_BYTES = 2_000_000  # source.url.max-bytes in STANDARD_CONFIG


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def store_url(client: httpx.Client, path: str, url: str, **fields: Any) -> httpx.Response:
    return client.post(f"/assets{path}", json={"url": url, **fields})


def assert_stored_one(api: Deployment, before: Snapshot, body: dict[str, Any], original: bytes) -> None:
    """Exactly one asset row, one variant row and (where visible) one object were added, holding `original`."""
    after = api.snapshot()
    assert len(after.assets) == len(before.assets) + 1
    assert len(after.variants) == len(before.variants) + 1
    variant = body["variants"][0]
    if api.store != "in-memory":
        added = set(after.objects) - set(before.objects)
        assert added == {(variant["storeBucket"], variant["storeKey"])}
        assert api.read_object(variant["storeBucket"], variant["storeKey"]) == original


def content_of(api: Deployment, path: str, entry_id: int) -> httpx.Response:
    response = api.client.get(f"/assets{path}/-/entry/{entry_id}/content")
    assert response.status_code == 200, response.text
    return response


def unique(prefix: str = "/t") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}/image"


def route(name: str) -> str:
    """A source-server route nobody else uses."""
    return f"/src/{uuid.uuid4().hex[:10]}/{name}"


# --------------------------------------------------------------------------------------------------
# Multipart upload: the response, the rows, the object
# --------------------------------------------------------------------------------------------------


def test_multipart_store_answers_201_with_konifer_metadata(api: Deployment, path: str) -> None:
    original = make_image("png", 40, 30)
    metadata = {"alt": "A red square", "labels": {"phone": "Android", "label-key": "v"}, "tags": ["cold", "verified"]}
    before = api.snapshot()

    response = upload(api.client, path, original, metadata=metadata)

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == METADATA_KEYS | {"alt"}
    assert body["class"] == "image"
    assert body["alt"] == "A red square"
    assert body["entryId"] == 0
    assert body["labels"] == {"phone": "Android", "label-key": "v"}
    assert body["tags"] == ["cold", "verified"]
    assert body["source"] == "upload"
    assert len(body["variants"]) == 1
    variant = body["variants"][0]
    assert set(variant) == VARIANT_KEYS
    assert variant["isOriginalVariant"] is True
    assert variant["storeBucket"] == "assets"
    assert isinstance(variant["storeKey"], str) and variant["storeKey"]
    assert variant["attributes"] == {
        "width": 40,
        "height": 30,
        "format": "png",
        "colorSpace": "srgb",
        "pageCount": 1,
        "loop": 0,
    }
    assert variant["lqip"] == {}
    for field in ("createdAt", "modifiedAt"):
        assert ISO_LOCAL_DATE_TIME.match(body[field]), body[field]
    created = datetime.fromisoformat(body["createdAt"])
    assert created.tzinfo is None
    assert body["modifiedAt"] == body["createdAt"]
    # A UTC wall-clock reading, not a local or epoch one: sanity only, far wider than any run.
    assert abs(created - datetime.now(UTC).replace(tzinfo=None)) < timedelta(hours=1)
    assert response.headers["location"] == f"{api.base_url}/assets{path}/-/entry/0"
    assert_stored_one(api, before, body, original)
    rows = api.query("SELECT path, entry_id, alt, labels, tags, source, source_url FROM asset WHERE path = $1", path)
    assert len(rows) == 1
    row_path, entry_id, alt, labels, tags, source, source_url = rows[0]
    assert (row_path, entry_id, alt, source, source_url) == (path, 0, "A red square", "upload", None)
    assert json.loads(labels) == {"phone": "Android", "label-key": "v"}
    assert list(tags) == ["cold", "verified"]


def test_null_fields_are_omitted_and_empty_collections_kept(fs_api: Deployment, path: str) -> None:
    response = upload(fs_api.client, path, make_image("png", 8, 8), metadata={})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == METADATA_KEYS
    assert "alt" not in body and "sourceUrl" not in body
    assert body["labels"] == {} and body["tags"] == []


def test_explicit_null_alt_is_accepted_and_omitted(fs_api: Deployment, path: str) -> None:
    response = upload(fs_api.client, path, make_image("png", 8, 8), metadata={"alt": None})
    assert response.status_code == 201, response.text
    assert "alt" not in response.json()


def test_location_header_leads_to_the_stored_entry(api: Deployment, path: str) -> None:
    upload(api.client, path, make_image("png", 8, 8))
    original = make_image("jpg", 24, 16)
    stored = upload(api.client, path, original, content_type="image/jpeg")
    assert stored.status_code == 201, stored.text
    location = stored.headers["location"]
    assert location == f"{api.base_url}/assets{path}/-/entry/1"

    link = api.client.get(location)
    assert link.status_code == 200, link.text
    assert link.json()["url"] == f"{location}/content"
    content = api.client.get(link.json()["url"])
    assert content.status_code == 200
    assert content.content == original


@pytest.mark.parametrize("part", ["asset", "file", "image"])
def test_image_part_may_have_any_name_but_metadata(fs_api: Deployment, path: str, part: str) -> None:
    original = make_image("png", 12, 10)
    before = fs_api.snapshot()
    response = upload(fs_api.client, path, original, part=part)
    assert response.status_code == 201, response.text
    assert response.json()["variants"][0]["attributes"]["width"] == 12
    assert_stored_one(fs_api, before, response.json(), original)
    assert content_of(fs_api, path, 0).content == original


def test_metadata_part_after_the_image_part(fs_api: Deployment, path: str) -> None:
    original = make_image("png", 12, 10)
    boundary = "konifer-edge-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    body += original
    body += (
        f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n'
        f'Content-Type: application/json\r\n\r\n{{"alt": "late metadata"}}\r\n--{boundary}--\r\n'
    ).encode()
    response = fs_api.client.post(
        f"/assets{path}", content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["alt"] == "late metadata"
    assert content_of(fs_api, path, 0).content == original


# --------------------------------------------------------------------------------------------------
# Entry ids
# --------------------------------------------------------------------------------------------------


def test_entry_ids_start_at_zero_per_path_and_increase(api: Deployment) -> None:
    first, second = unique(), unique()
    ids = [upload(api.client, first, make_image("png", 8, 8)).json()["entryId"] for _ in range(3)]
    assert ids == [0, 1, 2]
    other = upload(api.client, second, make_image("png", 8, 8))
    assert other.status_code == 201
    assert other.json()["entryId"] == 0
    assert other.headers["location"].endswith(f"/assets{second}/-/entry/0")
    assert upload(api.client, first, make_image("png", 8, 8)).json()["entryId"] == 3


def test_twenty_concurrent_stores_to_one_path_get_ids_0_to_19(api: Deployment, path: str) -> None:
    images = [make_image("png", 10 + i, 10) for i in range(20)]

    def store_one(index: int) -> tuple[int, int, str]:
        with httpx.Client(base_url=api.base_url, timeout=60.0) as client:
            response = upload(client, path, images[index], metadata={"labels": {"index": str(index)}})
            assert response.status_code == 201, response.text
            return index, response.json()["entryId"], response.headers["location"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(store_one, range(20)))

    assert sorted(entry_id for _, entry_id, _ in results) == list(range(20))
    for index, entry_id, location in results:
        assert location.endswith(f"/-/entry/{entry_id}")
        # Each id names the image stored by the request that received it.
        assert content_of(api, path, entry_id).content == images[index]
    listing = api.client.get(f"/assets{path}/-/metadata/created/-1")
    assert listing.status_code == 200
    assert sorted(item["entryId"] for item in listing.json()) == list(range(20))


# --------------------------------------------------------------------------------------------------
# Formats and attributes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_stored_with_its_attributes(api: Deployment, path: str, fmt: str) -> None:
    original = make_image(fmt, 36, 20)
    before = api.snapshot()
    # Declared as octet-stream: the format must come from the bytes alone.
    response = upload(api.client, path, original, content_type="application/octet-stream")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["variants"][0]["attributes"] == {
        "width": 36,
        "height": 20,
        "format": fmt,
        "colorSpace": "srgb",
        "pageCount": 1,
        "loop": 0,
    }
    assert_stored_one(api, before, body, original)
    content = content_of(api, path, 0)
    assert content.headers["content-type"] == MIME_TYPES[fmt]
    assert content.content == original
    info = describe(content.content)
    assert (info.fmt, info.width, info.height, info.pages) == (loader_name(fmt), 36, 20, 1)
    if fmt in ("avif", "heic"):
        assert heif_compression(content.content) == ("av1" if fmt == "avif" else "hevc")


def test_declared_content_type_is_ignored(api: Deployment, path: str) -> None:
    original = make_image("png", 16, 12)
    response = upload(api.client, path, original, content_type="image/jpeg", filename="photo.jpg")
    assert response.status_code == 201, response.text
    assert response.json()["variants"][0]["attributes"]["format"] == "png"
    content = content_of(api, path, 0)
    assert content.headers["content-type"] == "image/png"
    assert describe(content.content).fmt == "png"


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_animation_endless_loop_is_minus_one(api: Deployment, path: str, fmt: str) -> None:
    # make_image's default loop=0 is libvips' "forever", which Konifer writes as -1.
    original = make_image(fmt, 20, 10, frames=3)
    response = upload(api.client, path, original)
    assert response.status_code == 201, response.text
    assert response.json()["variants"][0]["attributes"] == {
        "width": 20,
        "height": 10,
        "format": fmt,
        "colorSpace": "srgb",
        "pageCount": 3,
        "loop": -1,
    }
    content = content_of(api, path, 0)
    assert content.content == original
    assert describe(content.content).pages == 3


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_animation_with_a_loop_count_keeps_it(fs_api: Deployment, path: str, fmt: str) -> None:
    response = upload(fs_api.client, path, make_image(fmt, 20, 10, frames=4, loop=3))
    assert response.status_code == 201, response.text
    attributes = response.json()["variants"][0]["attributes"]
    assert (attributes["pageCount"], attributes["loop"]) == (4, 3)


def test_bucket_comes_from_the_path_configuration(api: Deployment) -> None:
    path = unique("/other-bucket")
    original = make_image("png", 10, 10)
    before = api.snapshot()
    response = upload(api.client, path, original)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["variants"][0]["storeBucket"] == "other-bucket"
    assert_stored_one(api, before, body, original)
    assert content_of(api, path, 0).content == original


@pytest.mark.parametrize(
    "path",
    [f"/Other-Bucket/{uuid.uuid4().hex[:8]}/image", "/OTHER-BUCKET", f"/other-bucket/{uuid.uuid4().hex[:8]}/a/b/c/d"],
    ids=["mixed-case", "pattern-root", "deep"],
)
def test_path_patterns_match_case_insensitively_and_at_any_depth(fs_api: Deployment, path: str) -> None:
    response = upload(fs_api.client, path, make_image("png", 10, 10))
    assert response.status_code == 201, response.text
    assert response.json()["variants"][0]["storeBucket"] == "other-bucket"
    # The asset path itself keeps the case it was stored under.
    assert fs_api.query("SELECT count(*) FROM asset WHERE path = $1", path)[0][0] >= 1


def test_allowed_content_types_refuse_under_a_mixed_case_path(fs_api: Deployment) -> None:
    path = unique("/PngOnly")
    assert_refused_untouched(fs_api, lambda: upload(fs_api.client, path, make_image("jpg", 10, 10)), 403)


def test_allowed_content_types_accept_a_listed_type(api: Deployment) -> None:
    path = unique("/pngonly")
    original = make_image("png", 10, 10)
    response = upload(api.client, path, original)
    assert response.status_code == 201, response.text
    # Everything else is inherited from `/**`.
    assert response.json()["variants"][0]["storeBucket"] == "assets"
    assert content_of(api, path, 0).content == original


def test_allowed_content_types_refuse_another_type_with_403(api: Deployment) -> None:
    path = unique("/pngonly")
    # Declared as image/png: the refusal must follow the bytes, not the declaration.
    assert_refused_untouched(
        api, lambda: upload(api.client, path, make_image("jpg", 10, 10), content_type="image/png"), 403
    )
    assert api.client.get(f"/assets{path}").status_code == 404


# --------------------------------------------------------------------------------------------------
# Content that is not a usable image
# --------------------------------------------------------------------------------------------------

NOT_IMAGES = {
    "text": b"hello, this is plainly not an image\n",
    "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<rect width="10" height="10" fill="red"/></svg>',
    "html": b"<!doctype html><html><body><img src=x></body></html>",
    "zeros": bytes(256),
}


@pytest.mark.parametrize("kind", sorted(NOT_IMAGES))
def test_non_image_content_is_415(fs_api: Deployment, path: str, kind: str) -> None:
    declared = "image/svg+xml" if kind == "svg" else "image/png"
    assert_refused_untouched(fs_api, lambda: upload(fs_api.client, path, NOT_IMAGES[kind], content_type=declared), 415)


def test_non_image_content_stores_nothing_in_any_store(api: Deployment, path: str) -> None:
    assert_refused_untouched(api, lambda: upload(api.client, path, NOT_IMAGES["pdf"]), 415)


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_jpeg_is_400(api: Deployment, path: str, keep: float) -> None:
    whole = make_image("jpg", 200, 150)
    truncated = whole[: int(len(whole) * keep)]
    assert_refused_untouched(api, lambda: upload(api.client, path, truncated, content_type="image/jpeg"), 400)


def test_image_signature_with_garbage_body_is_400(fs_api: Deployment, path: str) -> None:
    fake_png = b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 64
    assert_refused_untouched(fs_api, lambda: upload(fs_api.client, path, fake_png), 400)


# --------------------------------------------------------------------------------------------------
# Metadata limits (spec 02)
# --------------------------------------------------------------------------------------------------

ACCEPTED_AT_LIMIT: dict[str, dict[str, Any]] = {
    "alt 125": {"alt": "a" * 125},
    "50 labels": {"labels": {f"k{i}": "v" for i in range(50)}},
    "label key 128": {"labels": {"k" * 128: "v"}},
    "label value 256": {"labels": {"k": "v" * 256}},
    "50 tags": {"tags": [f"t{i}" for i in range(50)]},
    "tag 256": {"tags": ["t" * 256]},
}
REFUSED_OVER_LIMIT: dict[str, dict[str, Any]] = {
    "alt 126": {"alt": "a" * 126},
    "51 labels": {"labels": {f"k{i}": "v" for i in range(51)}},
    "label key 129": {"labels": {"k" * 129: "v"}},
    "label value 257": {"labels": {"k": "v" * 257}},
    "51 tags": {"tags": [f"t{i}" for i in range(51)]},
    "tag 257": {"tags": ["t" * 257]},
}


@pytest.mark.parametrize("case", sorted(ACCEPTED_AT_LIMIT))
def test_metadata_at_the_limit_is_accepted(fs_api: Deployment, path: str, case: str) -> None:
    metadata = ACCEPTED_AT_LIMIT[case]
    response = upload(fs_api.client, path, make_image("png", 8, 8), metadata=metadata)
    assert response.status_code == 201, response.text
    body = response.json()
    for key, value in metadata.items():
        assert body[key] == value


@pytest.mark.parametrize("case", sorted(REFUSED_OVER_LIMIT))
def test_metadata_over_the_limit_is_400(fs_api: Deployment, path: str, case: str) -> None:
    metadata = REFUSED_OVER_LIMIT[case]
    assert_refused_untouched(
        fs_api, lambda: upload(fs_api.client, path, make_image("png", 8, 8), metadata=metadata), 400
    )


@pytest.mark.parametrize("case", ["alt 126", "51 labels", "tag 257"])
def test_url_source_metadata_over_the_limit_is_400(
    fs_api: Deployment, path: str, source_server: SourceServer, case: str
) -> None:
    url = source_server.add(route("ok.png"), make_image("png", 8, 8), "image/png")
    assert_refused_untouched(fs_api, lambda: store_url(fs_api.client, path, url, **REFUSED_OVER_LIMIT[case]), 400)


@pytest.mark.parametrize(
    "metadata",
    [
        '{"alt": "unterminated',
        "not json at all",
        '{"alt": 5}',
        '{"labels": ["a", "b"]}',
        '{"labels": {"k": 1}}',
        '{"tags": "single"}',
        '{"tags": [1, 2]}',
        "[]",
        '"a string"',
    ],
    ids=[
        "truncated",
        "not-json",
        "alt-number",
        "labels-list",
        "label-number",
        "tags-string",
        "tags-numbers",
        "array",
        "string",
    ],
)
def test_invalid_metadata_part_is_400(fs_api: Deployment, path: str, metadata: str) -> None:
    assert_refused_untouched(
        fs_api, lambda: upload(fs_api.client, path, make_image("png", 8, 8), metadata=metadata), 400
    )


# --------------------------------------------------------------------------------------------------
# Malformed requests: sources, content types, modifiers, paths
# --------------------------------------------------------------------------------------------------


def test_multipart_with_both_url_and_asset_is_400(fs_api: Deployment, path: str, source_server: SourceServer) -> None:
    url = source_server.add(route("both.png"), make_image("png", 8, 8), "image/png")
    body = assert_refused_untouched(
        fs_api, lambda: upload(fs_api.client, path, make_image("png", 8, 8), metadata={"url": url}), 400
    )
    assert body["error"]
    assert source_server.hits(url.removeprefix(source_server.base_url)) == 0


def test_multipart_without_an_asset_part_is_400(fs_api: Deployment, path: str) -> None:
    def send() -> httpx.Response:
        return fs_api.client.post(f"/assets{path}", files={"metadata": (None, '{"alt": "x"}', "application/json")})

    assert_refused_untouched(fs_api, send, 400)


def test_multipart_with_url_in_metadata_but_no_asset_is_400(
    fs_api: Deployment, path: str, source_server: SourceServer
) -> None:
    url = source_server.add(route("nofile.png"), make_image("png", 8, 8), "image/png")

    def send() -> httpx.Response:
        return fs_api.client.post(
            f"/assets{path}", files={"metadata": (None, json.dumps({"url": url}), "application/json")}
        )

    assert_refused_untouched(fs_api, send, 400)


def test_multipart_with_an_empty_asset_part_is_400(fs_api: Deployment, path: str) -> None:
    assert_refused_untouched(fs_api, lambda: upload(fs_api.client, path, b""), 400)


def test_multipart_without_a_metadata_part_is_400(fs_api: Deployment, path: str) -> None:
    def send() -> httpx.Response:
        return fs_api.client.post(f"/assets{path}", files={"asset": ("a.png", make_image("png", 8, 8), "image/png")})

    assert_refused_untouched(fs_api, send, 400)


def test_multipart_with_two_image_parts_is_400(fs_api: Deployment, path: str) -> None:
    # Without an `asset` part two candidates are ambiguous; next to `asset` (spec 06 section 6) the
    # other part is ignored, which tests/integration/test_konifer_current_api.py covers.
    def send() -> httpx.Response:
        return fs_api.client.post(
            f"/assets{path}",
            files=[
                ("metadata", (None, "{}", "application/json")),
                ("image", ("a.png", make_image("png", 8, 8), "image/png")),
                ("file", ("b.png", make_image("png", 9, 9), "image/png")),
            ],
        )

    assert_refused_untouched(fs_api, send, 400)


def test_multipart_without_a_boundary_is_400(fs_api: Deployment, path: str) -> None:
    def send() -> httpx.Response:
        return fs_api.client.post(f"/assets{path}", content=b"xx", headers={"Content-Type": "multipart/form-data"})

    assert_refused_untouched(fs_api, send, 400)


def test_malformed_multipart_body_is_400(fs_api: Deployment, path: str) -> None:
    def send() -> httpx.Response:
        return fs_api.client.post(
            f"/assets{path}",
            content=b"this is not multipart at all",
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )

    assert_refused_untouched(fs_api, send, 400)


@pytest.mark.parametrize(
    "body",
    [{"alt": "no url"}, {}, {"url": ""}, {"url": None, "tags": ["x"]}],
    ids=["alt-only", "empty", "empty-url", "null-url"],
)
def test_json_without_url_is_400(fs_api: Deployment, path: str, body: dict[str, Any]) -> None:
    assert_refused_untouched(fs_api, lambda: fs_api.client.post(f"/assets{path}", json=body), 400)


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b'{"url": 5}', b'{"url": ["a"]}', b"[]"], ids=["brace", "text", "num", "list", "arr"]
)
def test_invalid_json_body_is_400(fs_api: Deployment, path: str, raw: bytes) -> None:
    def send() -> httpx.Response:
        return fs_api.client.post(f"/assets{path}", content=raw, headers={"Content-Type": "application/json"})

    assert_refused_untouched(fs_api, send, 400)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "image/png", "application/octet-stream", "application/x-www-form-urlencoded", None]
)
def test_wrong_request_content_type_is_415(fs_api: Deployment, path: str, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}

    def send() -> httpx.Response:
        return fs_api.client.post(f"/assets{path}", content=make_image("png", 8, 8), headers=headers)

    assert_refused_untouched(fs_api, send, 415)


@pytest.mark.parametrize("modifiers", ["/-/entry/0", "/-/link", "/-/new/3", "/-/metadata"])
def test_modifiers_on_store_are_400(fs_api: Deployment, path: str, modifiers: str) -> None:
    assert_refused_untouched(fs_api, lambda: upload(fs_api.client, path + modifiers, make_image("png", 8, 8)), 400)


INVALID_PATHS = {
    "dot-dot": "/assets/t/%2E%2E/image",
    "dot-dot-lower": "/assets/t/a/%2e%2e",
    "dot-segment": "/assets/t/%2E/image",
    "double-slash": "/assets/t//image",
    "dot-in-segment": "/assets/t/image.png",
    "space": "/assets/t/my%20image",
    "non-ascii": "/assets/t/caf%C3%A9",
    "backslash": "/assets/t/a%5Cb",
    "too-long": "/assets/" + "a" * 1100,
    "too-deep": "/assets" + "/a" * 70,
    "empty": "/assets/",
}


def post_to_raw_url(client: httpx.Client, raw_url: str) -> httpx.Response:
    """A valid multipart store sent to `raw_url` as written (httpx would resolve a literal `..`)."""
    return client.post(
        raw_url,
        files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", make_image("png", 8, 8), "image/png")},
    )


@pytest.mark.parametrize("name", sorted(INVALID_PATHS))
def test_invalid_path_is_refused(fs_api: Deployment, name: str) -> None:
    assert_refused_untouched(fs_api, lambda: post_to_raw_url(fs_api.client, INVALID_PATHS[name]), None)


@pytest.mark.parametrize("name", ["dot-dot", "dot-dot-lower", "double-slash", "dot-in-segment", "space", "too-long"])
def test_invalid_path_is_400(fs_api: Deployment, name: str) -> None:
    assert_refused_untouched(fs_api, lambda: post_to_raw_url(fs_api.client, INVALID_PATHS[name]), 400)


def test_path_alphabet_characters_are_accepted(fs_api: Deployment) -> None:
    path = f"/t/{uuid.uuid4().hex[:8]}/A-z_0~9!$'()*+=@"
    original = make_image("png", 8, 8)
    response = fs_api.client.post(
        "/assets" + httpx.URL(path).raw_path.decode(),
        files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", original, "image/png")},
    )
    assert response.status_code == 201, response.text
    assert fs_api.query("SELECT count(*) FROM asset WHERE path = $1", path) == [(1,)]


# --------------------------------------------------------------------------------------------------
# Body size limits
# --------------------------------------------------------------------------------------------------


def _oversized_png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00" * (MULTIPART_MAX_BYTES + 400_000)


def test_body_over_max_bytes_with_content_length_is_413(api: Deployment, path: str) -> None:
    big = _oversized_png()

    def send() -> httpx.Response:
        response = upload(api.client, path, big)
        assert "content-length" in {k.lower() for k in response.request.headers}
        return response

    assert_refused_untouched(api, send, 413)


def _chunked_multipart(asset_bytes: int, boundary: str) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{{}}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="asset"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    yield b"\x89PNG\r\n\x1a\n"
    sent = 8
    while sent < asset_bytes:
        piece = min(64 * 1024, asset_bytes - sent)
        yield b"\x00" * piece
        sent += piece
    yield f"\r\n--{boundary}--\r\n".encode()


def test_streamed_body_over_max_bytes_without_content_length_is_413(fs_api: Deployment, path: str) -> None:
    boundary = "chunked-boundary"

    def send() -> httpx.Response:
        response = fs_api.client.post(
            f"/assets{path}",
            content=_chunked_multipart(MULTIPART_MAX_BYTES + 200_000, boundary),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        return response

    assert_refused_untouched(fs_api, send, 413)


def test_streamed_body_under_max_bytes_is_stored(fs_api: Deployment, path: str) -> None:
    original = make_image("png", 30, 20)
    boundary = "chunked-ok"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{{"alt": "streamed"}}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        ).encode()
        for start in range(0, len(original), 50):
            yield original[start : start + 50]
        yield f"\r\n--{boundary}--\r\n".encode()

    response = fs_api.client.post(
        f"/assets{path}", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 201, response.text
    assert response.json()["alt"] == "streamed"
    assert content_of(fs_api, path, 0).content == original


def test_oversized_json_body_is_refused(fs_api: Deployment, path: str) -> None:
    body = json.dumps({"url": "http://127.0.0.1/x.png", "alt": "x" * 3_000_000}).encode()

    def send() -> httpx.Response:
        return fs_api.client.post(f"/assets{path}", content=body, headers={"Content-Type": "application/json"})

    assert_refused_untouched(fs_api, send, 413)


# --------------------------------------------------------------------------------------------------
# URL source
# --------------------------------------------------------------------------------------------------


def test_url_source_stores_the_downloaded_image(api: Deployment, path: str, source_server: SourceServer) -> None:
    original = make_image("jpg", 50, 40)
    name = route("photo.jpeg")
    url = source_server.add(name, original, "image/jpeg")
    before = api.snapshot()

    response = store_url(api.client, path, url, alt="From a URL", labels={"origin": "web"}, tags=["remote"])

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == METADATA_KEYS | {"alt", "sourceUrl", "externalSourceAddress"}
    assert body["class"] == "image"
    assert body["source"] == "url"
    assert body["sourceUrl"] == url
    assert body["externalSourceAddress"] == url
    assert body["alt"] == "From a URL"
    assert body["labels"] == {"origin": "web"}
    assert body["tags"] == ["remote"]
    assert body["entryId"] == 0
    variant = body["variants"][0]
    assert variant["isOriginalVariant"] is True
    assert variant["storeBucket"] == "assets"
    assert variant["attributes"] == {
        "width": 50,
        "height": 40,
        "format": "jpg",
        "colorSpace": "srgb",
        "pageCount": 1,
        "loop": 0,
    }
    assert response.headers["location"] == f"{api.base_url}/assets{path}/-/entry/0"
    assert source_server.hits(name) == 1
    assert_stored_one(api, before, body, original)
    assert content_of(api, path, 0).content == original
    rows = api.query("SELECT source, source_url FROM asset WHERE path = $1", path)
    assert rows == [("url", url)]


def test_url_source_format_comes_from_the_bytes(fs_api: Deployment, path: str, source_server: SourceServer) -> None:
    original = make_image("webp", 20, 10)
    url = source_server.add(route("lies.jpg"), original, "image/jpeg")
    response = store_url(fs_api.client, path, url)
    assert response.status_code == 201, response.text
    assert response.json()["variants"][0]["attributes"]["format"] == "webp"
    assert content_of(fs_api, path, 0).headers["content-type"] == "image/webp"


def test_url_source_follows_redirects(api: Deployment, path: str, source_server: SourceServer) -> None:
    original = make_image("png", 22, 11)
    target = route("target.png")
    source_server.add(target, original, "image/png")
    first = route("moved")
    url = source_server.redirect(first, target, 302)
    response = store_url(api.client, path, url)
    assert response.status_code == 201, response.text
    assert response.json()["sourceUrl"] == url
    assert response.json()["variants"][0]["attributes"]["width"] == 22
    assert (source_server.hits(first), source_server.hits(target)) == (1, 1)
    assert content_of(api, path, 0).content == original


def test_url_source_follows_a_chain_of_redirect_kinds(
    fs_api: Deployment, path: str, source_server: SourceServer
) -> None:
    original = make_image("gif", 12, 12)
    target = route("final.gif")
    source_server.add(target, original, "image/gif")
    hop2 = route("hop2")
    source_server.redirect(hop2, target, 308)
    hop1 = route("hop1")
    source_server.redirect(hop1, hop2, 301)
    response = store_url(fs_api.client, path, source_server.url(hop1))
    assert response.status_code == 201, response.text
    assert content_of(fs_api, path, 0).content == original


@pytest.mark.parametrize("host", ["example.invalid", "127.1", "127.0.0.2"])
def test_url_source_from_a_domain_not_allowed_is_403(
    fs_api: Deployment, path: str, source_server: SourceServer, host: str
) -> None:
    name = route("x.png")
    source_server.add(name, make_image("png", 8, 8), "image/png")
    # 127.1 reaches the source server if anything fetches it: the hit count below then proves nothing was.
    url = f"http://{host}:{source_server.port}{name}"
    assert_refused_untouched(fs_api, lambda: store_url(fs_api.client, path, url), 403)
    assert source_server.hits(name) == 0


def test_url_source_redirect_to_a_domain_not_allowed_is_403(
    fs_api: Deployment, path: str, source_server: SourceServer
) -> None:
    target = route("elsewhere.png")
    source_server.add(target, make_image("png", 8, 8), "image/png")
    first = route("bounce")
    url = source_server.redirect(first, f"http://127.1:{source_server.port}{target}")
    assert_refused_untouched(fs_api, lambda: store_url(fs_api.client, path, url), 403)
    assert source_server.hits(first) == 1
    assert source_server.hits(target) == 0


@pytest.mark.parametrize("status", [404, 500])
def test_url_source_upstream_error_is_502(api: Deployment, path: str, source_server: SourceServer, status: int) -> None:
    url = source_server.add(route("broken.png"), b"nope", "text/plain", status=status)
    assert_refused_untouched(api, lambda: store_url(api.client, path, url), 502)


def test_url_source_endless_body_is_413(api: Deployment, path: str, source_server: SourceServer) -> None:
    url = source_server.endless(route("endless.png"), "image/png", prefix=make_image("png", 8, 8))
    assert_refused_untouched(api, lambda: store_url(api.client, path, url), 413)


def test_url_source_declared_length_over_limit_is_413(
    fs_api: Deployment, path: str, source_server: SourceServer
) -> None:
    url = source_server.endless(
        route("declared.png"), "image/png", prefix=make_image("png", 8, 8), total=URL_MAX_BYTES + 1, chunked=False
    )
    assert_refused_untouched(fs_api, lambda: store_url(fs_api.client, path, url), 413)


@pytest.mark.parametrize("kind", ["text", "pdf", "svg"])
def test_url_source_non_image_is_415(fs_api: Deployment, path: str, source_server: SourceServer, kind: str) -> None:
    url = source_server.add(route(f"thing.{kind}"), NOT_IMAGES[kind], "image/png")
    assert_refused_untouched(fs_api, lambda: store_url(fs_api.client, path, url), 415)


def test_url_source_truncated_image_is_400(fs_api: Deployment, path: str, source_server: SourceServer) -> None:
    whole = make_image("jpg", 200, 150)
    url = source_server.add(route("cut.jpg"), whole[: len(whole) // 2], "image/jpeg")
    assert_refused_untouched(fs_api, lambda: store_url(fs_api.client, path, url), 400)


def test_url_source_type_not_allowed_at_path_is_403(fs_api: Deployment, source_server: SourceServer) -> None:
    url = source_server.add(route("photo.jpg"), make_image("jpg", 8, 8), "image/jpeg")
    assert_refused_untouched(fs_api, lambda: store_url(fs_api.client, unique("/pngonly"), url), 403)


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x.png", "file:///etc/passwd", "not a url", "http://"], ids=["ftp", "file", "text", "bare"]
)
def test_url_source_unusable_url_is_refused(fs_api: Deployment, path: str, url: str) -> None:
    assert_refused_untouched(fs_api, lambda: store_url(fs_api.client, path, url), None)
