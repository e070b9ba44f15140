"""Fetching assets over HTTP (spec 01, 02, 04 and 05 §1-2, §5 cache control).

Selectors in both spellings, the five return formats, label filters, the answer headers
(alt, ETag, cache status, disposition, cache control), redirect strategies per path, and every
kind of bad selector, which must answer a JSON 4xx and leave the stores untouched.
"""

from __future__ import annotations

import base64
import functools
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import blurhash
import httpx
import pytest
import thumbhash

from tests.support.assets import stored
from tests.support.deployment import Deployment
from tests.support.errors import assert_error, assert_refused_untouched
from tests.support.images import FORMATS, MIME_TYPES, describe, loader_name, make_image

EXTENSIONS = {"jpg": "jpeg", "png": "png", "webp": "webp", "avif": "avif", "jxl": "jxl", "heic": "heic", "gif": "gif"}
CACHED_HEADER = "public, max-age=600, immutable"
REVALIDATED_HEADER = "private, s-maxage=60, no-cache, stale-while-revalidate=30, stale-if-error=120"
TEMPLATE_HOST = "https://assets.cdn.example.com"


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def update_alt(api: Deployment, path: str, entry_id: int, alt: str, labels: dict[str, str] | None = None) -> None:
    response = api.client.put(f"/assets{path}/-/entry/{entry_id}", json={"alt": alt, "labels": labels or {}})
    assert response.status_code == 200, response.text


def get_json(api: Deployment, url: str, status: int = 200) -> Any:
    response = api.client.get(url)
    assert response.status_code == status, f"{url}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def entry_ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["entryId"] for item in items]


def content_url(api: Deployment, path: str, entry_id: int) -> str:
    return f"{api.base_url}/assets{path}/-/entry/{entry_id}/content"


def unique(prefix: str = "/t") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}/image"


def images(count: int, fmt: str = "png") -> list[bytes]:
    """`count` distinct images: each has its own width, so bytes and attributes tell them apart."""
    return [make_image(fmt, 20 + index, 16) for index in range(count)]


@pytest.fixture(scope="module")
def two_entries(fs_api: Deployment) -> str:
    """One path on the filesystem server with two entries, for tests that only read."""
    path = unique()
    for content in images(2):
        stored(fs_api.client, path, content)
    return path


# --------------------------------------------------------------------------------------------------
# link (the default)
# --------------------------------------------------------------------------------------------------


def test_default_answer_is_a_link_to_the_newest_entry(api: Deployment, path: str) -> None:
    first, second = images(2)
    stored(api.client, path, first)
    stored(api.client, path, second, metadata={"alt": "second"})

    response = api.client.get(f"/assets{path}")

    assert response.status_code == 200
    assert response.headers["k-cache-status"] == "hit"
    link = response.json()
    # Konifer's current client requires the selected variant's attributes on a link (spec 06 section 9).
    attributes = link.pop("attributes")
    assert attributes == get_json(api, f"/assets{path}/-/entry/1/metadata")["variants"][0]["attributes"]
    assert link == {"url": content_url(api, path, 1), "lqip": {}, "alt": "second"}
    content = api.client.get(link["url"])
    assert content.status_code == 200
    assert content.content == second
    assert content.headers["content-type"] == "image/png"


def test_link_omits_alt_when_none_is_set(fs_api: Deployment, path: str) -> None:
    stored(fs_api.client, path, make_image("png", 8, 8))
    link = get_json(fs_api, f"/assets{path}/-/link")
    assert link.get("alt") is None
    assert set(link) == {"url", "lqip", "attributes"}
    assert link["url"] == content_url(fs_api, path, 0)


@pytest.mark.parametrize(
    "selectors",
    ["", "/-/link", "/-/link/created", "/-/link/created/1", "/-/created", "/-/new", "/-/new/link", "/-/1", "?limit=1"],
)
def test_defaults_may_be_spelled_out_or_omitted(fs_api: Deployment, two_entries: str, selectors: str) -> None:
    expected = get_json(fs_api, f"/assets{two_entries}")
    assert expected["url"] == content_url(fs_api, two_entries, 1)
    assert get_json(fs_api, f"/assets{two_entries}{selectors}") == expected


