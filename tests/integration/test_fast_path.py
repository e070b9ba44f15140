"""Repeated entry content, metadata and link fetches are answered from what the full route recorded (http/replay.py).

Each test first makes the full route answer (and record), then checks that the repeat is the
same answer, and that nothing a repeat must not reuse is reused: a write in between, another
`Accept`, a range, a key-only path, a missing signature.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.access import CACHE_TTL, assert_refused, bearer, create_key, eventually, signed
from tests.support.assets import stored
from tests.support.deployment import Deployment, running
from tests.support.images import describe, make_image
from tests.support.services import PostgresService

PER_REQUEST = {"x-request-id", "date"}
IMAGE = make_image("png", 40, 20)
FIRST = {"alt": "first"}


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {name: value for name, value in response.headers.items() if name not in PER_REQUEST}
    return response.status_code, headers, response.content


def test_a_repeat_is_the_same_answer(api: Deployment) -> None:
    path = f"/fast/{uuid.uuid4().hex[:10]}"
    stored(api.client, path, IMAGE, metadata=FIRST)
    url = f"/assets{path}/-/entry/0/content?w=20&format=webp"
    first, second, third = (api.client.get(url) for _ in range(3))
    assert first.status_code == 200
    assert comparable(second) == comparable(third)
    assert comparable(first)[2] == comparable(second)[2]
    assert {**comparable(first)[1], "k-cache-status": "hit"} == comparable(second)[1]
    head = api.client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == second.headers["content-length"]
    revalidated = api.client.get(url, headers={"If-None-Match": second.headers["etag"]})
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert revalidated.headers["etag"] == second.headers["etag"]
    partial = api.client.get(url, headers={"Range": "bytes=0-9"})
    assert partial.status_code == 206 and partial.content == second.content[:10]


def test_each_answer_carries_its_request_id(api: Deployment) -> None:
    path = f"/fast/{uuid.uuid4().hex[:10]}"
    stored(api.client, path, IMAGE, metadata=FIRST)
    url = f"/assets{path}/-/entry/0/content"
    made = [api.client.get(url).headers["x-request-id"] for _ in range(4)]  # the full route, then replays
    assert len(set(made)) == len(made)
    assert all(len(made_id) == 32 and int(made_id, 16) >= 0 for made_id in made)
    for _ in range(2):
        assert api.client.get(url, headers={"X-Request-ID": "edge-42 a"}).headers["x-request-id"] == "edge-42 a"
    # Not printable ASCII: replaced by one of ours.
    replaced = api.client.get(url, headers={"X-Request-ID": "bad\tid"}).headers["x-request-id"]
    assert len(replaced) == 32 and replaced not in made


def test_writes_retire_recorded_answers(api: Deployment) -> None:
    path = f"/fast/{uuid.uuid4().hex[:10]}"
    stored(api.client, path, IMAGE, metadata=FIRST)
    url = f"/assets{path}/-/entry/0/content"
    for _ in range(2):
        before = api.client.get(url)
    assert before.headers["k-alt"] == "first"
    assert api.client.put(f"/assets{path}/-/entry/0", json={"alt": "second"}).status_code == 200
    after = api.client.get(url)
    assert after.headers["k-alt"] == "second" and after.headers["etag"] != before.headers["etag"]
    assert api.client.get(url).headers["k-alt"] == "second"
    assert api.client.delete(f"/assets{path}/-/entry/0").status_code == 204
    assert api.client.get(url).status_code == 404


def test_newest_metadata_is_replayed_until_the_path_changes(api: Deployment) -> None:
    path = f"/fast/{uuid.uuid4().hex[:10]}"
    stored(api.client, path, IMAGE, metadata=FIRST)
    newest = f"/assets{path}/-/metadata"
    both = f"/assets{path}/-/metadata?limit=2"
    first, second = api.client.get(newest), api.client.get(newest)
    assert comparable(first) == comparable(second)
    assert second.json()["entryId"] == 0
    assert api.client.head(newest).headers["content-length"] == second.headers["content-length"]
    # No ETag on metadata: a conditional request is answered in full, never with a 304.
    assert api.client.get(newest, headers={"If-None-Match": "*"}).status_code == 200
    assert [asset["entryId"] for asset in api.client.get(both).json()] == [0]
    stored(api.client, path, IMAGE, metadata=FIRST)
    assert api.client.get(newest).json()["entryId"] == 1
    assert [asset["entryId"] for asset in api.client.get(both).json()] == [1, 0]
    assert api.client.put(f"/assets{path}/-/entry/1", json={"alt": "changed"}).status_code == 200
    assert api.client.get(newest).json()["alt"] == "changed"
    # A render adds a variant, which metadata lists.
    assert api.client.get(f"/assets{path}/-/entry/1/content?w=7").status_code == 200
    assert len(api.client.get(newest).json()["variants"]) == 2
    assert api.client.delete(f"/assets{path}/-/entry/1").status_code == 204
    assert api.client.get(newest).json()["entryId"] == 0
    assert api.client.delete(f"/assets{path}/-/all").status_code == 204
    assert api.client.get(newest).status_code == 404
    assert api.client.get(both).json() == []


def _replayed(deployment: Deployment, route: str) -> int:
    """How many answers of ``route`` the fast path sent (the `cache="memory"` requests)."""
    text = deployment.client.get("/metrics").text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "konifer_http_requests_total"
            and sample.labels.get("route") == route
            and sample.labels.get("cache") == "memory"
        )
    )


def test_links_are_replayed_per_origin_until_the_path_changes(api: Deployment) -> None:
    path = f"/fast/{uuid.uuid4().hex[:10]}"
    stored(api.client, path, IMAGE, metadata=FIRST)
    link = f"/assets{path}?w=20"
    before = _replayed(api, "fetch_link")
    first, *repeats = (api.client.get(link) for _ in range(4))
    assert first.status_code == 200 and first.headers["k-cache-status"] == "miss"
    assert first.json()["url"].endswith(f"{path}/-/entry/0/content?h=10&w=20")
    for repeat in repeats:
        assert {**comparable(first)[1], "k-cache-status": "hit"} == comparable(repeat)[1]
        assert repeat.content == first.content
    # A render moves only the variants generation, so what the first answer recorded answers every repeat.
    eventually(lambda: _replayed(api, "fetch_link") - before, 3)
    # The URL's base is where the request came in: another Host is another answer, never a replay of this one.
    elsewhere = api.client.get(link, headers={"Host": "cdn.example"})
    assert elsewhere.json()["url"] == f"http://cdn.example/assets{path}/-/entry/0/content?h=10&w=20"
    assert api.client.get(link).json() == first.json()
    stored(api.client, path, IMAGE, metadata={"alt": "second"})
    newest = api.client.get(link)
    assert newest.json()["url"].endswith(f"{path}/-/entry/1/content?h=10&w=20") and newest.json()["alt"] == "second"
    assert newest.headers["k-cache-status"] == "miss"


def operations(api: Deployment, family: str, operation: str) -> float:
    """How often the server has run one operation so far (its duration histogram's count)."""
    return sum(
        sample.value
        for metric in text_string_to_metric_families(api.client.get("/metrics").text)
        for sample in metric.samples
        if sample.name == f"konifer_{family}_duration_seconds_count" and sample.labels.get("operation") == operation
    )


def database_calls(api: Deployment, operation: str) -> float:
    return operations(api, "database", operation)


def variant_lookups(api: Deployment) -> float:
    """Database asks for a variant: row lookups and listings of an image's variant keys."""
    return database_calls(api, "find_variant") + database_calls(api, "variant_keys")


def test_a_render_retires_only_what_lists_variants(fs_api: Deployment) -> None:
    path = f"/fast/{uuid.uuid4().hex[:10]}"
    stored(fs_api.client, path, IMAGE, metadata=FIRST)
    hot = f"/assets{path}/-/entry/0/content?w=10"
    metadata = f"/assets{path}/-/entry/0/metadata"
    first = fs_api.client.get(hot)
    assert first.status_code == 200 and first.headers["k-cache-status"] == "miss"
    assert len(fs_api.client.get(metadata).json()["variants"]) == 2
    entries, lookups = database_calls(fs_api, "find_entry"), variant_lookups(fs_api)
    rendered = fs_api.client.get(f"/assets{path}/-/entry/0/content?w=12")
    assert rendered.status_code == 200 and rendered.headers["k-cache-status"] == "miss"
    # At most one lookup missed (none when the worker still knows the image's variants), then the
    # render: no second lookup on the way.
    looked_up = variant_lookups(fs_api)
    assert looked_up <= lookups + 1
    # The entry stayed resolved across the render, and the recorded answer of the other variant
    # still answers: neither asks the database again.
    status, headers, content = comparable(first)
    assert comparable(fs_api.client.get(hot)) == (status, {**headers, "k-cache-status": "hit"}, content)
    assert describe(fs_api.client.get(f"/assets{path}/-/entry/0/content?w=12").content).width == 12
    assert database_calls(fs_api, "find_entry") == entries
    # What lists variants lists the new one at once.
    assert len(fs_api.client.get(metadata).json()["variants"]) == 3
    assert len(fs_api.client.get(f"/assets{path}/-/metadata").json()["variants"]) == 3
    assert variant_lookups(fs_api) == looked_up


def test_first_requests_of_one_asset_read_its_original_once(fs_api: Deployment) -> None:
    path = f"/fast/{uuid.uuid4().hex[:10]}"
    stored(fs_api.client, path, make_image("jpg", 300, 200), metadata=FIRST)
    reads = operations(fs_api, "object_store", "read")
    for width in (50, 60, 70):
        answer = fs_api.client.get(f"/assets{path}/-/entry/0/content?w={width}")
        assert answer.headers["k-cache-status"] == "miss" and describe(answer.content).width == width
    # The original once (then from memory), and no rendered variant read back.
    assert operations(fs_api, "object_store", "read") == reads + 1


@pytest.fixture(scope="module")
def uncached(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    config = """
[paths."/**"]
object-store.bucket = "assets"

[cache]
resolution-entries = 0
"""
    with running(tmp_path_factory, postgres, "fast-uncached", config) as deployment:
        yield deployment


def test_without_resolution_entries_every_request_reads_the_database(uncached: Deployment) -> None:
    path = f"/fast/{uuid.uuid4().hex[:10]}"
    stored(uncached.client, path, IMAGE, metadata=FIRST)
    newest = f"/assets{path}/-/metadata"
    reads = database_calls(uncached, "find_newest")
    assert [uncached.client.get(newest).json()["entryId"] for _ in range(3)] == [0, 0, 0]
    assert database_calls(uncached, "find_newest") == reads + 3
    assert _replayed(uncached, "fetch_metadata") == 0


def test_negotiated_answers_are_kept_per_accept(fs_api: Deployment) -> None:
    path = f"/fast/{uuid.uuid4().hex[:10]}"
    stored(fs_api.client, path, IMAGE, metadata=FIRST)
    url = f"/assets{path}/-/entry/0/content?w=10"
    accepts = {"image/avif,image/webp,*/*": "heif", "image/webp,*/*": "webp", "*/*": "png"}
    for _ in range(2):
        for accept, loader in accepts.items():
            answer = fs_api.client.get(url, headers={"Accept": accept})
            assert answer.headers["vary"] == "Accept"
            assert describe(answer.content).fmt == loader, accept


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    config = """
[paths."/**"]
object-store.bucket = "assets"

[paths."/private/**".access]
read = "key"

[paths."/signed/**".url-signing]
enabled = true
secret-key = "new-key"
"""
    env = {"KONIFER_EDGE_API_KEY_CACHE_TTL": CACHE_TTL}
    with running(tmp_path_factory, postgres, "fast-guarded", config, env) as deployment:
        yield deployment


def test_key_only_and_signed_answers_are_never_reused_without_their_credentials(guarded: Deployment) -> None:
    suffix = uuid.uuid4().hex[:10]
    writer = create_key(guarded, "assets:admin")
    eventually(lambda: guarded.client.get(f"/assets/private/{suffix}/-/entry/0/content").status_code, 401)
    stored(guarded.client, f"/private/{suffix}", IMAGE, metadata=FIRST, headers=bearer(writer))
    stored(guarded.client, f"/signed/{suffix}", IMAGE, metadata=FIRST, headers=bearer(writer))
    for private in (f"/assets/private/{suffix}/-/entry/0/content", f"/assets/private/{suffix}/-/metadata"):
        for _ in range(3):
            assert guarded.client.get(private, headers=bearer(writer)).status_code == 200
        assert_refused(guarded.client.get(private), 401, "missing_api_key")
    public_signed = signed(f"/assets/signed/{suffix}/-/entry/0/content?w=8")
    for _ in range(3):
        assert guarded.client.get(public_signed).status_code == 200
    assert_refused(guarded.client.get(f"/assets/signed/{suffix}/-/entry/0/content?w=8"), 403, "missing_signature")
    tampered = public_signed.replace("w=8", "w=9")
    assert_refused(guarded.client.get(tampered), 403, "invalid_signature")
    signed_metadata = signed(f"/assets/signed/{suffix}/-/metadata")
    for _ in range(3):
        assert guarded.client.get(signed_metadata).status_code == 200
    assert_refused(guarded.client.get(f"/assets/signed/{suffix}/-/metadata"), 403, "missing_signature")
