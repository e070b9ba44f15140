"""PUT /assets/{path}/-/entry/{id}: replacing an entry's alt, labels and tags (spec 02, 03, 05 section 1-2).

An update replaces all three fields at once (a field left out is erased), moves `modifiedAt`
forward, never touches the content, and is refused with 400 (leaving every row and object as
it was) for anything store would refuse, for a selector other than exactly one entry, and for a
`url`.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
import msgspec
import pytest

from tests.support.deployment import Deployment, Snapshot
from tests.support.images import make_image

PNG = make_image("png", 24, 16)


def store(deployment: Deployment, path: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    response = deployment.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, json.dumps(metadata or {}), "application/json"),
            "asset": ("a.png", PNG, "image/png"),
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def put(deployment: Deployment, path: str, entry_id: int | str, body: object) -> httpx.Response:
    return deployment.client.put(f"/assets{path}/-/entry/{entry_id}", json=body)


def metadata_of(deployment: Deployment, path: str, entry_id: int) -> dict[str, Any]:
    response = deployment.client.get(f"/assets{path}/-/metadata/entry/{entry_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def state(deployment: Deployment) -> Snapshot:
    """Every row and object, once queued object removals (of other tests) are done.

    `variant.last_accessed_at` is left out: the server writes access times of earlier
    requests in batches, whenever its timer fires, whatever the request at hand.
    """
    deadline = time.monotonic() + 10
    while deployment.query("SELECT count(*) FROM pending_object_deletion")[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    snapshot = deployment.snapshot()
    columns = [
        row[0]
        for row in deployment.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'variant' ORDER BY ordinal_position"
        )
    ]
    volatile = columns.index("last_accessed_at")
    variants = [tuple(value for i, value in enumerate(row) if i != volatile) for row in snapshot.variants]
    return msgspec.structs.replace(snapshot, variants=variants)


def timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


def assert_error_json(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert body.get("message"), body


ORIGINAL_METADATA: dict[str, Any] = {
    "alt": "before",
    "labels": {"phone": "android", "colour": "red"},
    "tags": ["old", "stale"],
}


def test_put_replaces_alt_labels_and_tags_and_answers_full_metadata(api: Deployment, path: str) -> None:
    stored = store(api, path, ORIGINAL_METADATA)
    entry_id = stored["entryId"]

    new = {"alt": "after", "labels": {"phone": "iphone", "size": "large"}, "tags": ["fresh"]}
    response = put(api, path, entry_id, new)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["alt"] == "after"
    assert body["labels"] == {"phone": "iphone", "size": "large"}
    assert body["tags"] == ["fresh"]
    assert body["entryId"] == entry_id
    assert body["class"] == stored["class"]
    assert body["source"] == stored["source"]
    assert body["createdAt"] == stored["createdAt"]
    assert "modifiedAt" in body
    # Content never changes on update: the same original variant, the same object.
    assert body["variants"] == stored["variants"]
    # What the answer said is what is stored.
    fetched = metadata_of(api, path, entry_id)
    assert {k: fetched[k] for k in ("alt", "labels", "tags", "entryId", "createdAt", "modifiedAt")} == {
        k: body[k] for k in ("alt", "labels", "tags", "entryId", "createdAt", "modifiedAt")
    }
    content = api.client.get(f"/assets{path}/-/entry/{entry_id}/content")
    assert content.status_code == 200
    assert content.content == PNG
    assert content.headers["Konifer-Alt"] == "after"
    assert content.headers["K-Alt"] == "after"


def test_put_empty_object_erases_alt_labels_and_tags(fs_api: Deployment, path: str) -> None:
    entry_id = store(fs_api, path, ORIGINAL_METADATA)["entryId"]

    response = put(fs_api, path, entry_id, {})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("alt") is None
    assert body["labels"] == {}
    assert body["tags"] == []
    fetched = metadata_of(fs_api, path, entry_id)
    assert fetched.get("alt") is None
    assert fetched["labels"] == {}
    assert fetched["tags"] == []
    content = fs_api.client.get(f"/assets{path}/-/entry/{entry_id}/content")
    assert "Konifer-Alt" not in content.headers
    assert "K-Alt" not in content.headers


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"alt": "only alt"}, {"alt": "only alt", "labels": {}, "tags": []}),
        ({"labels": {"k": "v"}}, {"alt": None, "labels": {"k": "v"}, "tags": []}),
        ({"tags": ["t"]}, {"alt": None, "labels": {}, "tags": ["t"]}),
    ],
    ids=["alt-only", "labels-only", "tags-only"],
)
def test_put_erases_every_field_left_out(
    fs_api: Deployment, path: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    entry_id = store(fs_api, path, ORIGINAL_METADATA)["entryId"]

    response = put(fs_api, path, entry_id, body)

    assert response.status_code == 200, response.text
    fetched = metadata_of(fs_api, path, entry_id)
    assert {"alt": fetched.get("alt"), "labels": fetched["labels"], "tags": fetched["tags"]} == expected


def test_put_moves_modified_at_forward_and_keeps_created_at(fs_api: Deployment, path: str) -> None:
    stored = store(fs_api, path, ORIGINAL_METADATA)
    entry_id = stored["entryId"]
    before = metadata_of(fs_api, path, entry_id)

    first = put(fs_api, path, entry_id, {"alt": "one"})
    second = put(fs_api, path, entry_id, {"alt": "two"})

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert first.json()["createdAt"] == before["createdAt"] == stored["createdAt"]
    assert second.json()["createdAt"] == before["createdAt"]
    assert timestamp(first.json()["modifiedAt"]) > timestamp(before["modifiedAt"])
    # Two updates in a row still move it forward, even within one clock tick.
    assert timestamp(second.json()["modifiedAt"]) > timestamp(first.json()["modifiedAt"])
    assert metadata_of(fs_api, path, entry_id)["modifiedAt"] == second.json()["modifiedAt"]


def test_put_changes_the_content_etag(api: Deployment, path: str) -> None:
    entry_id = store(api, path, ORIGINAL_METADATA)["entryId"]
    url = f"/assets{path}/-/entry/{entry_id}/content"
    old = api.client.get(url)
    assert old.status_code == 200
    old_etag = old.headers["ETag"]
    assert api.client.get(url, headers={"If-None-Match": old_etag}).status_code == 304

    assert put(api, path, entry_id, {"alt": "a new alt"}).status_code == 200

    new = api.client.get(url)
    assert new.status_code == 200
    assert new.content == PNG
    assert new.headers["ETag"] != old_etag
    # A cache holding the old ETag gets the new answer (with the new alt), not a 304.
    revalidated = api.client.get(url, headers={"If-None-Match": old_etag})
    assert revalidated.status_code == 200
    assert revalidated.headers["Konifer-Alt"] == "a new alt"
    assert api.client.get(url, headers={"If-None-Match": new.headers["ETag"]}).status_code == 304
    download = api.client.get(f"/assets{path}/-/entry/{entry_id}/download")
    assert download.headers["ETag"] != old_etag


def test_put_changes_the_etag_of_generated_variants_too(fs_api: Deployment, path: str) -> None:
    entry_id = store(fs_api, path, ORIGINAL_METADATA)["entryId"]
    url = f"/assets{path}/-/entry/{entry_id}/content?w=8"
    old = fs_api.client.get(url)
    assert old.status_code == 200, old.text

    assert put(fs_api, path, entry_id, {"alt": "new alt"}).status_code == 200

    new = fs_api.client.get(url, headers={"If-None-Match": old.headers["ETag"]})
    assert new.status_code == 200
    assert new.content == old.content
    assert new.headers["ETag"] != old.headers["ETag"]
    assert new.headers["K-Alt"] == "new alt"


def test_put_touches_only_the_named_entry(fs_api: Deployment, path: str) -> None:
    first = store(fs_api, path, {"alt": "first", "labels": {"n": "1"}, "tags": ["a"]})
    second = store(fs_api, path, {"alt": "second", "labels": {"n": "2"}, "tags": ["b"]})

    assert put(fs_api, path, first["entryId"], {"alt": "changed"}).status_code == 200

    untouched = metadata_of(fs_api, path, second["entryId"])
    assert untouched["alt"] == "second"
    assert untouched["labels"] == {"n": "2"}
    assert untouched["tags"] == ["b"]
    assert untouched["modifiedAt"] == second["modifiedAt"]
    assert metadata_of(fs_api, path, first["entryId"])["alt"] == "changed"


@pytest.mark.parametrize(
    "body",
    [
        {"alt": "x" * 125},
        {"alt": "é" * 125},
        {"labels": {f"k{i}": "v" for i in range(50)}},
        {"labels": {"k" * 128: "v"}},
        {"labels": {"k": "v" * 256}},
        {"tags": [f"t{i}" for i in range(50)]},
        {"tags": ["t" * 256]},
    ],
    ids=["alt-125", "alt-125-non-ascii", "50-labels", "key-128", "value-256", "50-tags", "tag-256"],
)
def test_put_accepts_metadata_at_the_limits(fs_api: Deployment, path: str, body: dict[str, Any]) -> None:
    entry_id = store(fs_api, path)["entryId"]

    response = put(fs_api, path, entry_id, body)

    assert response.status_code == 200, response.text
    fetched = metadata_of(fs_api, path, entry_id)
    for field, value in body.items():
        assert fetched[field] == value


@pytest.mark.parametrize(
    "body",
    [
        {"alt": "x" * 126},
        {"labels": {f"k{i}": "v" for i in range(51)}},
        {"labels": {"k" * 129: "v"}},
        {"labels": {"k": "v" * 257}},
        {"tags": [f"t{i}" for i in range(51)]},
        {"tags": ["t" * 257]},
        {"alt": "fine", "labels": {"ok": "ok"}, "tags": ["t" * 257]},
    ],
    ids=["alt-126", "51-labels", "key-129", "value-257", "51-tags", "tag-257", "one-bad-field-of-three"],
)
def test_put_over_the_limits_is_400_and_changes_nothing(fs_api: Deployment, path: str, body: dict[str, Any]) -> None:
    entry_id = store(fs_api, path, ORIGINAL_METADATA)["entryId"]
    before = state(fs_api)

    response = put(fs_api, path, entry_id, body)

    assert_error_json(response, 400)
    assert state(fs_api) == before
    fetched = metadata_of(fs_api, path, entry_id)
    assert fetched["alt"] == ORIGINAL_METADATA["alt"]
    assert fetched["labels"] == ORIGINAL_METADATA["labels"]
    assert fetched["tags"] == ORIGINAL_METADATA["tags"]


@pytest.mark.parametrize(
    "selector",
    ["", "/-/metadata", "/-/new/3", "/-/entry/1/link", "/-/link/entry/1", "/-/entry", "/-/entry/x", "/-/entry/-1"],
    ids=["bare-path", "metadata", "new-3", "entry-then-link", "link-then-entry", "entry-without-id", "entry-x", "neg"],
)
def test_put_without_exactly_one_entry_is_400(fs_api: Deployment, path: str, selector: str) -> None:
    store(fs_api, path, ORIGINAL_METADATA)
    store(fs_api, path, ORIGINAL_METADATA)
    before = state(fs_api)

    response = fs_api.client.put(f"/assets{path}{selector}", json={"alt": "should not land"})

    assert_error_json(response, 400)
    assert state(fs_api) == before


def test_put_to_an_unknown_entry_is_404_json(fs_api: Deployment, path: str) -> None:
    entry_id = store(fs_api, path, ORIGINAL_METADATA)["entryId"]
    before = state(fs_api)

    unknown_entry = put(fs_api, path, entry_id + 1000, {"alt": "x"})
    unknown_path = put(fs_api, path + "/nothing-here", entry_id, {"alt": "x"})

    assert_error_json(unknown_entry, 404)
    assert_error_json(unknown_path, 404)
    assert state(fs_api) == before


def test_put_to_the_largest_entry_id_is_404(fs_api: Deployment, path: str) -> None:
    """Entry ids are Longs (spec 01): the largest one is a well-formed id that names no entry."""
    store(fs_api, path, ORIGINAL_METADATA)
    before = state(fs_api)

    response = put(fs_api, path, 2**63 - 1, {"alt": "x"})

    assert_error_json(response, 404)
    assert state(fs_api) == before


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"alt": "unterminated',
        b"[]",
        b'"just a string"',
        b'{"labels": ["a", "b"]}',
        b'{"labels": {"k": 5}}',
        b'{"tags": "not-a-list"}',
        b'{"alt": 12}',
    ],
    ids=["garbage", "truncated", "array", "string", "labels-list", "label-number", "tags-string", "alt-number"],
)
def test_put_with_invalid_json_is_400_and_changes_nothing(fs_api: Deployment, path: str, raw: bytes) -> None:
    entry_id = store(fs_api, path, ORIGINAL_METADATA)["entryId"]
    before = state(fs_api)

    response = fs_api.client.put(
        f"/assets{path}/-/entry/{entry_id}", content=raw, headers={"Content-Type": "application/json"}
    )

    assert_error_json(response, 400)
    assert state(fs_api) == before


def test_put_with_a_url_is_400_and_changes_nothing(fs_api: Deployment, path: str) -> None:
    entry_id = store(fs_api, path, ORIGINAL_METADATA)["entryId"]
    before = state(fs_api)

    response = put(fs_api, path, entry_id, {"url": "http://127.0.0.1/other.png", "alt": "sneaky"})

    assert_error_json(response, 400)
    assert state(fs_api) == before
    assert metadata_of(fs_api, path, entry_id)["alt"] == "before"


def test_label_filters_match_the_updated_labels(fs_api: Deployment, path: str) -> None:
    first = store(fs_api, path, {"labels": {"phone": "android"}})
    second = store(fs_api, path, {"labels": {"phone": "android"}})

    assert put(fs_api, path, first["entryId"], {"labels": {"phone": "iphone", "w": "wide"}}).status_code == 200

    iphone = fs_api.client.get(f"/assets{path}/-/metadata?phone=iphone")
    assert iphone.status_code == 200, iphone.text
    assert iphone.json()["entryId"] == first["entryId"]
    android = fs_api.client.get(f"/assets{path}/-/metadata?limit=-1&phone=android")
    assert android.status_code == 200
    assert [asset["entryId"] for asset in android.json()] == [second["entryId"]]
    reserved = fs_api.client.get(f"/assets{path}/-/metadata?label:w=wide")
    assert reserved.status_code == 200
    assert reserved.json()["entryId"] == first["entryId"]
    # The old value no longer matches the updated entry.
    old = fs_api.client.get(f"/assets{path}/-/metadata/entry/{first['entryId']}?phone=android")
    assert old.status_code == 404

    # Erasing the labels takes the entry out of every label filter.
    assert put(fs_api, path, first["entryId"], {}).status_code == 200
    assert fs_api.client.get(f"/assets{path}/-/metadata?phone=iphone").status_code == 404