def test_trailing_separator_is_the_default_selector(fs_api: Deployment, two_entries: str) -> None:
    assert get_json(fs_api, f"/assets{two_entries}/-/") == get_json(fs_api, f"/assets{two_entries}")


def test_link_with_a_limit_is_an_array_of_links_newest_first(api: Deployment, path: str) -> None:
    contents = images(4)
    for index, content in enumerate(contents):
        stored(api.client, path, content, metadata={"alt": f"alt {index}"})

    for spelling in ("/-/link/created/3", "/-/link/created?limit=3", "/-/new/link?limit=3", "/-/3/new/link"):
        links = get_json(api, f"/assets{path}{spelling}")
        assert isinstance(links, list), spelling
        assert [link["url"] for link in links] == [content_url(api, path, i) for i in (3, 2, 1)], spelling
        assert [link["alt"] for link in links] == ["alt 3", "alt 2", "alt 1"]
        assert all(link["lqip"] == {} for link in links)

    every = get_json(api, f"/assets{path}/-/link?limit=-1")
    assert [link["url"] for link in every] == [content_url(api, path, i) for i in (3, 2, 1, 0)]
    for index, link in enumerate(reversed(every)):
        response = api.client.get(link["url"])
        assert response.status_code == 200
        assert response.content == contents[index]


# --------------------------------------------------------------------------------------------------
# metadata / info
# --------------------------------------------------------------------------------------------------


def test_metadata_is_what_the_store_answered(api: Deployment, path: str) -> None:
    stored_body = stored(
        api.client,
        path,
        make_image("webp", 30, 20),
        metadata={"alt": "meta", "labels": {"phone": "Android"}, "tags": ["cold", "verified"]},
    )

    metadata = get_json(api, f"/assets{path}/-/metadata")

    assert metadata == stored_body
    assert metadata["class"] == "image"
    assert metadata["source"] == "upload"
    assert metadata["variants"][0]["attributes"] == {
        "width": 30,
        "height": 20,
        "format": "webp",
        "colorSpace": "srgb",
        "pageCount": 1,
        "loop": 0,
    }
    assert get_json(api, f"/assets{path}/-/info") == metadata
    assert get_json(api, f"/assets{path}/-/metadata/created/1") == metadata
    assert get_json(api, f"/assets{path}/-/metadata?limit=1") == metadata


def test_metadata_with_a_limit_is_a_bare_array_newest_first(api: Deployment, path: str) -> None:
    for content in images(5):
        stored(api.client, path, content)

    assert entry_ids(get_json(api, f"/assets{path}/-/metadata/created/3")) == [4, 3, 2]
    assert entry_ids(get_json(api, f"/assets{path}/-/metadata/created?limit=3")) == [4, 3, 2]
    assert entry_ids(get_json(api, f"/assets{path}/-/info/new/2")) == [4, 3]
    assert entry_ids(get_json(api, f"/assets{path}/-/new/metadata?limit=2")) == [4, 3]
    assert entry_ids(get_json(api, f"/assets{path}/-/metadata/created/-1")) == [4, 3, 2, 1, 0]
    assert entry_ids(get_json(api, f"/assets{path}/-/metadata?limit=-1")) == [4, 3, 2, 1, 0]
    # A limit larger than what exists gives what exists.
    assert entry_ids(get_json(api, f"/assets{path}/-/metadata/created/50")) == [4, 3, 2, 1, 0]
    widths = [item["variants"][0]["attributes"]["width"] for item in get_json(api, f"/assets{path}/-/metadata/3")]
    assert widths == [24, 23, 22]


def test_metadata_many_that_matches_nothing_is_an_empty_array(fs_api: Deployment, two_entries: str) -> None:
    assert get_json(fs_api, f"/assets{two_entries}/-/metadata/3?phone=nothing-like-this") == []
    assert get_json(fs_api, f"/assets{unique()}/-/metadata/created/3") == []
    assert get_json(fs_api, f"/assets{unique()}/-/link?limit=-1") == []


# --------------------------------------------------------------------------------------------------
# Ordering
# --------------------------------------------------------------------------------------------------


