"""Share links over HTTP against a real server: create, serve, list, revoke, expire, count, and refuse.

A share is made with `POST /shares` and served at its token URL without an API key or a
signature. Every check looks from the outside: the bytes served against the stored original
(read back from the object store where the store allows it), the share rows in PostgreSQL,
and the answers' headers. Refused requests must leave no share behind.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import msgspec
import pytest

from tests.support.access import CACHE_TTL, assert_refused, bearer, create_key, eventually
from tests.support.deployment import Deployment, running
from tests.support.images import describe, make_image
from tests.support.services import PostgresService

SHARES_CONFIG = """
[paths."/**"]
object-store.bucket = "assets"

[paths."/private/**".access]
read = "key"

[paths."/signed/**".url-signing]
enabled = true
secret-key = "share-test-key"

[paths."/profiled/**".transform.on-demand-variant]
mode = "profile_only"

[variant-profiles.tiny]
w = 10
format = "webp"
"""

KEYED_CONFIG = """
[paths."/**"]
object-store.bucket = "assets"

[paths."/private/**".access]
read = "key"
"""

PNG = make_image("png", 40, 30)
SECOND_PNG = make_image("png", 24, 18)
THIRD_JPG = make_image("jpg", 36, 12)


# --- helpers --------------------------------------------------------------------------------------


def unique(prefix: str = "t") -> str:
    return f"/{prefix}/{uuid.uuid4().hex[:12]}"


def store(
    deployment: Deployment, path: str, image: bytes = PNG, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    answer = deployment.client.post(
        f"/assets{path}",
        files={"metadata": (None, json.dumps({"alt": "shared"}), "application/json"), "asset": ("i", image)},
        headers=dict(headers or {}),
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def create(deployment: Deployment, body: object, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return deployment.client.post("/shares", json=body, headers=dict(headers or {}))


def created(deployment: Deployment, body: object, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    answer = create(deployment, body, headers)
    assert answer.status_code == 201, answer.text
    record: dict[str, Any] = answer.json()
    return record


def served(url: str, headers: Mapping[str, str] | None = None, method: str = "GET") -> httpx.Response:
    """The token URL is fetched like an outsider would: a fresh client, no key, no cookies."""
    with httpx.Client(timeout=30) as outsider:
        return outsider.request(method, url, headers=dict(headers or {}))


def listed(deployment: Deployment, headers: Mapping[str, str] | None = None, **query: str) -> list[dict[str, Any]]:
    answer = deployment.client.get("/shares", params=query, headers=dict(headers or {}))
    assert answer.status_code == 200, answer.text
    records: list[dict[str, Any]] = answer.json()
    return records


def share_rows(deployment: Deployment) -> list[tuple[Any, ...]]:
    return deployment.query(
        "SELECT id, token_hash, path, asset_id, entry_id, transformation, expires_at, max_downloads, downloads,"
        " revoked_at FROM share ORDER BY id"
    )


def original_bytes(deployment: Deployment, record: dict[str, Any], fallback: bytes) -> bytes:
    """The stored original, read from the object store itself where the test can see it."""
    original = record["variants"][0]
    try:
        return deployment.read_object(original["storeBucket"], original["storeKey"])
    except LookupError:  # the in-memory store lives inside the server
        return fallback


def wait_for_status(probe: Callable[[], httpx.Response], status: int, timeout: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    answer = probe()
    while answer.status_code != status and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = probe()
    return answer


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shares_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    """No API key exists here, so share management runs open, as every other write does."""
    with running(tmp_path_factory, postgres, "shares", SHARES_CONFIG) as deployment:
        yield deployment


class Keys(msgspec.Struct):
    deployment: Deployment
    writer: str
    reader: str
    admin: str
    limited_writer: str
    limited_reader: str
    prefix: str


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Keys]:
    env = {"KONIFER_EDGE_API_KEY_CACHE_TTL": CACHE_TTL}
    with running(tmp_path_factory, postgres, "shares-keyed", KEYED_CONFIG, env) as deployment:
        prefix = unique("team")
        keys = Keys(
            deployment=deployment,
            writer=create_key(deployment, "assets:write"),
            reader=create_key(deployment, "assets:read"),
            admin=create_key(deployment, "assets:admin"),
            limited_writer=create_key(deployment, "assets:write", prefix=prefix),
            limited_reader=create_key(deployment, "assets:read", prefix=prefix),
            prefix=prefix,
        )
        # Until the server's cached "no key exists" expires, anonymous share writes still pass.
        eventually(lambda: create(deployment, {"path": "/nothing/here"}).status_code, 401)
        yield keys


# --- creating and serving -------------------------------------------------------------------------


def test_an_asset_share_serves_the_stored_original_on_every_store(api: Deployment, path: str) -> None:
    asset = store(api, path)
    answer = create(api, {"path": path, "entryId": asset["entryId"]})
    assert answer.status_code == 201, answer.text
    record = answer.json()
    assert answer.headers["location"] == f"{api.base_url}/shares/{record['id']}"
    assert answer.headers["cache-control"] == "no-store"
    assert record["kind"] == "asset"
    assert (record["path"], record["entryId"]) == (path, asset["entryId"])
    assert (record["status"], record["downloads"], record["transformation"]) == ("active", 0, {})
    assert "expiresAt" not in record and "maxDownloads" not in record
    assert record["url"] == f"{api.base_url}/s/{record['token']}"
    assert len(record["token"]) == 43

    shared = served(record["url"])
    assert shared.status_code == 200, shared.text
    assert shared.content == original_bytes(api, asset, PNG)
    assert shared.headers["content-type"] == "image/png"
    assert shared.headers["cache-control"] == "private, no-store"
    assert shared.headers["referrer-policy"] == "no-referrer"
    # Purge tags would tell the holder of a link where the asset lives; nothing caches it anyway.
    assert "cache-tag" not in shared.headers and "surrogate-key" not in shared.headers
    assert shared.headers["k-alt"] == "shared"


def test_a_share_with_a_transformation_serves_the_rendered_variant(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    record = created(shares_api, {"path": path, "entryId": 0, "transformation": {"w": 20, "format": "webp"}})
    assert record["transformation"] == {"format": "webp", "w": "20"}
    shared = served(record["url"])
    assert shared.status_code == 200, shared.text
    assert shared.headers["content-type"] == "image/webp"
    info = describe(shared.content)
    assert (info.fmt, info.width, info.height) == ("webp", 20, 15)
    # The same bytes the asset API gives for the same parameters: one variant, not a second render.
    direct = shares_api.client.get(f"/assets{path}/-/entry/0/content?w=20&format=webp")
    assert direct.headers["k-cache-status"] == "hit"
    assert direct.content == shared.content


def test_without_a_format_the_share_negotiates_like_content(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    record = created(shares_api, {"path": path, "entryId": 0, "transformation": {"w": "16"}})
    webp = served(record["url"], {"Accept": "image/webp,*/*;q=0.5"})
    assert webp.headers["content-type"] == "image/webp"
    assert webp.headers["vary"] == "Accept"
    assert served(record["url"]).headers["content-type"] == "image/png"


def test_a_path_share_serves_the_newest_and_any_chosen_entry(shares_api: Deployment) -> None:
    path = unique()
    first = store(shares_api, path, PNG)
    record = created(shares_api, {"path": path})
    assert record["kind"] == "path" and "entryId" not in record
    assert served(record["url"]).content == PNG
    second = store(shares_api, path, SECOND_PNG)
    assert served(record["url"]).content == SECOND_PNG
    assert served(f"{record['url']}/-/entry/{first['entryId']}").content == PNG
    assert served(f"{record['url']}/-/entry/{second['entryId']}").content == SECOND_PNG
    assert_refused(served(f"{record['url']}/-/entry/99"), 404, "asset_not_found")
    assert_refused(served(f"{record['url']}/-/entry/x"), 400, "invalid_entry_id")
    # An asset share names its asset already.
    pinned = created(shares_api, {"path": path, "entryId": first["entryId"]})
    assert_refused(served(f"{pinned['url']}/-/entry/{second['entryId']}"), 400, "invalid_selector")


def test_shares_serve_key_only_and_signed_paths_without_a_key_or_signature(shares_api: Deployment) -> None:
    private = unique("private")
    store(shares_api, private)
    assert_refused(shares_api.client.get(f"/assets{private}/-/content"), 401, "missing_api_key")
    shared = served(created(shares_api, {"path": private, "entryId": 0})["url"])
    assert (shared.status_code, shared.content) == (200, PNG)

    signed = unique("signed")
    store(shares_api, signed)
    assert_refused(shares_api.client.get(f"/assets{signed}/-/content"), 403, "missing_signature")
    shared = served(created(shares_api, {"path": signed})["url"])
    assert (shared.status_code, shared.content) == (200, PNG)


def test_a_share_keeps_to_the_paths_on_demand_rules(shares_api: Deployment) -> None:
    path = unique("profiled")
    store(shares_api, path)
    before = share_rows(shares_api)
    assert_refused(create(shares_api, {"path": path, "transformation": {"w": "10"}}), 400, "transformation_not_allowed")
    assert share_rows(shares_api) == before
    record = created(shares_api, {"path": path, "transformation": {"profile": "tiny"}})
    info = describe(served(record["url"]).content)
    assert (info.fmt, info.width) == ("webp", 10)


def test_head_304_and_ranges_behave_as_on_content_and_only_get_with_bytes_counts(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    record = created(shares_api, {"path": path, "entryId": 0})
    url = record["url"]
    head = served(url, method="HEAD")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(PNG))
    full = served(url)
    etag = full.headers["etag"]
    assert served(url, {"If-None-Match": etag}).status_code == 304
    part = served(url, {"Range": "bytes=0-9"})
    assert (part.status_code, part.content) == (206, PNG[:10])
    assert served(url, {"Range": f"bytes={len(PNG) + 10}-"}).status_code == 416
    (again,) = [r for r in listed(shares_api, path=path) if r["id"] == record["id"]]
    assert again["downloads"] == 2  # the 200 and the 206


# --- expiry, revocation, download limits ----------------------------------------------------------


def test_an_expired_share_answers_410(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    record = created(shares_api, {"path": path, "entryId": 0, "expiresIn": 1})
    assert datetime.fromisoformat(record["expiresAt"]) > datetime.fromisoformat(record["createdAt"])
    gone = wait_for_status(lambda: served(record["url"]), 410)
    assert_refused(gone, 410, "share_expired")
    assert served(record["url"], method="HEAD").status_code == 410
    (listed_record,) = listed(shares_api, path=path)
    assert listed_record["status"] == "expired"
    # The asset itself is untouched.
    assert shares_api.client.get(f"/assets{path}/-/content").status_code == 200


def test_expires_at_is_kept_as_given_and_naive_times_are_utc(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    moment = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    aware = created(shares_api, {"path": path, "expiresAt": moment.isoformat()})
    naive = created(shares_api, {"path": path, "expiresAt": moment.replace(tzinfo=None).isoformat()})
    offset = created(
        shares_api, {"path": path, "expiresAt": moment.astimezone(timezone(timedelta(hours=5))).isoformat()}
    )
    for record in (aware, naive, offset):
        assert datetime.fromisoformat(record["expiresAt"]) == moment
        assert record["expiresAt"].endswith("Z")
        assert served(record["url"]).status_code == 200


def test_a_revoked_share_answers_410_at_once(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    record = created(shares_api, {"path": path, "entryId": 0})
    assert served(record["url"]).status_code == 200
    assert shares_api.client.delete(f"/shares/{record['id']}").status_code == 204
    assert_refused(served(record["url"]), 410, "share_revoked")
    revoked = shares_api.client.get(f"/shares/{record['id']}").json()
    assert revoked["status"] == "revoked" and "revokedAt" in revoked
    # Revoking again changes nothing and says so the same way.
    assert shares_api.client.delete(f"/shares/{record['id']}").status_code == 204
    assert shares_api.client.get(f"/shares/{record['id']}").json()["revokedAt"] == revoked["revokedAt"]
    assert_refused(shares_api.client.delete(f"/shares/{uuid.uuid4()}"), 404, "share_not_found")
    assert_refused(shares_api.client.delete("/shares/not-a-uuid"), 400, "invalid_share_id")
    assert_refused(shares_api.client.get("/shares/not-a-uuid"), 400, "invalid_share_id")
    # The other shares of the asset go on working.
    other = created(shares_api, {"path": path, "entryId": 0})
    assert served(other["url"]).status_code == 200


def test_a_download_limit_is_exact(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    record = created(shares_api, {"path": path, "entryId": 0, "maxDownloads": 2})
    assert record["maxDownloads"] == 2
    assert [served(record["url"]).status_code for _ in range(2)] == [200, 200]
    assert_refused(served(record["url"]), 410, "share_exhausted")
    assert served(record["url"], method="HEAD").status_code == 410
    assert_refused(served(record["url"], {"If-None-Match": "*"}), 410, "share_exhausted")
    after = shares_api.client.get(f"/shares/{record['id']}").json()
    assert (after["status"], after["downloads"]) == ("exhausted", 2)


def test_concurrent_downloads_never_pass_the_limit(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    limit, attempts = 4, 24
    record = created(shares_api, {"path": path, "entryId": 0, "maxDownloads": limit})
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: served(record["url"]), range(attempts)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * limit + [410] * (attempts - limit)
    assert all(answer.content == PNG for answer in answers if answer.status_code == 200)
    rows = shares_api.query("SELECT downloads FROM share WHERE id = $1", uuid.UUID(record["id"]))
    assert rows == [(limit,)]


def test_deleting_the_asset_makes_its_shares_answer_404(api: Deployment, path: str) -> None:
    store(api, path)
    store(api, path, SECOND_PNG)
    first = created(api, {"path": path, "entryId": 0, "maxDownloads": 5})
    second = created(api, {"path": path, "entryId": 1})
    whole = created(api, {"path": path})
    assert api.client.delete(f"/assets{path}/-/entry/0").status_code == 204
    assert_refused(served(first["url"]), 404, "share_not_found")
    assert_refused(api.client.get(f"/shares/{first['id']}"), 404, "share_not_found")
    assert_refused(api.client.get("/shares", params={"asset": f"{path}/-/entry/0"}), 404, "asset_not_found")
    assert {record["id"] for record in listed(api, path=path)} == {second["id"], whole["id"]}
    assert api.query("SELECT count(*) FROM share WHERE id = $1", uuid.UUID(first["id"])) == [(0,)]
    assert served(second["url"]).content == SECOND_PNG

    # A path share outlives the assets at its path: nothing to serve, then the next one stored.
    assert api.client.delete(f"/assets{path}/-/all").status_code == 204
    assert_refused(served(second["url"]), 404, "share_not_found")
    assert_refused(served(whole["url"]), 404, "asset_not_found")
    store(api, path, THIRD_JPG)
    assert served(whole["url"]).content == THIRD_JPG


# --- listing --------------------------------------------------------------------------------------


def test_listing_by_asset_and_by_path_never_shows_a_token(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    store(shares_api, path)
    one = created(shares_api, {"path": path, "entryId": 0})
    other = created(shares_api, {"path": path, "entryId": 1, "transformation": {"w": "8"}})
    whole = created(shares_api, {"path": path, "maxDownloads": 3})
    by_asset = listed(shares_api, asset=f"{path}/-/entry/0")
    assert [record["id"] for record in by_asset] == [one["id"]]
    by_path = listed(shares_api, path=path)
    assert [record["id"] for record in by_path] == [whole["id"], other["id"], one["id"]]
    single = shares_api.client.get(f"/shares/{other['id']}")
    assert single.status_code == 200 and single.headers["cache-control"] == "no-store"
    for text in (json.dumps(by_asset), json.dumps(by_path), single.text):
        for record in (one, other, whole):
            assert record["token"] not in text
        assert '"token"' not in text and '"url"' not in text
    assert listed(shares_api, path=unique()) == []
    # Only the SHA-256 of a token is stored.
    stored_hashes = {bytes(row[0]) for row in shares_api.query("SELECT token_hash FROM share WHERE path = $1", path)}
    assert stored_hashes == {hashlib.sha256(r["token"].encode()).digest() for r in (one, other, whole)}


def test_bad_listing_queries_are_400(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    for query, error in (
        ({}, "invalid_query"),
        ({"asset": f"{path}/-/entry/0", "path": path}, "invalid_query"),
        ({"asset": path}, "invalid_query"),
        ({"asset": f"{path}/-/entry/x"}, "invalid_entry_id"),
        ({"asset": f"{path}/-/content"}, "invalid_query"),
        ({"path": "a//b"}, "invalid_path"),
        ({"path": path, "limit": "3"}, "invalid_query"),
    ):
        assert_refused(shares_api.client.get("/shares", params=query), 400, error)
    assert_refused(shares_api.client.get(f"/shares?path={path}&path={path}"), 400, "invalid_query")
    assert_refused(shares_api.client.get("/shares", params={"asset": f"{path}/-/entry/7"}), 404, "asset_not_found")


# --- refusals -------------------------------------------------------------------------------------


def test_every_bad_request_is_refused_clearly_and_stores_nothing(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    bodies: list[tuple[object, int, str]] = [
        ({"entryId": 0}, 400, "invalid_share"),
        ({"path": path, "colour": "red"}, 400, "invalid_share"),
        ({"path": 7}, 400, "invalid_share"),
        ({"path": path, "entryId": "0"}, 400, "invalid_share"),
        ({"path": path, "entryId": -1}, 400, "invalid_share"),
        ([path], 400, "invalid_share"),
        ({"path": path, "expiresAt": past}, 400, "invalid_expiry"),
        ({"path": path, "expiresAt": "tomorrow"}, 400, "invalid_share"),
        ({"path": path, "expiresAt": "2999-01-01T00:00:00Z"}, 400, "invalid_expiry"),
        ({"path": path, "expiresAt": future, "expiresIn": 60}, 400, "invalid_expiry"),
        ({"path": path, "expiresIn": 0}, 400, "invalid_expiry"),
        ({"path": path, "expiresIn": -5}, 400, "invalid_expiry"),
        ({"path": path, "expiresIn": 1.5}, 400, "invalid_share"),
        ({"path": path, "maxDownloads": 0}, 400, "invalid_share"),
        ({"path": path, "maxDownloads": -3}, 400, "invalid_share"),
        ({"path": path, "maxDownloads": 2**40}, 400, "invalid_share"),
        ({"path": path, "maxDownloads": True}, 400, "invalid_share"),
        ({"path": path, "transformation": {"w": "wide"}}, 400, "invalid_transformation"),
        ({"path": path, "transformation": {"w": 0}}, 400, "invalid_transformation"),
        ({"path": path, "transformation": {"fit": "fill", "w": 10}}, 400, "invalid_transformation"),
        ({"path": path, "transformation": {"phone": "android"}}, 400, "invalid_transformation"),
        ({"path": path, "transformation": {"limit": "2"}}, 400, "invalid_transformation"),
        ({"path": path, "transformation": {"profile": "missing"}}, 400, "invalid_transformation"),
        ({"path": path, "transformation": {"w": True}}, 400, "invalid_share"),
        ({"path": path, "transformation": "w=10"}, 400, "invalid_share"),
        ({"path": path, "transformation": {"w": 8000, "h": 8000, "fit": "stretch"}}, 400, "output_too_large"),
        ({"path": "a//b"}, 400, "invalid_path"),
        ({"path": "/a/../b"}, 400, "invalid_path"),
        ({"path": ""}, 400, "invalid_path"),
        ({"path": unique()}, 404, "asset_not_found"),
        ({"path": path, "entryId": 9}, 404, "asset_not_found"),
    ]
    before = share_rows(shares_api)
    for body, status, error in bodies:
        answer = create(shares_api, body)
        assert_refused(answer, status, error)
        assert len(answer.json()["message"]) > 10, answer.text
    raw: list[tuple[bytes, dict[str, str], int, str]] = [
        (b"{", {"Content-Type": "application/json"}, 400, "invalid_share"),
        (b"", {"Content-Type": "application/json"}, 400, "invalid_share"),
        (b'{"path": "\xff"}', {"Content-Type": "application/json"}, 400, "invalid_share"),
        (json.dumps({"path": path}).encode(), {"Content-Type": "text/plain"}, 415, "unsupported_request_type"),
        (json.dumps({"path": path}).encode(), {}, 415, "unsupported_request_type"),
        (b'{"path": "' + b"a" * 70_000 + b'"}', {"Content-Type": "application/json"}, 413, "body_too_large"),
    ]
    for content, headers, status, error in raw:
        assert_refused(shares_api.client.post("/shares", content=content, headers=headers), status, error)
    assert_refused(shares_api.client.post("/shares?path=/x", json={"path": path}), 400, "invalid_query")
    assert share_rows(shares_api) == before
    assert listed(shares_api, path=path) == []
    assert shares_api.client.get("/health").status_code == 200


def test_the_token_url_refuses_parameters_and_unknown_tokens(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    record = created(shares_api, {"path": path, "entryId": 0, "maxDownloads": 3})
    variants_before = shares_api.query("SELECT count(*) FROM variant")
    for query in ("w=400", "format=webp", "download=1", "s=abc", "x"):
        assert_refused(served(f"{record['url']}?{query}"), 400, "invalid_query")
    # An outsider cannot make the service render anything, nor spend the link's downloads.
    assert shares_api.query("SELECT count(*) FROM variant") == variants_before
    assert shares_api.client.get(f"/shares/{record['id']}").json()["downloads"] == 0
    token = record["token"]
    for wrong in (token[:-1], token + "A", token.swapcase(), "abc", "A" * 43, "%ff", "-" * 43):
        assert_refused(served(f"{shares_api.base_url}/s/{wrong}"), 404, "share_not_found")
    assert served(f"{shares_api.base_url}/s/{'A' * 43}", method="HEAD").status_code == 404
    assert served(f"{shares_api.base_url}/s/").status_code == 404
    assert served(record["url"]).status_code == 200


def test_share_links_keep_their_token_out_of_the_access_log(shares_api: Deployment) -> None:
    path = unique()
    store(shares_api, path)
    record = created(shares_api, {"path": path})
    assert served(record["url"]).status_code == 200
    assert served(f"{record['url']}/-/entry/0").status_code == 200
    logged = ('"path":"/s/[token]"', '"path":"/s/[token]/-/entry/0"')
    deadline = time.monotonic() + 10
    log = shares_api.server.stderr_path.read_text()
    # The line is written once the answer has gone out, so it may trail the client by a moment.
    while not all(line in log for line in logged) and time.monotonic() < deadline:
        time.sleep(0.1)
        log = shares_api.server.stderr_path.read_text()
    assert all(line in log for line in logged)
    assert record["token"] not in log


def test_the_share_routes_are_in_the_openapi_schema(shares_api: Deployment) -> None:
    schema = shares_api.client.get("/schema/openapi.json").json()
    paths = schema["paths"]
    assert {"post", "get"} <= set(paths["/shares"])
    assert {"get", "delete"} <= set(paths["/shares/{share_id}"])
    assert {"get", "head"} <= set(paths["/s/{token}"])
    assert {"get", "head"} <= set(paths["/s/{token}/-/entry/{entry_id}"])
    body = paths["/shares"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["path"]
    assert {"path", "entryId", "expiresAt", "expiresIn", "maxDownloads", "transformation"} == set(body["properties"])
    assert "410" in paths["/s/{token}"]["get"]["responses"]
    assert "ShareWire" in schema["components"]["schemas"]


# --- API keys -------------------------------------------------------------------------------------


def test_managing_shares_needs_the_right_key(keyed: Keys) -> None:
    api = keyed.deployment
    path = f"{keyed.prefix}/photo"
    outside = unique("elsewhere")
    for target in (path, outside):
        store(api, target, headers=bearer(keyed.writer))
    before = share_rows(api)
    assert_refused(create(api, {"path": path}), 401, "missing_api_key")
    assert_refused(create(api, {"path": path}, bearer("ke_" + "x" * 43)), 401, "invalid_api_key")
    assert_refused(create(api, {"path": path}, bearer(keyed.reader)), 403, "insufficient_scope")
    assert_refused(create(api, {"path": outside}, bearer(keyed.limited_writer)), 403, "outside_key_prefix")
    assert share_rows(api) == before

    by_writer = created(api, {"path": path, "entryId": 0}, bearer(keyed.writer))
    by_limited = created(api, {"path": path}, bearer(keyed.limited_writer))
    by_admin = created(api, {"path": outside}, {"X-API-Key": keyed.admin})

    # Reading records needs assets:read (or admin), within the key's prefix.
    assert_refused(api.client.get("/shares", params={"path": path}), 401, "missing_api_key")
    assert_refused(
        api.client.get("/shares", params={"path": path}, headers=bearer(keyed.writer)), 403, "insufficient_scope"
    )
    assert len(listed(api, bearer(keyed.reader), path=path)) == 2
    assert len(listed(api, bearer(keyed.limited_reader), asset=f"{path}/-/entry/0")) == 1
    assert len(listed(api, {"X-API-Key": keyed.admin}, path=outside)) == 1
    assert_refused(
        api.client.get("/shares", params={"path": outside}, headers=bearer(keyed.limited_reader)),
        403,
        "outside_key_prefix",
    )
    assert_refused(
        api.client.get(f"/shares/{by_admin['id']}", headers=bearer(keyed.limited_reader)), 403, "outside_key_prefix"
    )
    assert api.client.get(f"/shares/{by_limited['id']}", headers=bearer(keyed.limited_reader)).status_code == 200

    # Revoking needs assets:write within the prefix; refusals revoke nothing.
    assert_refused(api.client.delete(f"/shares/{by_writer['id']}"), 401, "missing_api_key")
    assert_refused(
        api.client.delete(f"/shares/{by_writer['id']}", headers=bearer(keyed.reader)), 403, "insufficient_scope"
    )
    assert_refused(
        api.client.delete(f"/shares/{by_admin['id']}", headers=bearer(keyed.limited_writer)), 403, "outside_key_prefix"
    )
    assert served(by_admin["url"]).status_code == 200
    assert api.client.delete(f"/shares/{by_writer['id']}", headers=bearer(keyed.limited_writer)).status_code == 204
    assert_refused(served(by_writer["url"]), 410, "share_revoked")

    # The links themselves need no key, even on a key-only path.
    private = f"/private{keyed.prefix}"
    store(api, private, headers=bearer(keyed.writer))
    assert_refused(api.client.get(f"/assets{private}/-/content"), 401, "missing_api_key")
    link = created(api, {"path": private, "entryId": 0}, bearer(keyed.admin))
    assert served(link["url"]).content == PNG
    assert served(by_limited["url"]).content == PNG
