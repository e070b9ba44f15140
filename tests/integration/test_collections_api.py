"""Collections over HTTP: cursor listing, the path tree, filter metadata and streamed ZIP bundles.

Pages are walked while other clients add and delete assets, and must still return every
asset that existed throughout exactly once. Bundles are unpacked and compared byte for
byte with what was uploaded; a large one is downloaded while the server's memory is
sampled. Every bad parameter is a JSON 400 that changes nothing.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import pyvips

from tests.integration.conftest import start_deployment
from tests.support.access import CACHE_TTL, assert_refused, bearer, create_key, eventually, signed
from tests.support.assets import stored
from tests.support.deployment import Deployment, running
from tests.support.images import describe, make_image
from tests.support.services import PostgresService

MAX_ENTRIES = 30
MAX_BUNDLE_BYTES = 150 * 1024 * 1024
BUNDLE_CONFIG = f"""
[source.multipart]
max-bytes = 12000000

[bundle]
max-entries = {MAX_ENTRIES}
max-bytes = {MAX_BUNDLE_BYTES}

[paths."/**"]
object-store.bucket = "assets"

[paths."/eager-only/**".transform.on-demand-variant]
mode = "disabled"
"""


def unique_prefix() -> str:
    return f"/coll{uuid.uuid4().hex[:10]}"


def tinted(path: str) -> bytes:
    """A small PNG whose colour depends on the path, so stores at different paths differ in content."""
    return make_image("png", 12, 8, color=(len(path) * 7 % 255, 90, 30))


def listing(api: Deployment, url: str, **params: str) -> dict[str, Any]:
    response = api.client.get(url, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    page: dict[str, Any] = response.json()
    return page


def walk(api: Deployment, url: str, **params: str) -> list[dict[str, Any]]:
    """Every asset of a listing, following nextCursor page by page."""
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = listing(api, url, **params, **({"cursor": cursor} if cursor else {}))
        seen.extend(page["assets"])
        cursor = page.get("nextCursor")
        if cursor is None:
            return seen


def keys_of(assets: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(asset["path"], asset["entryId"]) for asset in assets]


@pytest.fixture(scope="module")
def bundle_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    deployment = start_deployment(
        tmp_path_factory.mktemp("bundles"), BUNDLE_CONFIG, store="filesystem", postgres=postgres, s3=None
    )
    try:
        yield deployment
    finally:
        deployment.stop()


# --- listing -----------------------------------------------------------------------------


def test_pages_follow_the_cursor_through_every_asset_newest_first(api: Deployment) -> None:
    prefix = unique_prefix()
    entries = [stored(api.client, prefix, tinted(prefix)) for _ in range(7)]
    first = api.client.get(f"/assets{prefix}/-/list", params={"limit": "3"})
    assert first.status_code == 200
    assert first.headers["link"].startswith(f"<{api.base_url}/assets{prefix}/-/list?limit=3&cursor=")
    assert first.headers["link"].endswith('>; rel="next"')
    assert len(first.json()["assets"]) == 3 and "total" not in first.json()
    walked = walk(api, f"/assets{prefix}/-/list", limit="3")
    assert [asset["entryId"] for asset in walked] == [6, 5, 4, 3, 2, 1, 0]
    ascending = walk(api, f"/assets{prefix}/-/list", limit="2", order="asc")
    assert [asset["entryId"] for asset in ascending] == [0, 1, 2, 3, 4, 5, 6]
    # Each item is the asset's metadata as fetch gives it, plus its path.
    single = api.client.get(f"/assets{prefix}/-/entry/3/metadata").json()
    assert walked[3] == {**single, "path": prefix}
    assert entries[3]["entryId"] == 3


def test_follow_the_link_header(fs_api: Deployment) -> None:
    prefix = unique_prefix()
    for _ in range(3):
        stored(fs_api.client, prefix, tinted(prefix))
    url = f"{fs_api.base_url}/assets{prefix}/-/list?limit=1"
    entries = []
    while url:
        response = fs_api.client.get(url)
        entries += [asset["entryId"] for asset in response.json()["assets"]]
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else ""
    assert entries == [2, 1, 0]


def test_sort_by_modified_puts_the_last_updated_first(fs_api: Deployment) -> None:
    prefix = unique_prefix()
    for _ in range(3):
        stored(fs_api.client, prefix, tinted(prefix))
    assert fs_api.client.put(f"/assets{prefix}/-/entry/0", json={"alt": "changed"}).status_code == 200
    by_modified = walk(fs_api, f"/assets{prefix}/-/list", sort="modified")
    assert [asset["entryId"] for asset in by_modified] == [0, 2, 1]
    oldest_change_first = walk(fs_api, f"/assets{prefix}/-/list", sort="MODIFIED", order="asc", limit="1")
    assert [asset["entryId"] for asset in oldest_change_first] == [1, 2, 0]


def test_recursive_listing_takes_whole_segments_below_the_path(api: Deployment) -> None:
    prefix = unique_prefix()
    inside = [f"{prefix}/p", f"{prefix}/p/a", f"{prefix}/p/a/b", f"{prefix}/p/c"]
    outside = [f"{prefix}/p-other", f"{prefix}/pa", f"{prefix}"]
    for path in inside + outside:
        stored(api.client, path, tinted(path))
    expected = sorted((path, 0) for path in inside)
    assert sorted(keys_of(walk(api, f"/assets{prefix}/p/-/list/recursive", limit="2"))) == expected
    assert sorted(keys_of(walk(api, f"/assets{prefix}/p/-/list", recursive="true"))) == expected
    assert sorted(keys_of(walk(api, f"/assets{prefix}/p/-/list", recursive=""))) == expected
    assert keys_of(walk(api, f"/assets{prefix}/p/-/list")) == [(f"{prefix}/p", 0)]
    assert keys_of(walk(api, f"/assets{prefix}/p/-/list/recursive", recursive="false")) == [(f"{prefix}/p", 0)]


def test_labels_filter_and_total_counts_the_matches(api: Deployment) -> None:
    prefix = unique_prefix()
    for number in range(5):
        stored(
            api.client,
            f"{prefix}/x",
            tinted(f"{prefix}/x"),
            metadata={"labels": {"phone": "android" if number % 2 else "ios", "sort": "yes"}},
        )
    page = listing(api, f"/assets{prefix}/x/-/list", phone="ios", limit="1", include_total="true")
    assert page["total"] == 3 and len(page["assets"]) == 1 and page["nextCursor"]
    ios = walk(api, f"/assets{prefix}/x/-/list", phone="ios", limit="1")
    assert [asset["entryId"] for asset in ios] == [4, 2, 0]
    # A label whose key the listing reserves is reached with label:KEY.
    assert len(walk(api, f"/assets{prefix}/x/-/list", **{"label:sort": "yes"})) == 5
    assert walk(api, f"/assets{prefix}/x/-/list", **{"label:sort": "no"}) == []
    assert listing(api, f"/assets{prefix}/x/-/list/recursive", include_total="")["total"] == 5


def test_an_empty_path_lists_nothing(fs_api: Deployment) -> None:
    page = listing(fs_api, f"/assets{unique_prefix()}/-/list", include_total="1")
    assert page == {"assets": [], "total": 0}


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_pages_stay_exact_while_assets_are_added_and_deleted(fs_api: Deployment, order: str) -> None:
    """No asset twice, and none that existed throughout is skipped, whatever happens between pages."""
    prefix = unique_prefix()
    paths = [f"{prefix}/a", f"{prefix}/a/b", f"{prefix}/c"]
    for number in range(36):
        stored(fs_api.client, paths[number % 3], tinted(paths[number % 3]))
    survivors = set(keys_of(walk(fs_api, f"/assets{prefix}/-/list/recursive", limit="250")))
    # The writer deletes a third of the original assets (those with entry ids divisible by 3) as the walk goes.
    doomed = {(path, entry) for path, entry in survivors if entry % 3 == 0}
    survivors -= doomed
    stop = threading.Event()

    def write_meanwhile() -> None:
        with httpx.Client(base_url=fs_api.base_url, timeout=30) as client:
            pending = sorted(doomed)
            number = 0
            while not stop.is_set():
                target = paths[number % 3]
                client.post(
                    f"/assets{target}",
                    files={"metadata": (None, "{}", "application/json"), "file": ("f", make_image("png", 8, 8))},
                )
                if pending:
                    path, entry = pending.pop()
                    assert client.delete(f"/assets{path}/-/entry/{entry}").status_code == 204
                number += 1

    writer = threading.Thread(target=write_meanwhile)
    writer.start()
    try:
        walked: list[tuple[str, int]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "4", "order": order, **({"cursor": cursor} if cursor else {})}
            page = listing(fs_api, f"/assets{prefix}/-/list/recursive", **params)
            walked += keys_of(page["assets"])
            cursor = page.get("nextCursor")
            if cursor is None:
                break
            time.sleep(0.02)
    finally:
        stop.set()
        writer.join()
    assert len(walked) == len(set(walked)), "an asset was listed twice"
    assert survivors <= set(walked), f"skipped: {sorted(survivors - set(walked))}"


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("limit=0", "invalid_limit"),
        ("limit=251", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("limit=-1", "invalid_limit"),
        ("limit=1&limit=2", "invalid_query"),
        ("sort=size", "invalid_query"),
        ("order=up", "invalid_query"),
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("cursor=" + "A" * 3000, "invalid_cursor"),
        ("include_total=maybe", "invalid_query"),
        ("recursive=perhaps", "invalid_query"),
        ("w=100", "invalid_query"),
        ("format=webp", "invalid_query"),
    ],
)
def test_bad_listing_parameters_are_400(fs_api: Deployment, query: str, error: str) -> None:
    prefix = unique_prefix()
    stored(fs_api.client, prefix, tinted(prefix))
    before = fs_api.snapshot()
    assert_refused(fs_api.client.get(f"/assets{prefix}/-/list?{query}"), 400, error)
    assert fs_api.snapshot() == before
    assert fs_api.client.get(f"/assets{prefix}/-/list").status_code == 200


@pytest.mark.parametrize("tail", ["list/new", "list/2", "list/recursive/recursive", "zip/content", "list/entry/0"])
def test_other_modifiers_after_list_and_zip_are_400(fs_api: Deployment, tail: str) -> None:
    assert_refused(fs_api.client.get(f"/assets{unique_prefix()}/-/{tail}"), 400, "invalid_selector")


def test_a_cursor_only_continues_its_own_listing(fs_api: Deployment) -> None:
    prefix = unique_prefix()
    for _ in range(3):
        stored(fs_api.client, f"{prefix}/a", tinted(f"{prefix}/a"))
    cursor = listing(fs_api, f"/assets{prefix}/a/-/list", limit="1")["nextCursor"]
    for url, params in [
        (f"/assets{prefix}/b/-/list", {}),
        (f"/assets{prefix}/a/-/list", {"sort": "modified"}),
        (f"/assets{prefix}/a/-/list", {"order": "asc"}),
        (f"/assets{prefix}/a/-/list/recursive", {}),
    ]:
        assert_refused(fs_api.client.get(url, params={**params, "cursor": cursor}), 400, "invalid_cursor")
    assert len(listing(fs_api, f"/assets{prefix}/a/-/list", cursor=cursor)["assets"]) == 2


# --- the path tree -----------------------------------------------------------------------


def test_paths_lists_children_with_counts(api: Deployment) -> None:
    prefix = unique_prefix()
    for path in ["", "/a", "/a", "/a/x", "/a/x/y", "/b/z", "/c-d"]:
        stored(api.client, prefix + path, tinted(prefix + path))
    answer = api.client.get(f"/paths{prefix}")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "private, no-store"
    assert answer.json() == {
        "path": prefix,
        "assets": 1,
        "children": [
            {"path": f"{prefix}/a", "assets": 2, "assetsBelow": 4},
            {"path": f"{prefix}/b", "assets": 0, "assetsBelow": 1},
            {"path": f"{prefix}/c-d", "assets": 1, "assetsBelow": 1},
        ],
    }
    # One child per page, following the cursor.
    names, cursor = [], None
    while True:
        page = api.client.get(f"/paths{prefix}", params={"limit": "1", **({"cursor": cursor} if cursor else {})})
        names += [child["path"] for child in page.json()["children"]]
        cursor = page.json().get("nextCursor")
        if cursor is None:
            break
    assert names == [f"{prefix}/a", f"{prefix}/b", f"{prefix}/c-d"]
    assert api.client.get(f"/paths{prefix}/a/x").json()["children"] == [
        {"path": f"{prefix}/a/x/y", "assets": 1, "assetsBelow": 1}
    ]
    root = api.client.get("/paths", params={"limit": "1000"}).json()
    assert root["path"] == "/"
    assert {"path": prefix, "assets": 1, "assetsBelow": 7} in root["children"]
    assert api.client.get(f"/paths{prefix}/nothing").json() == {
        "path": f"{prefix}/nothing",
        "assets": 0,
        "children": [],
    }


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("/paths/a?limit=0", "invalid_limit"),
        ("/paths/a?limit=1001", "invalid_limit"),
        ("/paths/a?cursor=%%%", "invalid_cursor"),
        ("/paths/a?sort=created", "invalid_query"),
        ("/paths/a?phone=android", "invalid_query"),
        ("/paths/a/-/list", "invalid_selector"),
        ("/paths/a/%2e%2e/b", "invalid_path"),
    ],
)
def test_bad_path_browsing_is_400(fs_api: Deployment, url: str, error: str) -> None:
    assert_refused(fs_api.client.get(url), 400, error)


def test_a_children_cursor_only_continues_its_own_prefix(fs_api: Deployment) -> None:
    prefix = unique_prefix()
    stored(fs_api.client, f"{prefix}/a", tinted(f"{prefix}/a"))
    stored(fs_api.client, f"{prefix}/b", tinted(f"{prefix}/b"))
    cursor = fs_api.client.get(f"/paths{prefix}", params={"limit": "1"}).json()["nextCursor"]
    assert_refused(fs_api.client.get(f"/paths{prefix}/a", params={"cursor": cursor}), 400, "invalid_cursor")


# --- filter metadata ---------------------------------------------------------------------


def test_filter_metadata_describes_listing_and_the_labels_in_use(fs_api: Deployment) -> None:
    prefix = unique_prefix()
    stored(fs_api.client, f"{prefix}/a", tinted(f"{prefix}/a"), metadata={"labels": {"phone": "ios"}})
    stored(
        fs_api.client,
        f"{prefix}/a/b",
        tinted(f"{prefix}/a/b"),
        metadata={"labels": {"colour": "red", "phone": "android"}},
    )
    described = fs_api.client.get("/filters").json()
    assert described["sortKeys"] == ["created", "modified"]
    assert described["orders"] == ["asc", "desc"]
    parameters = {parameter["name"]: parameter for parameter in described["parameters"]}
    assert set(parameters) == {"limit", "cursor", "sort", "order", "recursive", "include_total"}
    assert parameters["limit"]["maximum"] == 250 and parameters["limit"]["default"] == "50"
    assert described["labelKeys"] == []
    assert fs_api.client.get("/filters", params={"path": prefix}).json()["labelKeys"] == ["colour", "phone"]
    assert fs_api.client.get("/filters", params={"path": f"{prefix}/a/b"}).json()["labelKeys"] == ["colour", "phone"]
    # Every parameter it names is one listing accepts.
    accepted = {"limit": "5", "sort": "modified", "order": "asc", "recursive": "true", "include_total": "true"}
    assert fs_api.client.get(f"/assets{prefix}/-/list", params=accepted).json()["total"] == 2
    assert_refused(fs_api.client.get("/filters", params={"sort": "x"}), 400, "invalid_query")
    assert_refused(fs_api.client.get("/filters", params={"path": "/a/../b"}), 400, "invalid_path")


# --- bundles -----------------------------------------------------------------------------


def shape(data: bytes) -> tuple[str, int, int]:
    info = describe(data)
    return info.fmt, info.width, info.height


def unpack(response: httpx.Response) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["cache-control"] == "private, no-store"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    return {name: archive.read(name) for name in archive.namelist()}


def test_zip_holds_the_originals_byte_for_byte(api: Deployment) -> None:
    prefix = unique_prefix()
    originals = {
        f"{prefix.strip('/')}/a/0.png": make_image("png", 20, 10),
        f"{prefix.strip('/')}/a/1.jpg": make_image("jpg", 30, 10),
        f"{prefix.strip('/')}/a/b/0.webp": make_image("webp", 10, 30),
        f"{prefix.strip('/')}/a/2.gif": make_image("gif", 10, 10, frames=3),
    }
    stored(api.client, f"{prefix}/a", originals[f"{prefix.strip('/')}/a/0.png"])
    stored(api.client, f"{prefix}/a", originals[f"{prefix.strip('/')}/a/1.jpg"])
    stored(api.client, f"{prefix}/a/b", originals[f"{prefix.strip('/')}/a/b/0.webp"])
    stored(api.client, f"{prefix}/a", originals[f"{prefix.strip('/')}/a/2.gif"])
    response = api.client.get(f"/assets{prefix}/a/-/zip/recursive")
    assert response.headers["content-disposition"] == f'attachment; filename="{prefix.strip("/")}-a.zip"'
    assert unpack(response) == originals
    head = api.client.head(f"/assets{prefix}/a/-/zip/recursive")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/zip"
    assert api.client.head(f"/assets{prefix}/nothing/-/zip").status_code == 404
    at_path = unpack(api.client.get(f"/assets{prefix}/a/-/zip"))
    assert list(at_path) == [f"{prefix.strip('/')}/a/{name}" for name in ("2.gif", "1.jpg", "0.png")]
    assert list(unpack(api.client.get(f"/assets{prefix}/a/-/zip", params={"limit": "1", "order": "asc"}))) == [
        f"{prefix.strip('/')}/a/0.png"
    ]


def test_zip_filters_by_label_and_renders_a_transformation(api: Deployment) -> None:
    prefix = unique_prefix()
    stored(api.client, prefix, make_image("png", 40, 20), metadata={"labels": {"kind": "hero"}})
    stored(api.client, prefix, make_image("jpg", 60, 20), metadata={"labels": {"kind": "thumb"}})
    stored(api.client, prefix, make_image("png", 80, 40), metadata={"labels": {"kind": "hero"}})
    files = unpack(api.client.get(f"/assets{prefix}/-/zip", params={"kind": "hero", "w": "10", "format": "webp"}))
    name = prefix.strip("/")
    assert list(files) == [f"{name}/2.webp", f"{name}/0.webp"]
    assert (
        describe(files[f"{name}/2.webp"]).fmt,
        describe(files[f"{name}/2.webp"]).width,
        describe(files[f"{name}/2.webp"]).height,
    ) == ("webp", 10, 5)
    assert (
        describe(files[f"{name}/0.webp"]).fmt,
        describe(files[f"{name}/0.webp"]).width,
        describe(files[f"{name}/0.webp"]).height,
    ) == ("webp", 10, 5)
    # The rendered variants are kept like any other: the same request renders nothing new.
    again = unpack(api.client.get(f"/assets{prefix}/-/zip", params={"kind": "hero", "w": "10", "format": "webp"}))
    assert again == files


def test_post_bundles_zips_the_listed_entries_in_order(api: Deployment) -> None:
    prefix = unique_prefix()
    first = make_image("png", 16, 16)
    second = make_image("jpg", 24, 16)
    stored(api.client, f"{prefix}/x", first)
    stored(api.client, f"{prefix}/y", second)
    response = api.client.post(
        "/bundles", json={"assets": [{"path": f"{prefix}/y", "entryId": 0}, {"path": f"{prefix}/x", "entryId": 0}]}
    )
    assert response.headers["content-disposition"] == 'attachment; filename="bundle.zip"'
    assert unpack(response) == {f"{prefix.strip('/')}/y/0.jpg": second, f"{prefix.strip('/')}/x/0.png": first}
    resized = unpack(
        api.client.post(
            "/bundles",
            json={"assets": [{"path": f"{prefix}/x", "entryId": 0}], "transformation": {"w": 8, "format": "png"}},
        )
    )
    assert (
        describe(resized[f"{prefix.strip('/')}/x/0.png"]).fmt,
        describe(resized[f"{prefix.strip('/')}/x/0.png"]).width,
        describe(resized[f"{prefix.strip('/')}/x/0.png"]).height,
    ) == ("png", 8, 8)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "invalid_bundle"),
        (b'{"assets": []}', 400, "invalid_bundle"),
        (b'{"assets": [{"path": "/a"}]}', 400, "invalid_bundle"),
        (b'{"assets": [{"path": "/a", "entryId": "0"}]}', 400, "invalid_bundle"),
        (b'{"assets": [{"path": "/a", "entryId": -1}]}', 400, "invalid_entry_id"),
        (b'{"assets": [{"path": "/a/../b", "entryId": 0}]}', 400, "invalid_path"),
        (b'{"assets": [{"path": "/a", "entryId": 0}], "extra": 1}', 400, "invalid_bundle"),
        (b'{"assets": [{"path": "/a", "entryId": 0}], "transformation": {"w": "huge"}}', 400, None),
        (b'{"assets": [{"path": "/a", "entryId": 0}], "transformation": {"x": "1"}}', 400, "invalid_transformation"),
        (b'{"assets": [{"path": "/nowhere/at/all", "entryId": 0}]}', 404, "not_found"),
    ],
)
def test_bad_bundle_requests_are_refused(fs_api: Deployment, body: bytes, status: int, error: str | None) -> None:
    prefix = unique_prefix()
    stored(fs_api.client, prefix, tinted(prefix))
    payload = body.replace(b'"/a"', json.dumps(prefix).encode())
    before = fs_api.snapshot()
    response = fs_api.client.post("/bundles", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error"] == error if error else response.json()["error"]
    assert fs_api.snapshot() == before


def test_bundles_refuse_duplicates_other_types_and_missing_entries(fs_api: Deployment) -> None:
    prefix = unique_prefix()
    stored(fs_api.client, prefix, tinted(prefix))
    entry = {"path": prefix, "entryId": 0}
    assert_refused(fs_api.client.post("/bundles", json={"assets": [entry, entry]}), 400, "invalid_bundle")
    assert_refused(
        fs_api.client.post("/bundles", content=b"{}", headers={"content-type": "text/plain"}),
        415,
        "unsupported_request_type",
    )
    missing = fs_api.client.post("/bundles", json={"assets": [entry, {"path": prefix, "entryId": 1}]})
    assert_refused(missing, 404, "not_found")
    assert_refused(fs_api.client.get(f"/assets{unique_prefix()}/-/zip"), 404, "not_found")


def test_zip_parameters_are_checked(fs_api: Deployment) -> None:
    prefix = unique_prefix()
    stored(fs_api.client, prefix, tinted(prefix))
    for query, error in [
        ("cursor=abc", "invalid_query"),
        ("include_total=true", "invalid_query"),
        ("limit=0", "invalid_limit"),
        ("w=abc", None),
        ("sort=name", "invalid_query"),
    ]:
        response = fs_api.client.get(f"/assets{prefix}/-/zip?{query}")
        assert response.status_code == 400, query
        assert error is None or response.json()["error"] == error


def test_bundle_limits(bundle_api: Deployment) -> None:
    prefix = unique_prefix()
    for _ in range(MAX_ENTRIES + 1):
        stored(bundle_api.client, prefix, tinted(prefix))
    assert_refused(bundle_api.client.get(f"/assets{prefix}/-/zip"), 400, "bundle_too_large")
    assert_refused(
        bundle_api.client.get(f"/assets{prefix}/-/zip", params={"limit": str(MAX_ENTRIES + 1)}), 400, "invalid_limit"
    )
    assert len(unpack(bundle_api.client.get(f"/assets{prefix}/-/zip", params={"limit": str(MAX_ENTRIES)}))) == 30
    many = [{"path": prefix, "entryId": entry} for entry in range(MAX_ENTRIES + 1)]
    assert_refused(bundle_api.client.post("/bundles", json={"assets": many}), 400, "bundle_too_large")
    # A path whose on-demand mode is disabled refuses a transformed bundle, as it refuses the fetch.
    eager_only = f"/eager-only{prefix}"
    stored(bundle_api.client, eager_only, tinted(eager_only))
    assert_refused(
        bundle_api.client.get(f"/assets{eager_only}/-/zip", params={"w": "4"}), 400, "transformation_not_allowed"
    )


def noise_png(side: int) -> bytes:
    """Random pixels: PNG cannot compress them, so the file is about side x side x 3 bytes."""
    bands = [pyvips.Image.gaussnoise(side, side, sigma=80) for _ in range(3)]
    image = bands[0].bandjoin(bands[1:]).cast("uchar")
    return bytes(image.pngsave_buffer(compression=1))


def process_group_rss(leader: int) -> int:
    """Resident bytes of every process in the server's process group (its workers included)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != leader:  # the process group id
                continue
            with open(f"/proc/{entry}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def test_a_large_bundle_streams_with_flat_memory(bundle_api: Deployment) -> None:
    prefix = unique_prefix()
    image = noise_png(1400)  # about 5.9 MB
    count = 20
    for _ in range(count):
        stored(bundle_api.client, prefix, image)
    bundle_bytes = count * len(image)
    assert bundle_bytes > 100 * 1024 * 1024
    process = bundle_api.server.process
    assert process is not None
    baseline = process_group_rss(process.pid)
    peak = baseline
    received = 0
    with bundle_api.client.stream("GET", f"/assets{prefix}/-/zip") as response:
        assert response.status_code == 200
        archive_head = b""
        for chunk in response.iter_bytes():
            received += len(chunk)
            archive_head = archive_head or chunk[:4]
            peak = max(peak, process_group_rss(process.pid))
    assert archive_head == b"PK\x03\x04"
    assert received > bundle_bytes
    growth = peak - baseline
    assert growth < bundle_bytes // 4, f"server memory grew by {growth} bytes for a {bundle_bytes}-byte bundle"
    # Over the byte limit (150 MiB) yet within the entry limit: refused before the first byte.
    for _ in range(8):
        stored(bundle_api.client, prefix, image)
    assert_refused(bundle_api.client.get(f"/assets{prefix}/-/zip"), 400, "bundle_too_large")


# --- access ------------------------------------------------------------------------------


KEYED_CONFIG = """
[paths."/**"]
object-store.bucket = "assets"

[paths."/private/**".access]
read = "key"
"""

SIGNED_CONFIG = """
[paths."/**"]
object-store.bucket = "assets"

[paths."/signed/**".url-signing]
enabled = true
secret-key = "new-key"
"""


def test_without_keys_collections_follow_each_paths_read_rules(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService
) -> None:
    with running(tmp_path_factory, postgres, "collections-signed", SIGNED_CONFIG) as deployment:
        prefix = unique_prefix()
        stored(deployment.client, f"/signed{prefix}", tinted(f"/signed{prefix}"))
        stored(deployment.client, f"/open{prefix}", tinted(f"/open{prefix}"))
        assert_refused(deployment.client.get(f"/assets/signed{prefix}/-/list"), 403, "missing_signature")
        assert deployment.client.get(signed(f"/assets/signed{prefix}/-/list")).status_code == 200
        assert deployment.client.get(f"/assets/open{prefix}/-/list").status_code == 200
        entries = {"assets": [{"path": f"/signed{prefix}", "entryId": 0}]}
        assert_refused(deployment.client.post("/bundles", json=entries), 403, "missing_signature")
        assert_refused(deployment.client.get(f"/paths/signed{prefix}"), 403, "missing_signature")


def test_once_a_key_exists_collections_need_a_read_key(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService
) -> None:
    env = {"KONIFER_EDGE_API_KEY_CACHE_TTL": CACHE_TTL}
    with running(tmp_path_factory, postgres, "collections-keyed", KEYED_CONFIG, env) as deployment:
        prefix = unique_prefix()
        stored(deployment.client, f"{prefix}/a", tinted(f"{prefix}/a"))
        stored(deployment.client, f"{prefix}/b", tinted(f"{prefix}/b"))
        writer = create_key(deployment, "assets:write")
        reader = create_key(deployment, "assets:read")
        limited = create_key(deployment, "assets:read", prefix=f"{prefix}/a")
        eventually(lambda: deployment.client.get(f"/assets{prefix}/a/-/list").status_code, 401)
        before = deployment.snapshot()
        # Public reads of one asset stay anonymous; enumerating does not.
        assert deployment.client.get(f"/assets{prefix}/a/-/content").status_code == 200
        for url in [
            f"/assets{prefix}/a/-/list",
            f"/assets{prefix}/a/-/zip",
            f"/paths{prefix}",
            f"/filters?path={prefix}",
        ]:
            assert_refused(deployment.client.get(url), 401, "missing_api_key")
            assert_refused(deployment.client.get(url, headers=bearer(writer)), 403, "insufficient_scope")
            assert deployment.client.get(url, headers=bearer(reader)).status_code == 200
        assert deployment.client.get("/filters").status_code == 200
        assert deployment.client.get(f"/assets{prefix}/a/-/list", headers=bearer(limited)).status_code == 200
        assert_refused(
            deployment.client.get(f"/assets{prefix}/b/-/list", headers=bearer(limited)), 403, "outside_key_prefix"
        )
        assert_refused(
            deployment.client.get(f"/assets{prefix}/-/list/recursive", headers=bearer(limited)),
            403,
            "outside_key_prefix",
        )
        both = {"assets": [{"path": f"{prefix}/a", "entryId": 0}, {"path": f"{prefix}/b", "entryId": 0}]}
        assert_refused(
            deployment.client.post("/bundles", json=both, headers=bearer(limited)), 403, "outside_key_prefix"
        )
        assert unpack(deployment.client.post("/bundles", json=both, headers=bearer(reader)))
        assert_refused(
            deployment.client.get(f"/assets{prefix}/a/-/list", headers=bearer("ke_wrong")), 401, "invalid_api_key"
        )
        assert deployment.snapshot() == before