def test_modified_order_puts_the_latest_update_first(api: Deployment, path: str) -> None:
    for content in images(3):
        stored(api.client, path, content)
    update_alt(api, path, 0, "touched")

    newest_modified = get_json(api, f"/assets{path}/-/metadata/modified")
    assert newest_modified["entryId"] == 0
    assert newest_modified["alt"] == "touched"
    assert datetime.fromisoformat(newest_modified["modifiedAt"]) > datetime.fromisoformat(newest_modified["createdAt"])
    assert entry_ids(get_json(api, f"/assets{path}/-/metadata/modified/3")) == [0, 2, 1]
    assert entry_ids(get_json(api, f"/assets{path}/-/modified/metadata?limit=-1")) == [0, 2, 1]
    assert get_json(api, f"/assets{path}/-/modified")["url"] == content_url(api, path, 0)
    # Creation order is unchanged by the update.
    assert get_json(api, f"/assets{path}/-/metadata")["entryId"] == 2
    assert entry_ids(get_json(api, f"/assets{path}/-/metadata/new/3")) == [2, 1, 0]

    update_alt(api, path, 1, "touched later")
    assert entry_ids(get_json(api, f"/assets{path}/-/metadata/modified/3")) == [1, 0, 2]


def test_created_and_new_are_the_same_order(fs_api: Deployment, two_entries: str) -> None:
    assert get_json(fs_api, f"/assets{two_entries}/-/metadata/created/2") == get_json(
        fs_api, f"/assets{two_entries}/-/metadata/new/2"
    )


# --------------------------------------------------------------------------------------------------
# Entry ids
# --------------------------------------------------------------------------------------------------


def test_entry_selector_in_both_positions(api: Deployment, path: str) -> None:
    contents = images(3)
    for content in contents:
        stored(api.client, path, content, metadata={"alt": f"entry alt {len(content)}"})

    for spelling in ("/-/entry/1", "/-/link/entry/1", "/-/entry/1/link"):
        assert get_json(api, f"/assets{path}{spelling}")["url"] == content_url(api, path, 1), spelling
    for spelling in ("/-/metadata/entry/1", "/-/entry/1/metadata", "/-/entry/1/info"):
        metadata = get_json(api, f"/assets{path}{spelling}")
        assert metadata["entryId"] == 1, spelling
        assert metadata["variants"][0]["attributes"]["width"] == 21
    for spelling in ("/-/content/entry/1", "/-/entry/1/content", "/-/entry/1/download"):
        response = api.client.get(f"/assets{path}{spelling}")
        assert response.status_code == 200, spelling
        assert response.content == contents[1], spelling
    assert api.client.get(f"/assets{path}/-/entry/0/content").content == contents[0]


def test_entry_selector_reaches_an_older_entry_as_a_single_object(fs_api: Deployment, two_entries: str) -> None:
    metadata = get_json(fs_api, f"/assets{two_entries}/-/metadata/entry/0")
    assert isinstance(metadata, dict)
    assert metadata["entryId"] == 0


# --------------------------------------------------------------------------------------------------
# Label filters
# --------------------------------------------------------------------------------------------------


def test_label_filters_select_matching_assets(api: Deployment, path: str) -> None:
    android, iphone, iphone_red = images(3)
    stored(api.client, path, android, metadata={"labels": {"phone": "android"}})
    stored(api.client, path, iphone, metadata={"labels": {"phone": "iphone"}})
    stored(api.client, path, iphone_red, metadata={"labels": {"phone": "iphone", "color": "red"}})

    assert get_json(api, f"/assets{path}/-/metadata?phone=android")["entryId"] == 0
    assert get_json(api, f"/assets{path}?phone=android")["url"] == content_url(api, path, 0)
    content = api.client.get(f"/assets{path}/-/content?phone=android")
    assert content.status_code == 200
    assert content.content == android
    assert entry_ids(get_json(api, f"/assets{path}/-/metadata/new/5?phone=iphone")) == [2, 1]
    assert entry_ids(get_json(api, f"/assets{path}/-/metadata/new/5?phone=iphone&color=red")) == [2]
    assert get_json(api, f"/assets{path}/-/metadata/entry/1?phone=iphone")["entryId"] == 1
    assert_error(api.client.get(f"/assets{path}/-/metadata?phone=windows"), 404)
    assert_error(api.client.get(f"/assets{path}/-/entry/0?phone=iphone"), 404)
    assert_error(api.client.get(f"/assets{path}/-/content?phone=android&color=red"), 404)


