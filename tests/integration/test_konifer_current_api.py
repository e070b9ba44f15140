"""What Konifer v0.10 and its current client send and expect (spec 06 sections 5 to 9), over HTTP.

Negotiation that skips non-image `Accept` types, the `asset` multipart part, the health
probes, the v0.10 selector forms (delete with a bare `limit`, PUT refusals, `/-/entries`),
`K-Cache-Status` on link and info answers, the link answer's `attributes` and `expiresAt`,
label filters in query strings, and store keys that end in the format's extension.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.conftest import STANDARD_CONFIG, start_deployment
from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService, S3Service

CLIENT_ACCEPT = "application/json"  # what Konifer's Kotlin client sends on every request

CURRENT_CONFIG = (
    STANDARD_CONFIG
    + """
[variant-profiles.small]
w = 20

[variant-profiles.small-webp]
w = 20
format = "webp"

[paths."/cc/**".cache-control]
enabled = true
visibility = "public"
max-age = 600

[paths."/cc/off/**".cache-control]
enabled = false
"""
)


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service) -> Iterator[Deployment]:
    """An S3-backed server (presigned URLs need one) with profiles and nested cache-control paths."""
    deployment = start_deployment(
        tmp_path_factory.mktemp("konifer-current"), CURRENT_CONFIG, store="s3", postgres=postgres, s3=s3
    )
    try:
        yield deployment
    finally:
        deployment.stop()


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def unique(prefix: str = "/t") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}/image"


def store(
    api: Deployment,
    path: str,
    content: bytes,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = api.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, json.dumps(metadata or {}), "application/json"),
            "asset": ("upload.bin", content, "application/octet-stream"),
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("error"), str) and body["error"], body
    return body


def assert_refused(api: Deployment, send: Callable[[], httpx.Response], status: int) -> dict[str, Any]:
    """`send` is refused with `status` and a JSON error, and changes no row and no object."""
    before = api.snapshot()
    body = assert_error(send(), status)
    assert api.snapshot() == before, "a refused request changed the database or the object store"
    return body


def generated_rows(api: Deployment, path: str) -> int:
    rows = api.query(
        "SELECT count(*) FROM variant v JOIN asset a ON a.id = v.asset_id"
        " WHERE a.path = $1 AND v.transformation_key <> ''",
        path,
    )
    count: int = rows[0][0]
    return count


def asset_count(api: Deployment, path: str) -> int:
    count: int = api.query("SELECT count(*) FROM asset WHERE path = $1", path)[0][0]
    return count


def multipart(
    parts: list[tuple[str, str | None, bytes, str]], boundary: str = "k-current-boundary"
) -> tuple[bytes, dict[str, str]]:
    """A multipart body written by hand, in the given part order: (name, filename, content, content type)."""
    body = b""
    for name, filename, content, content_type in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        body += content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# --------------------------------------------------------------------------------------------------
# Section 5: Accept negotiation
# --------------------------------------------------------------------------------------------------


def test_client_accept_header_gets_the_original_format(fs_api: Deployment) -> None:
    path = unique()
    original = make_image("png", 40, 30)
    store(fs_api, path, original)
    for selector in ("content", "entry/0/content", "download"):
        answer = fs_api.client.get(f"/assets{path}/-/{selector}", headers={"Accept": CLIENT_ACCEPT})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/png"
        assert answer.content == original
        assert answer.headers["vary"] == "Accept"
    resized = fs_api.client.get(f"/assets{path}/-/content?w=20", headers={"Accept": "application/json, text/html"})
    assert resized.status_code == 200, resized.text
    assert resized.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json, image/webp", "image/webp"),
        ("image/*, image/webp;q=0.1", "image/webp"),
        ("*/*, image/avif;q=0.2, image/webp;q=0.2", "image/avif"),
        ("image/webp;q=0, image/png;q=0.3", "image/png"),
        ("image/webp;q=0", "image/jpeg"),
        ("text/html, image/bmp", "image/jpeg"),
    ],
)
def test_first_concrete_image_type_by_q_value(fs_api: Deployment, accept: str, expected: str) -> None:
    path = unique()
    store(fs_api, path, make_image("jpeg", 40, 30))
    answer = fs_api.client.get(f"/assets{path}/-/content?w=20", headers={"Accept": accept})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == expected
    assert answer.headers["vary"] == "Accept"


def test_query_format_then_profile_format_beat_accept(current: Deployment) -> None:
    path = unique()
    store(current, path, make_image("png", 40, 30))
    by_profile = current.client.get(f"/assets{path}/-/content?profile=small-webp", headers={"Accept": "image/avif"})
    assert by_profile.status_code == 200, by_profile.text
    assert by_profile.headers["content-type"] == "image/webp"
    by_query = current.client.get(
        f"/assets{path}/-/content?profile=small-webp&format=jpg", headers={"Accept": "image/avif"}
    )
    assert by_query.headers["content-type"] == "image/jpeg"
    by_accept = current.client.get(f"/assets{path}/-/content?profile=small", headers={"Accept": "image/avif"})
    assert by_accept.headers["content-type"] == "image/avif"
    by_original = current.client.get(f"/assets{path}/-/content?profile=small", headers={"Accept": CLIENT_ACCEPT})
    assert by_original.headers["content-type"] == "image/png"


def test_explicit_format_does_not_vary(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 40, 30))
    answer = fs_api.client.get(f"/assets{path}/-/content?format=webp", headers={"Accept": "image/avif"})
    assert answer.headers["content-type"] == "image/webp"
    assert "accept" not in answer.headers.get("vary", "").lower()


def test_negotiated_answers_are_recorded_per_accept(fs_api: Deployment) -> None:
    # The fast path keeps entry-pinned answers keyed by Accept; each header must keep its own answer.
    path = unique()
    store(fs_api, path, make_image("png", 40, 30))
    url = f"/assets{path}/-/entry/0/content?w=20"
    for _ in range(3):
        for accept, expected in (
            (CLIENT_ACCEPT, "image/png"),
            ("image/webp", "image/webp"),
            ("image/*, image/avif;q=0.1", "image/avif"),
        ):
            answer = fs_api.client.get(url, headers={"Accept": accept})
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == expected
            assert answer.headers["vary"] == "Accept"


# --------------------------------------------------------------------------------------------------
# Section 6: multipart part names
# --------------------------------------------------------------------------------------------------


def test_asset_part_is_the_image_and_other_parts_are_ignored(fs_api: Deployment) -> None:
    path = unique()
    original = make_image("png", 12, 10)
    before = fs_api.snapshot()
    response = fs_api.client.post(
        f"/assets{path}",
        files=[
            ("file", ("other.png", make_image("png", 30, 30), "image/png")),
            ("metadata", (None, json.dumps({"alt": "the asset part"}), "application/json")),
            ("asset", ("upload.bin", original, "application/octet-stream")),
            ("note", (None, "a form field", "text/plain")),
            ("image", ("third.png", make_image("png", 7, 7), "image/png")),
        ],
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["alt"] == "the asset part"
    assert body["variants"][0]["attributes"]["width"] == 12
    after = fs_api.snapshot()
    assert len(after.assets) == len(before.assets) + 1
    assert len(after.variants) == len(before.variants) + 1
    assert fs_api.client.get(f"/assets{path}/-/entry/0/content").content == original


@pytest.mark.parametrize("order", ["metadata-first", "asset-first"])
def test_part_order_is_free(fs_api: Deployment, order: str) -> None:
    path = unique()
    original = make_image("png", 12, 10)
    metadata = ("metadata", None, b'{"alt": "ordered"}', "application/json")
    asset = ("asset", "upload.bin", original, "application/octet-stream")
    body, headers = multipart([metadata, asset] if order == "metadata-first" else [asset, metadata])
    response = fs_api.client.post(f"/assets{path}", content=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["alt"] == "ordered"


def test_single_file_part_under_another_name_still_works(fs_api: Deployment) -> None:
    path = unique()
    original = make_image("png", 12, 10)
    body, headers = multipart(
        [
            ("metadata", None, b"{}", "application/json"),
            ("caption", None, b"not the image", "text/plain"),
            ("file", "a.png", original, "image/png"),
        ]
    )
    response = fs_api.client.post(f"/assets{path}", content=body, headers=headers)
    assert response.status_code == 201, response.text
    assert fs_api.client.get(f"/assets{path}/-/entry/0/content").content == original


@pytest.mark.parametrize(
    "parts",
    [
        [("asset", "a.png"), ("asset", "b.png")],
        [("file", "a.png"), ("image", "b.png")],
        [("file", None), ("image", None)],
    ],
    ids=["two-asset-parts", "two-named-files", "two-plain-parts"],
)
def test_two_candidate_image_parts_are_400(fs_api: Deployment, parts: list[tuple[str, str | None]]) -> None:
    path = unique()
    body, headers = multipart(
        [("metadata", None, b"{}", "application/json")]
        + [(name, filename, make_image("png", 8, 8), "image/png") for name, filename in parts]
    )
    assert_refused(fs_api, lambda: fs_api.client.post(f"/assets{path}", content=body, headers=headers), 400)
    assert asset_count(fs_api, path) == 0


def test_missing_metadata_part_is_400_json(fs_api: Deployment) -> None:
    path = unique()
    body, headers = multipart([("asset", "upload.bin", make_image("png", 8, 8), "application/octet-stream")])
    error = assert_refused(fs_api, lambda: fs_api.client.post(f"/assets{path}", content=body, headers=headers), 400)
    assert "metadata" in error["message"]


@pytest.mark.parametrize(
    "metadata",
    [
        {"url": "http://127.0.0.1/x.png"},
        {"source": {"http": {"url": "http://127.0.0.1/x.png"}}},
        {"source": {"s3": {"arn": "arn:aws:s3:::bucket/key.png"}}},
        {"alt": "x", "source": {"http": {"url": "http://127.0.0.1/x.png"}, "s3": {"arn": "arn:aws:s3:::b/k"}}},
    ],
    ids=["url", "source-http-url", "source-s3-arn", "both-sources"],
)
def test_sources_in_multipart_metadata_are_400(fs_api: Deployment, metadata: dict[str, Any]) -> None:
    path = unique()

    def send() -> httpx.Response:
        return fs_api.client.post(
            f"/assets{path}",
            files={
                "metadata": (None, json.dumps(metadata), "application/json"),
                "asset": ("upload.bin", make_image("png", 8, 8), "application/octet-stream"),
            },
        )

    error = assert_refused(fs_api, send, 400)
    assert error["error"] == "invalid_metadata"


def test_ignored_parts_count_against_the_upload_limit(fs_api: Deployment) -> None:
    # 2 000 000 is source.multipart.max-bytes in the standard configuration.
    path = unique()
    body, headers = multipart(
        [
            ("metadata", None, b"{}", "application/json"),
            ("asset", "upload.bin", make_image("png", 8, 8), "application/octet-stream"),
            ("padding", "p.bin", b"\0" * 2_100_000, "application/octet-stream"),
        ]
    )
    headers["Transfer-Encoding"] = "chunked"

    def chunks() -> Any:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    assert_refused(fs_api, lambda: fs_api.client.post(f"/assets{path}", content=chunks(), headers=headers), 413)


# --------------------------------------------------------------------------------------------------
# Sections 7 and 9: health
# --------------------------------------------------------------------------------------------------

DEADLINE_SECONDS = 60.0  # a bound on waiting for what must happen, never asserted on


def eventually(check: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < give_up, f"gave up waiting: {what}"
        time.sleep(0.1)


def test_health_is_exactly_okay(fs_api: Deployment) -> None:
    answer = fs_api.client.get("/health")
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == "application/json"
    assert answer.content == b'{"status":"okay"}'


def test_health_live_and_ready_answer_with_empty_bodies(fs_api: Deployment) -> None:
    live = fs_api.client.get("/health/live")
    assert live.status_code == 200
    assert live.content == b""
    ready = fs_api.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.content == b""
    ours = fs_api.client.get("/ready")
    assert ours.status_code == 200
    assert ours.json()["checks"] == {"database": "ok", "object_store": "ok"}


@pytest.fixture
def fragile(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    """A filesystem server of its own, whose object directory a test may take away."""
    deployment = start_deployment(
        tmp_path_factory.mktemp("konifer-current-fragile"),
        STANDARD_CONFIG,
        store="filesystem",
        postgres=postgres,
        s3=None,
    )
    try:
        yield deployment
    finally:
        deployment.stop()


def test_health_ready_follows_the_object_store_and_health_does_not(fragile: Deployment) -> None:
    objects = fragile.root / "data" / "objects"
    assert fragile.client.get("/health/ready").status_code == 200
    moved = objects.with_name("objects-away")
    objects.rename(moved)
    try:
        eventually(lambda: fragile.client.get("/health/ready").status_code == 503, "/health/ready answers 503")
        down = fragile.client.get("/health/ready")
        assert down.content == b""
        assert fragile.client.get("/ready").status_code == 503
        assert fragile.client.get("/health").content == b'{"status":"okay"}'
        assert fragile.client.get("/health/live").status_code == 200
    finally:
        moved.rename(objects)
    eventually(lambda: fragile.client.get("/health/ready").status_code == 200, "/health/ready recovers")


# --------------------------------------------------------------------------------------------------
# Section 8: delete with a bare limit
# --------------------------------------------------------------------------------------------------


def entries_at(api: Deployment, path: str) -> list[int]:
    rows = api.query("SELECT entry_id FROM asset WHERE path = $1 ORDER BY entry_id", path)
    return [row[0] for row in rows]


def store_many(api: Deployment, path: str, count: int, labels: Callable[[int], dict[str, str]] | None = None) -> None:
    for number in range(count):
        store(api, path, make_image("png", 8 + number, 8), {"labels": labels(number) if labels else {}})


def test_delete_with_a_bare_limit_removes_the_newest(fs_api: Deployment) -> None:
    path = unique()
    store_many(fs_api, path, 4)
    answer = fs_api.client.delete(f"/assets{path}?limit=2")
    assert answer.status_code == 204
    assert entries_at(fs_api, path) == [0, 1]
    assert fs_api.client.delete(f"/assets{path}?limit=-1").status_code == 204
    assert entries_at(fs_api, path) == []
    assert fs_api.client.delete(f"/assets{path}?limit=3").status_code == 204, "nothing matched is still 204"


def test_delete_with_a_bare_limit_is_narrowed_by_labels(fs_api: Deployment) -> None:
    path = unique()
    store_many(fs_api, path, 4, lambda number: {"kind": "even" if number % 2 == 0 else "odd"})
    assert fs_api.client.delete(f"/assets{path}?limit=-1&kind=odd").status_code == 204
    assert entries_at(fs_api, path) == [0, 2]
    assert fs_api.client.delete(f"/assets{path}?label:kind=even&limit=1").status_code == 204
    assert entries_at(fs_api, path) == [0]


def test_delete_modified_with_a_limit(fs_api: Deployment) -> None:
    path = unique()
    store_many(fs_api, path, 3)
    assert fs_api.client.put(f"/assets{path}/-/entry/0", json={"alt": "touched"}).status_code == 200
    assert fs_api.client.delete(f"/assets{path}/-/modified?limit=1").status_code == 204
    assert entries_at(fs_api, path) == [1, 2]


@pytest.mark.parametrize("limit", ["abc", "", "1.5", "0", "-2"])
def test_delete_with_a_bad_limit_is_400(fs_api: Deployment, limit: str) -> None:
    path = unique()
    store_many(fs_api, path, 2)
    assert_refused(fs_api, lambda: fs_api.client.delete(f"/assets{path}?limit={limit}"), 400)
    assert entries_at(fs_api, path) == [0, 1]


# --------------------------------------------------------------------------------------------------
# Section 8: PUT
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/-/entry/0?limit=2",
        "/-/entry/0?limit=1",
        "/-/entry/0/new",
        "/-/modified/entry/0",
        "/-/entry/0/link",
        "/-/metadata/entry/0",
        "/-/entry/0/1",
        "/-/new",
        "?limit=1",
        "",
    ],
)
def test_put_takes_only_an_entry(fs_api: Deployment, target: str) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 8, 8), {"alt": "kept"})
    assert_refused(fs_api, lambda: fs_api.client.put(f"/assets{path}{target}", json={"alt": "changed"}), 400)
    assert fs_api.client.get(f"/assets{path}/-/metadata").json()["alt"] == "kept"


def test_put_answers_the_full_asset_and_replaces_alt_labels_and_tags(fs_api: Deployment) -> None:
    path = unique()
    stored = store(fs_api, path, make_image("png", 8, 8), {"alt": "a", "labels": {"k": "v"}, "tags": ["t"]})
    answer = fs_api.client.put(f"/assets{path}/-/entry/0", json={"labels": {"new": "label"}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["labels"] == {"new": "label"}
    assert body["tags"] == []
    assert "alt" not in body
    assert body["entryId"] == 0
    assert body["variants"] == stored["variants"]
    assert {"class", "source", "createdAt", "modifiedAt"} <= set(body)
    assert fs_api.client.get(f"/assets{path}/-/entry/0/metadata").json() == body


# --------------------------------------------------------------------------------------------------
# Section 8: K-Cache-Status on link and info
# --------------------------------------------------------------------------------------------------


def test_cache_status_on_link_answers(fs_api: Deployment) -> None:
    path = unique()
    store_many(fs_api, path, 2)
    first = fs_api.client.get(f"/assets{path}/-/link?w=5")
    assert first.status_code == 200, first.text
    assert first.headers["k-cache-status"] == "miss"
    again = fs_api.client.get(f"/assets{path}/-/link?w=5")
    assert again.headers["k-cache-status"] == "hit"
    assert fs_api.client.get(f"/assets{path}/-/entry/0/link").headers["k-cache-status"] == "hit"
    many = fs_api.client.get(f"/assets{path}/-/link?limit=2")
    assert many.status_code == 200
    assert isinstance(many.json(), list)
    assert "k-cache-status" not in many.headers


def test_cache_status_on_single_entry_metadata(fs_api: Deployment) -> None:
    path = unique()
    store_many(fs_api, path, 2)
    for selector in ("metadata", "info", "entry/1/info", "entry/0/metadata", "info/modified"):
        for _ in range(2):  # the second answer may come from the recorded answers
            answer = fs_api.client.get(f"/assets{path}/-/{selector}")
            assert answer.status_code == 200, answer.text
            assert answer.headers["k-cache-status"] == "hit", selector
    for selector in ("info?limit=2", "metadata/-1", "entries"):
        answer = fs_api.client.get(f"/assets{path}/-/{selector}")
        assert answer.status_code == 200, answer.text
        assert "k-cache-status" not in answer.headers, selector


# --------------------------------------------------------------------------------------------------
# Section 8: labels in query strings
# --------------------------------------------------------------------------------------------------


def test_label_filters_in_query_strings(fs_api: Deployment) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 8, 8), {"labels": {"kind": "a", "w": "wide", "exp": "soon"}})

    def status(query: str) -> int:
        return fs_api.client.get(f"/assets{path}/-/metadata?{query}").status_code

    assert status("kind=a") == 200
    assert status("kind=b") == 404
    assert status("kind=") == 200, "an empty value is not a label filter"
    assert status("label:kind=") == 200, "nor with the prefix"
    assert status("label:kind=a") == 200, "the prefix is stripped"
    assert status("label:w=wide") == 200, "the prefix makes a reserved name a label"
    assert status("label:w=narrow") == 404
    assert status("pixel-layout=RGB") == 200, "pixel-layout is reserved, not a label"
    assert status("exp=soon") == 200
    assert status("exp=123") == 404, "exp is not reserved: it is a label filter"
    assert status("s=x&kind=a") == 200


# --------------------------------------------------------------------------------------------------
# Section 9: /-/entries
# --------------------------------------------------------------------------------------------------


def test_entries_default_to_the_newest_twenty(fs_api: Deployment) -> None:
    path = unique()
    store_many(fs_api, path, 22, lambda number: {"parity": str(number % 2)})
    answer = fs_api.client.get(f"/assets{path}/-/entries", headers={"Accept": CLIENT_ACCEPT})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert list(body) == ["entries"]
    assert [entry["entryId"] for entry in body["entries"]] == list(range(21, 1, -1))
    assert body["entries"][0] == fs_api.client.get(f"/assets{path}/-/entry/21/metadata").json()
    everything = fs_api.client.get(f"/assets{path}/-/entries?limit=-1").json()["entries"]
    assert len(everything) == 22
    assert [e["entryId"] for e in fs_api.client.get(f"/assets{path}/-/new/entries?limit=3").json()["entries"]] == [
        21,
        20,
        19,
    ]
    assert [e["entryId"] for e in fs_api.client.get(f"/assets{path}/-/entries/2").json()["entries"]] == [21, 20]
    odd = fs_api.client.get(f"/assets{path}/-/entries?parity=1&limit=-1").json()["entries"]
    assert [e["entryId"] for e in odd] == list(range(21, 0, -2))


def test_entries_by_modification(fs_api: Deployment) -> None:
    path = unique()
    store_many(fs_api, path, 3)
    assert fs_api.client.put(f"/assets{path}/-/entry/0", json={"alt": "touched"}).status_code == 200
    modified = fs_api.client.get(f"/assets{path}/-/modified/entries").json()["entries"]
    assert [entry["entryId"] for entry in modified] == [0, 2, 1]


def test_entries_with_nothing_matched_are_an_empty_list(fs_api: Deployment) -> None:
    path = unique()
    answer = fs_api.client.get(f"/assets{path}/-/entries")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"entries": []}
    store(fs_api, path, make_image("png", 8, 8), {"labels": {"kind": "a"}})
    assert fs_api.client.get(f"/assets{path}/-/entries?kind=b").json() == {"entries": []}
    assert len(fs_api.client.get(f"/assets{path}/-/entries?limit=1").json()["entries"]) == 1


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/-/entries/entry/0", "Entries cannot be selected by entry ID"),
        ("/-/entry/0/entries", "Entries cannot be selected by entry ID"),
        ("/-/entries?w=10", None),
        ("/-/entries?format=png", None),
        ("/-/entries?limit=abc", None),
        ("/-/entries/link", None),
        ("/-/entries/entries", None),
    ],
)
def test_bad_entries_requests_are_400(fs_api: Deployment, target: str, message: str | None) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 8, 8))
    error = assert_refused(fs_api, lambda: fs_api.client.get(f"/assets{path}{target}"), 400)
    if message is not None:
        assert error["message"] == message


# --------------------------------------------------------------------------------------------------
# Section 9: the link answer's attributes and expiresAt
# --------------------------------------------------------------------------------------------------


def test_link_carries_the_selected_variants_attributes(current: Deployment) -> None:
    path = unique()
    store(current, path, make_image("png", 40, 30), {"alt": "linked"})
    link = current.client.get(f"/assets{path}/-/link?w=20", headers={"Accept": CLIENT_ACCEPT}).json()
    assert link["attributes"]["width"] == 20
    assert link["attributes"]["height"] == 15
    assert link["attributes"]["format"] == "png"
    assert link["attributes"]["pageCount"] == 1
    assert link["attributes"]["loop"] == 0
    assert "expiresAt" not in link
    rendered = [
        v for v in current.client.get(f"/assets{path}/-/metadata").json()["variants"] if v["attributes"]["width"] == 20
    ]
    assert link["attributes"] == rendered[0]["attributes"]
    original = current.client.get(f"/assets{path}/-/link?format=webp").json()
    assert original["attributes"]["format"] == "webp"
    many = current.client.get(f"/assets{path}/-/link?limit=-1").json()
    assert many[0]["attributes"]["width"] == 40


def test_presigned_link_carries_expires_at(current: Deployment) -> None:
    path = unique("/presigned")
    store(current, path, make_image("png", 40, 30))
    before = datetime.now(UTC).replace(tzinfo=None)
    link = current.client.get(f"/assets{path}/-/link").json()
    after = datetime.now(UTC).replace(tzinfo=None)
    assert "X-Amz-Signature" in link["url"]
    expires_at = link["expiresAt"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?", expires_at), expires_at
    ttl = timedelta(minutes=10)  # presigned.ttl of /presigned/** in the standard configuration
    assert before + ttl - timedelta(seconds=1) <= datetime.fromisoformat(expires_at) <= after + ttl
    assert link["attributes"]["width"] == 40
    templated = unique("/tmpl")
    store(current, templated, make_image("png", 8, 8))
    assert "expiresAt" not in current.client.get(f"/assets{templated}/-/link").json()


def test_presigned_on_a_filesystem_store_has_no_expires_at(fs_api: Deployment) -> None:
    path = unique("/presigned")
    store(fs_api, path, make_image("png", 8, 8))
    link = fs_api.client.get(f"/assets{path}/-/link").json()
    assert "expiresAt" not in link
    assert link["url"].endswith("/-/entry/0/content")


# --------------------------------------------------------------------------------------------------
# Object keys: `<uuid>.<extension>`, as Konifer names its objects
# --------------------------------------------------------------------------------------------------

UUID_KEY = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.mark.parametrize(("fmt", "extension"), [("png", "png"), ("jpeg", "jpeg"), ("gif", "gif"), ("webp", "webp")])
def test_the_originals_key_ends_with_its_extension(current: Deployment, fmt: str, extension: str) -> None:
    path = unique()
    body = store(current, path, make_image(fmt, 16, 12))
    variant = body["variants"][0]
    assert re.fullmatch(rf"{UUID_KEY}\.{extension}", variant["storeKey"]), variant["storeKey"]
    assert (variant["storeBucket"], variant["storeKey"]) in current.stored_objects()


@pytest.mark.parametrize(
    ("output", "extension"),
    [
        ("jpg", "jpeg"),
        ("png", "png"),
        ("webp", "webp"),
        ("avif", "avif"),
        ("jxl", "jxl"),
        ("heic", "heic"),
        ("gif", "gif"),
    ],
)
def test_each_variants_key_ends_with_its_formats_extension(fs_api: Deployment, output: str, extension: str) -> None:
    path = unique()
    store(fs_api, path, make_image("png", 16, 12))
    answer = fs_api.client.get(f"/assets{path}/-/content?w=8&format={output}")
    assert answer.status_code == 200, answer.text
    variants = fs_api.client.get(f"/assets{path}/-/metadata").json()["variants"]
    generated = [variant for variant in variants if not variant["isOriginalVariant"]]
    assert len(generated) == 1
    assert re.fullmatch(rf"{UUID_KEY}\.{extension}", generated[0]["storeKey"]), generated[0]["storeKey"]
    assert fs_api.read_object(generated[0]["storeBucket"], generated[0]["storeKey"]) == answer.content


def test_objects_stored_under_bare_uuid_keys_keep_working(fs_api: Deployment) -> None:
    path = unique()
    original = make_image("png", 16, 12)
    variant = store(fs_api, path, original)["variants"][0]
    objects = fs_api.root / "data" / "objects" / variant["storeBucket"]
    bare = str(uuid.uuid4())
    (objects / variant["storeKey"]).rename(objects / bare)
    fs_api.query("UPDATE variant SET store_key = $1 WHERE store_key = $2", bare, variant["storeKey"])
    # An update moves the path's generation, so nothing cached still names the old key.
    assert fs_api.client.put(f"/assets{path}/-/entry/0", json={"alt": "old key"}).status_code == 200
    assert fs_api.client.get(f"/assets{path}/-/metadata").json()["variants"][0]["storeKey"] == bare
    assert fs_api.client.get(f"/assets{path}/-/entry/0/content").content == original
    resized = fs_api.client.get(f"/assets{path}/-/entry/0/content?w=8")
    assert resized.status_code == 200, resized.text
    assert fs_api.client.delete(f"/assets{path}/-/entry/0").status_code == 204


# --------------------------------------------------------------------------------------------------
# cache-control: enabled = false under a parent that enables it sends no Cache-Control at all
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selector", ["entry/0/content", "content", "entry/0/download", "entry/0/metadata", "metadata", "link", "redirect"]
)
def test_disabled_cache_control_under_an_enabled_parent_sends_none(current: Deployment, selector: str) -> None:
    enabled, disabled = unique("/cc"), unique("/cc/off")
    store(current, enabled, make_image("png", 16, 12))
    store(current, disabled, make_image("png", 16, 12))
    for _ in range(3):  # the later answers of entry-pinned GETs come from the recorded answers
        on = current.client.get(f"/assets{enabled}/-/{selector}")
        assert on.status_code in (200, 307), on.text
        assert on.headers["cache-control"] == "public, max-age=600"
        off = current.client.get(f"/assets{disabled}/-/{selector}")
        assert off.status_code == on.status_code, off.text
        assert "cache-control" not in off.headers, off.headers
        assert off.headers["cache-tag"], "purge tags stay"
    head = current.client.head(f"/assets{disabled}/-/{selector}")
    assert "cache-control" not in head.headers


def test_unconfigured_paths_keep_the_built_in_defaults(current: Deployment) -> None:
    path = unique()
    store(current, path, make_image("png", 16, 12))
    pinned = current.client.get(f"/assets{path}/-/entry/0/content")
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert current.client.get(f"/assets{path}/-/metadata").headers["cache-control"].startswith("public, max-age=")