def test_label_values_are_matched_exactly_and_decoded(fs_api: Deployment, path: str) -> None:
    stored(fs_api.client, path, make_image("png", 8, 8), metadata={"labels": {"name": "Zoë & co", "phone": "Android"}})
    assert get_json(fs_api, f"/assets{path}/-/metadata?name=Zo%C3%AB%20%26%20co")["entryId"] == 0
    assert_error(fs_api.client.get(f"/assets{path}/-/metadata?phone=android"), 404)
    assert_error(fs_api.client.get(f"/assets{path}/-/metadata?name=Zo"), 404)


def test_reserved_label_keys_use_the_label_prefix(fs_api: Deployment, path: str) -> None:
    stored(fs_api.client, path, make_image("png", 10, 8), metadata={"labels": {"w": "wide", "format": "poster"}})
    stored(fs_api.client, path, make_image("png", 11, 8), metadata={"labels": {"w": "narrow"}})

    assert get_json(fs_api, f"/assets{path}/-/metadata?label:w=wide")["entryId"] == 0
    assert get_json(fs_api, f"/assets{path}/-/metadata/new/5?label:w=narrow")[0]["entryId"] == 1
    assert entry_ids(get_json(fs_api, f"/assets{path}/-/metadata/new/5?label:format=poster")) == [0]
    assert get_json(fs_api, f"/assets{path}/-/link?label:w=wide")["url"] == content_url(fs_api, path, 0)
    assert_error(fs_api.client.get(f"/assets{path}/-/metadata?label:w=medium"), 404)


# --------------------------------------------------------------------------------------------------
# content, download and their headers
# --------------------------------------------------------------------------------------------------


def test_content_serves_the_stored_bytes_with_headers(api: Deployment, path: str) -> None:
    original = make_image("jpg", 48, 32)
    stored(api.client, path, original, metadata={"alt": "A photo"})

    response = api.client.get(f"/assets{path}/-/content")

    assert response.status_code == 200
    assert response.content == original
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-length"] == str(len(original))
    assert re.fullmatch(r'(W/)?"[^"]+"', response.headers["etag"])
    assert response.headers["k-cache-status"] == "hit"
    assert response.headers["konifer-alt"] == "A photo"
    assert response.headers["k-alt"] == "A photo"
    assert "content-disposition" not in response.headers
    info = describe(response.content)
    assert (info.fmt, info.width, info.height) == ("jpeg", 48, 32)


@pytest.mark.parametrize("fmt", FORMATS)
def test_content_and_download_for_every_format(fs_api: Deployment, path: str, fmt: str) -> None:
    original = make_image(fmt, 26, 18)
    stored(fs_api.client, path, original)

    for selector in ("content", "download"):
        response = fs_api.client.get(f"/assets{path}/-/{selector}")
        assert response.status_code == 200, selector
        assert response.content == original
        assert response.headers["content-type"] == MIME_TYPES[fmt]
        assert response.headers["k-cache-status"] == "hit"
        info = describe(response.content)
        assert (info.fmt, info.width, info.height) == (loader_name(fmt), 26, 18)
    assert response.headers["content-disposition"] == f'attachment; filename="image.{EXTENSIONS[fmt]}"'


def test_no_alt_means_no_alt_headers(fs_api: Deployment, path: str) -> None:
    stored(fs_api.client, path, make_image("png", 8, 8))
    for selector in ("content", "download", "link"):
        response = fs_api.client.get(f"/assets{path}/-/{selector}")
        assert response.status_code == 200
        assert "konifer-alt" not in response.headers and "k-alt" not in response.headers, selector


def test_alt_headers_on_content_download_link_and_served_redirect(fs_api: Deployment) -> None:
    path = unique("/inplace")
    stored(fs_api.client, path, make_image("png", 8, 8), metadata={"alt": "Plain alt text"})
    for selector in ("content", "download", "link", "redirect"):
        response = fs_api.client.get(f"/assets{path}/-/{selector}")
        assert response.status_code == 200, selector
        assert response.headers["konifer-alt"] == "Plain alt text", selector
        assert response.headers["k-alt"] == "Plain alt text", selector


def test_non_ascii_alt_is_percent_encoded_utf8(fs_api: Deployment, path: str) -> None:
    alt = "Crème brûlée 🍮 für 2"
    stored(fs_api.client, path, make_image("png", 8, 8), metadata={"alt": alt})
    for selector in ("content", "download", "link"):
        response = fs_api.client.get(f"/assets{path}/-/{selector}")
        assert response.status_code == 200
        for name in ("konifer-alt", "k-alt"):
            raw = response.headers.raw
            value = next(v for k, v in raw if k.decode().lower() == name).decode("ascii")
            assert value.isascii() and value.isprintable()
            assert "%C3%A8" in value.upper() and "%F0%9F%8D%AE" in value.upper()
            assert unquote(value, errors="strict") == alt
    assert get_json(fs_api, f"/assets{path}/-/link")["alt"] == alt


def test_download_is_named_after_the_alt(api: Deployment, path: str) -> None:
    original = make_image("jpg", 20, 10)
    stored(api.client, path, original, metadata={"alt": "Sunset over hills"})
    response = api.client.get(f"/assets{path}/-/download")
    assert response.status_code == 200
    assert response.content == original
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"] == 'attachment; filename="Sunset over hills.jpeg"'
    assert response.headers["etag"] == api.client.get(f"/assets{path}/-/content").headers["etag"]


def test_download_without_alt_is_named_after_the_last_path_segment(fs_api: Deployment) -> None:
    path = f"/t/{uuid.uuid4().hex[:8]}/profile-picture"
    stored(fs_api.client, path, make_image("webp", 12, 12))
    response = fs_api.client.get(f"/assets{path}/-/download")
    assert response.headers["content-disposition"] == 'attachment; filename="profile-picture.webp"'


def test_download_with_a_non_ascii_name_adds_filename_star(fs_api: Deployment, path: str) -> None:
    alt = "Été à Paris"
    stored(fs_api.client, path, make_image("png", 8, 8), metadata={"alt": alt})
    disposition = fs_api.client.get(f"/assets{path}/-/download").headers["content-disposition"]
    assert disposition.isascii()
    assert disposition.startswith("attachment;")
    quoted = re.search(r'filename="([^"]*)"', disposition)
    assert quoted is not None and quoted.group(1).isascii() and quoted.group(1).endswith(".png")
    extended = re.search(r"filename\*=UTF-8''(\S+)", disposition)
    assert extended is not None, disposition
    assert unquote(extended.group(1), errors="strict") == f"{alt}.png"


def test_if_none_match_answers_304_on_content_and_download(api: Deployment, path: str) -> None:
    stored(api.client, path, make_image("png", 16, 16), metadata={"alt": "cacheable"})
    for selector in ("content", "download"):
        first = api.client.get(f"/assets{path}/-/{selector}")
        etag = first.headers["etag"]
        again = api.client.get(f"/assets{path}/-/{selector}", headers={"If-None-Match": etag})
        assert again.status_code == 304, selector
        assert again.content == b""
        assert again.headers["etag"] == etag
        other = api.client.get(f"/assets{path}/-/{selector}", headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200
        assert other.content == first.content
        listed = api.client.get(f"/assets{path}/-/{selector}", headers={"If-None-Match": f'"x", {etag}'})
        assert listed.status_code == 304


def test_etag_differs_between_entries(fs_api: Deployment, two_entries: str) -> None:
    first = fs_api.client.get(f"/assets{two_entries}/-/entry/0/content").headers["etag"]
    second = fs_api.client.get(f"/assets{two_entries}/-/entry/1/content").headers["etag"]
    assert first != second


def test_etag_changes_when_the_alt_changes(api: Deployment, path: str) -> None:
    original = make_image("png", 16, 16)
    stored(api.client, path, original, metadata={"alt": "before"})
    etag = api.client.get(f"/assets{path}/-/content").headers["etag"]

    update_alt(api, path, 0, "after")

    response = api.client.get(f"/assets{path}/-/content", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.content == original
    assert response.headers["etag"] != etag
    assert response.headers["konifer-alt"] == "after"
    download = api.client.get(f"/assets{path}/-/download", headers={"If-None-Match": etag})
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="after.png"'


def test_head_on_content_answers_headers_without_a_body(api: Deployment, path: str) -> None:
    original = make_image("gif", 20, 20)
    stored(api.client, path, original, metadata={"alt": "head"})
    get = api.client.get(f"/assets{path}/-/content")

    head = api.client.head(f"/assets{path}/-/content")

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == "image/gif"
    assert head.headers["content-length"] == str(len(original))
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["konifer-alt"] == "head"


def test_head_on_missing_asset_is_404(fs_api: Deployment) -> None:
    response = fs_api.client.head(f"/assets{unique()}/-/content")
    assert response.status_code == 404
    assert response.content == b""


# --------------------------------------------------------------------------------------------------
# LQIPs (spec 03 / 05 §2)
# --------------------------------------------------------------------------------------------------


def test_lqips_where_the_path_enables_them(api: Deployment) -> None:
    path = unique("/lqip")
    stored_body = stored(api.client, path, make_image("png", 64, 48, color=(200, 80, 40)))
    lqip = stored_body["variants"][0]["lqip"]
    assert set(lqip) == {"blurhash", "thumbhash"}, lqip
    assert blurhash.is_valid_blurhash(lqip["blurhash"])
    average = thumbhash.thumb_hash_to_average_rgba(list(base64.b64decode(lqip["thumbhash"])))
    # Mostly (200, 80, 40): the placeholder is of this image, not a constant.
    assert average[0] > average[1] > average[2], average

    assert get_json(api, f"/assets{path}/-/metadata")["variants"][0]["lqip"] == lqip
    assert get_json(api, f"/assets{path}")["lqip"] == lqip
    content = api.client.get(f"/assets{path}/-/content")
    assert content.headers["k-lqip-blurhash"] == lqip["blurhash"]
    assert content.headers["k-lqip-thumbhash"] == lqip["thumbhash"]


def test_no_lqips_where_the_path_does_not_enable_them(fs_api: Deployment, two_entries: str) -> None:
    assert get_json(fs_api, f"/assets{two_entries}")["lqip"] == {}
    content = fs_api.client.get(f"/assets{two_entries}/-/content")
    assert "k-lqip-blurhash" not in content.headers and "k-lqip-thumbhash" not in content.headers


# --------------------------------------------------------------------------------------------------
# redirect, per strategy
# --------------------------------------------------------------------------------------------------


def test_redirect_by_default_is_307_to_the_entry_pinned_content_url(api: Deployment, path: str) -> None:
    first, second = images(2)
    stored(api.client, path, first)
    stored(api.client, path, second)

    response = api.client.get(f"/assets{path}/-/redirect")

    assert response.status_code == 307
    assert response.headers["location"] == content_url(api, path, 1)
    followed = api.client.get(response.headers["location"])
    assert followed.status_code == 200
    assert followed.content == second
    older = api.client.get(f"/assets{path}/-/redirect/entry/0")
    assert older.status_code == 307
    assert older.headers["location"] == content_url(api, path, 0)
    assert api.client.get(older.headers["location"]).content == first


def test_template_strategy_redirects_and_links_to_the_template_url(api: Deployment) -> None:
    path = unique("/tmpl")
    body = stored(api.client, path, make_image("png", 8, 8))
    expected = f"{TEMPLATE_HOST}/{body['variants'][0]['storeKey']}"

    response = api.client.get(f"/assets{path}/-/redirect")

    assert response.status_code == 307
    assert response.headers["location"] == expected
    assert response.headers["k-cache-status"] == "hit"
    assert get_json(api, f"/assets{path}/-/link")["url"] == expected
    assert get_json(api, f"/assets{path}/-/link/new/5")[0]["url"] == expected


def test_presigned_strategy(api: Deployment) -> None:
    path = unique("/presigned")
    original = make_image("jpg", 30, 30)
    stored(api.client, path, original, metadata={"alt": "signed"})

    response = api.client.get(f"/assets{path}/-/redirect")

    if api.store == "s3":
        assert api.s3 is not None
        assert response.status_code == 307
        location = response.headers["location"]
        assert location.startswith(api.s3.endpoint_url)
        assert "X-Amz-Signature=" in location
        assert "X-Amz-Expires=600" in location
        downloaded = httpx.get(location, timeout=30.0)
        assert downloaded.status_code == 200
        assert downloaded.content == original
        link = get_json(api, f"/assets{path}/-/link")["url"]
        assert link.startswith(api.s3.endpoint_url) and "X-Amz-Signature=" in link
        assert httpx.get(link, timeout=30.0).content == original
    else:
        # No presigning outside S3: served in place, like `none`.
        assert response.status_code == 200
        assert response.content == original
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["konifer-alt"] == "signed"
        assert get_json(api, f"/assets{path}/-/link")["url"] == content_url(api, path, 0)


def test_none_strategy_serves_the_content_in_place(api: Deployment) -> None:
    path = unique("/inplace")
    original = make_image("webp", 30, 20)
    stored(api.client, path, original, metadata={"alt": "in place"})

    response = api.client.get(f"/assets{path}/-/redirect")

    assert response.status_code == 200
    assert response.content == original
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["k-cache-status"] == "hit"
    assert response.headers["konifer-alt"] == "in place"
    assert "etag" in response.headers
    assert get_json(api, f"/assets{path}/-/link")["url"] == content_url(api, path, 0)


# --------------------------------------------------------------------------------------------------
# Cache-Control per path
# --------------------------------------------------------------------------------------------------


def test_cache_control_is_exactly_what_the_path_configures(api: Deployment) -> None:
    path = unique("/cached")
    stored(api.client, path, make_image("png", 8, 8))
    for selector in ("content", "download", "link", "metadata", "metadata/3", "link/3", "redirect"):
        response = api.client.get(f"/assets{path}/-/{selector}")
        assert response.status_code in (200, 307), selector
        assert response.headers.get_list("cache-control") == [CACHED_HEADER], selector


def test_cache_control_pattern_matches_case_insensitively(fs_api: Deployment) -> None:
    path = unique("/Cached")
    stored(fs_api.client, path, make_image("png", 8, 8))
    assert fs_api.client.get(f"/assets{path}/-/content").headers.get_list("cache-control") == [CACHED_HEADER]


def test_cache_control_with_revalidation_directives(fs_api: Deployment) -> None:
    path = unique("/revalidated")
    stored(fs_api.client, path, make_image("png", 8, 8))
    for selector in ("content", "link", "metadata"):
        response = fs_api.client.get(f"/assets{path}/-/{selector}")
        assert response.status_code == 200
        assert response.headers.get_list("cache-control") == [REVALIDATED_HEADER], selector


def test_cdn_defaults_where_nothing_is_configured(fs_api: Deployment, two_entries: str) -> None:
    # Entry-pinned bodies never change: a CDN may keep them for a year. Everything that can
    # change (newest at a path, link and metadata JSON) gets a short lifetime.
    immutable = "public, max-age=31536000, immutable"
    short = "public, max-age=60, stale-while-revalidate=600"
    for selector in ("entry/0/content", "content/entry/0", "entry/0/download"):
        assert fs_api.client.get(f"/assets{two_entries}/-/{selector}").headers["cache-control"] == immutable, selector
    for selector in ("content", "download", "link", "metadata", "entry/0/link", "entry/0/metadata"):
        assert fs_api.client.get(f"/assets{two_entries}/-/{selector}").headers["cache-control"] == short, selector


def test_purge_tags_name_the_entry_and_every_ancestor(fs_api: Deployment, two_entries: str) -> None:
    headers = fs_api.client.get(f"/assets{two_entries}/-/entry/0/content").headers
    segments = two_entries.strip("/").split("/")
    ancestors = ["/" + "/".join(segments[:depth]) for depth in range(1, len(segments) + 1)]
    expected = [f"entry:{two_entries}/0", f"path:{two_entries}", *(f"tree:{ancestor}" for ancestor in ancestors)]
    assert headers["cache-tag"].split(",") == expected
    assert headers["surrogate-key"].split(" ") == expected


# --------------------------------------------------------------------------------------------------
# Not found
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("selector", ["", "/-/link", "/-/content", "/-/download", "/-/redirect", "/-/metadata"])
def test_unknown_path_is_404(fs_api: Deployment, selector: str) -> None:
    assert_refused_untouched(fs_api, lambda: fs_api.client.get(f"/assets{unique()}{selector}"), 404)


@pytest.mark.parametrize(
    "selector", ["/-/entry/99", "/-/content/entry/99", "/-/entry/99/metadata", "/-/redirect/entry/2", "/-/entry/2"]
)
def test_unknown_entry_is_404(fs_api: Deployment, two_entries: str, selector: str) -> None:
    assert_refused_untouched(fs_api, lambda: fs_api.client.get(f"/assets{two_entries}{selector}"), 404)


def test_parent_path_is_not_its_children(fs_api: Deployment, two_entries: str) -> None:
    parent = two_entries.rsplit("/", 1)[0]
    assert_error(fs_api.client.get(f"/assets{parent}/-/metadata"), 404)
    assert_error(fs_api.client.get(f"/assets{two_entries}/child/-/metadata"), 404)


# --------------------------------------------------------------------------------------------------
# Bad selectors and queries
# --------------------------------------------------------------------------------------------------

INVALID_SELECTORS = [
    "/-/link/metadata",
    "/-/content/download",
    "/-/info/metadata",
    "/-/created/new",
    "/-/modified/created",
    "/-/created/entry/0",
    "/-/entry/0/new",
    "/-/entry/0/3",
    "/-/entry/0?limit=3",
    "/-/metadata/entry/0/-1",
    "/-/entry/0/entry/1",
    "/-/content/3",
    "/-/content?limit=2",
    "/-/content/-1",
    "/-/download/created/2",
    "/-/redirect?limit=5",
    "/-/metadata/0",
    "/-/metadata?limit=0",
    "/-/metadata/-2",
    "/-/link?limit=-2",
    "/-/metadata/3?limit=3",
    "/-/metadata/2/3",
    "/-/metadata?limit=abc",
    "/-/metadata?limit=",
    "/-/bogus",
    "/-/metadata/sideways",
    "/-/oldest",
    "/-/entry/abc",
    "/-/entry/-1",
    "/-/entry/1.5",
    "/-/entry",
    "/-/metadata/entry",
    "/-/all",
    "/-/recursive",
]


@pytest.mark.parametrize("selector", INVALID_SELECTORS)
def test_invalid_selector_is_400(fs_api: Deployment, two_entries: str, selector: str) -> None:
    assert_refused_untouched(fs_api, lambda: fs_api.client.get(f"/assets{two_entries}{selector}"), 400)


@pytest.mark.parametrize("query", ["w=100", "h=50", "format=png", "profile=thumbnail", "q=80&phone=x"])
def test_transformation_parameters_on_metadata_are_400(fs_api: Deployment, two_entries: str, query: str) -> None:
    for selector in ("/-/metadata", "/-/info", "/-/metadata/3"):
        url = f"/assets{two_entries}{selector}?{query}"
        body = assert_refused_untouched(fs_api, functools.partial(fs_api.client.get, url), 400)
        assert query.split("=", 1)[0] in body["message"]


INVALID_FETCH_PATHS = {
    "dot-dot": "/assets/t/%2E%2E/image",
    "double-slash": "/assets/t//image",
    "dot-in-segment": "/assets/t/image.png",
    "space": "/assets/t/my%20image/-/metadata",
    "too-long": "/assets/" + "a" * 1100,
}


@pytest.mark.parametrize("name", sorted(INVALID_FETCH_PATHS))
def test_invalid_path_on_fetch_is_400(fs_api: Deployment, name: str) -> None:
    assert_refused_untouched(fs_api, lambda: fs_api.client.get(INVALID_FETCH_PATHS[name]), 400)


# --------------------------------------------------------------------------------------------------
# Health, readiness, schema
# --------------------------------------------------------------------------------------------------


def test_health_is_200_json(fs_api: Deployment) -> None:
    response = fs_api.client.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.content == b'{"status":"okay"}'  # Konifer's exact body (spec 06 section 7)


def test_ready_reports_its_checks(api: Deployment) -> None:
    response = api.client.get("/ready")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "object_store": "ok"}


def test_openapi_schema_lists_the_asset_routes(fs_api: Deployment) -> None:
    response = fs_api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    asset_paths = [name for name in schema["paths"] if name.startswith("/assets/") and "/-/" not in name]
    assert asset_paths == ["/assets/{asset_path}"], schema["paths"].keys()
    operations = schema["paths"][asset_paths[0]]
    assert {"get", "post", "put", "delete"} <= set(operations), operations.keys()
    for collection in ("/assets/{asset_path}/-/list", "/assets/{asset_path}/-/zip", "/paths", "/filters"):
        assert set(schema["paths"][collection]) == {"get"}
    assert set(schema["paths"]["/bundles"]) == {"post"}


def test_unknown_route_is_404_json(fs_api: Deployment) -> None:
    assert_error(fs_api.client.get("/no-such-route"), 404)
