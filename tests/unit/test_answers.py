"""The answer to a resolved fetch (http/answers.py), from outcomes built by hand: no server, no store.

And what of an answer the replay (http/replay.py) records: the one rule, and the complete
header list a replay sends.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from litestar import Response
from litestar.response import Redirect, Stream

from konifer_edge.cache.generations import SharedMemoryGenerations
from konifer_edge.cache.resolution import ResolutionCache
from konifer_edge.config import Config, load_config
from konifer_edge.domain.models import Asset, AssetSource, Attributes, Lqip, Variant
from konifer_edge.domain.selectors import FetchSelector, ReturnFormat
from konifer_edge.domain.transformation import parse_transformation
from konifer_edge.http.answers import BeforeBody, Conditions, answer_fetch
from konifer_edge.http.replay import Replay, _recordable
from konifer_edge.services.delivery import LinkTarget
from konifer_edge.services.fetch import FetchOutcome, FetchRequest
from konifer_edge.services.variants import ResolvedVariant

BYTES = b"0123456789"


class InMemoryBody:
    """A variant's bytes, counting how often the answer asked for them."""

    def __init__(self, variant: Variant, *, in_memory: bool = True) -> None:
        self.variant = variant
        self.key = f"{variant.bucket}/{variant.store_key}"
        self.in_memory = in_memory
        self.reads = 0

    async def read(self) -> bytes:
        self.reads += 1
        return BYTES

    async def stream(self, byte_range: tuple[int, int] | None) -> AsyncIterator[bytes]:
        self.reads += 1

        async def chunks() -> AsyncIterator[bytes]:
            yield BYTES if byte_range is None else BYTES[byte_range[0] : byte_range[1] + 1]

        return chunks()


CONFIG: Config = load_config(None)


def _variant() -> Variant:
    return Variant(
        id=uuid.uuid4(),
        asset_id=uuid.uuid4(),
        transformation_key="",
        bucket="assets",
        store_key="photos/a",
        attributes=Attributes(width=4, height=3, format="png"),
        content_type="image/png",
        size=len(BYTES),
        content_hash="digest",
        lqip=Lqip(blurhash="LEHV6nWB2yk8"),
    )


def _asset(variant: Variant, alt: str | None = "a cat") -> Asset:
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    return Asset(
        id=variant.asset_id,
        path="/photos",
        entry_id=7,
        alt=alt,
        labels={},
        tags=[],
        source=AssetSource.UPLOAD,
        source_url=None,
        created_at=moment,
        modified_at=moment,
        variants=(variant,),
    )


def _request(return_format: ReturnFormat, *, entry_id: int | None = 7, limit: int = 1) -> FetchRequest:
    return FetchRequest(
        path="/photos",
        selector=FetchSelector(return_format=return_format, entry_id=entry_id, limit=limit),
        settings=CONFIG.paths.resolve("/photos"),
        raw_transformation={},
        requested=parse_transformation({}, CONFIG.variant_profiles),
        base_url="https://img.example",
    )


def _content(
    return_format: ReturnFormat = ReturnFormat.CONTENT, *, negotiated: bool = False, in_memory: bool = True
) -> tuple[FetchOutcome, InMemoryBody]:
    variant = _variant()
    body = InMemoryBody(variant, in_memory=in_memory)
    outcome = FetchOutcome(
        request=_request(return_format),
        assets=[_asset(variant)],
        asset_outcome="memory",
        generation=3,
        variants=[ResolvedVariant(variant=variant, cache_status="hit", negotiated=negotiated, source="database")],
        body=body,
    )
    return outcome, body


def _answer(
    outcome: FetchOutcome, conditions: Conditions | None = None, before_body: BeforeBody | None = None
) -> Response[Any]:
    scope: Any = {"type": "http", "state": {}}
    return asyncio.run(answer_fetch(outcome, conditions or Conditions(), CONFIG, scope, before_body=before_body))


def test_content_is_the_bytes_with_etag_length_and_an_immutable_lifetime() -> None:
    outcome, body = _content()
    response = _answer(outcome)
    assert (response.status_code, response.content, response.media_type) == (200, BYTES, "image/png")
    assert response.headers["Content-Length"] == str(len(BYTES))
    assert response.headers["K-Cache-Status"] == "hit"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["K-Alt"] == "a cat"
    assert response.headers["K-LQIP-Blurhash"] == "LEHV6nWB2yk8"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["ETag"].startswith('"')
    assert "Vary" not in response.headers
    assert body.reads == 1


def test_a_current_copy_is_304_and_the_bytes_are_never_read() -> None:
    outcome, body = _content()
    etag = _answer(outcome).headers["ETag"]
    body.reads = 0
    response = _answer(outcome, Conditions(if_none_match=f"W/{etag}"))
    assert (response.status_code, response.content) == (304, b"")
    assert "Content-Length" not in response.headers
    assert response.headers["ETag"] == etag
    assert body.reads == 0


def test_head_has_the_length_and_no_body_and_reads_nothing() -> None:
    outcome, body = _content()
    counted: list[bool] = []

    async def before_body() -> None:
        counted.append(True)

    response = _answer(outcome, Conditions(head=True), before_body)
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["Content-Length"] == str(len(BYTES))
    assert body.reads == 0 and counted == []


def test_ranges_are_206_and_unsatisfiable_ones_416() -> None:
    outcome, body = _content()
    response = _answer(outcome, Conditions(range="bytes=2-4"))
    assert (response.status_code, response.content) == (206, b"234")
    assert response.headers["Content-Range"] == f"bytes 2-4/{len(BYTES)}"
    assert response.headers["Content-Length"] == "3"
    body.reads = 0
    refused = _answer(outcome, Conditions(range="bytes=50-60"))
    assert refused.status_code == 416
    assert refused.headers["Content-Range"] == f"bytes */{len(BYTES)}"
    assert body.reads == 0


def test_a_negotiated_download_varies_by_accept_and_names_its_file() -> None:
    outcome, _ = _content(ReturnFormat.DOWNLOAD, negotiated=True)
    response = _answer(outcome)
    assert response.headers["Vary"] == "Accept"
    assert response.headers["Content-Disposition"] == 'attachment; filename="a cat.png"'


def test_a_large_body_is_streamed() -> None:
    outcome, body = _content(in_memory=False)
    response = _answer(outcome)
    assert response.status_code == 200
    assert isinstance(response, Stream)
    assert body.reads == 1


def test_metadata_of_one_asset_is_a_hit_with_a_short_lifetime() -> None:
    variant = _variant()
    outcome = FetchOutcome(request=_request(ReturnFormat.METADATA), assets=[_asset(variant)], asset_outcome="redis")
    response = _answer(outcome)
    assert response.status_code == 200
    assert response.headers["K-Cache-Status"] == "hit"
    assert "immutable" not in response.headers["Cache-Control"]
    assert isinstance(response.content, bytes)
    assert json.loads(response.content)["entryId"] == 7


def test_entries_are_always_a_list() -> None:
    variant = _variant()
    outcome = FetchOutcome(
        request=_request(ReturnFormat.ENTRIES, entry_id=None), assets=[_asset(variant)], asset_outcome="database"
    )
    response = _answer(outcome)
    assert isinstance(response.content, bytes)
    assert [entry["entryId"] for entry in json.loads(response.content)["entries"]] == [7]
    assert "K-Cache-Status" not in response.headers


def test_a_link_points_where_delivery_said() -> None:
    variant = _variant()
    outcome = FetchOutcome(
        request=_request(ReturnFormat.LINK),
        assets=[_asset(variant)],
        asset_outcome="memory",
        variants=[ResolvedVariant(variant=variant, cache_status="miss", negotiated=False, source="rendered")],
        links=[LinkTarget(url="https://img.example/x")],
    )
    response = _answer(outcome)
    assert isinstance(response.content, bytes)
    assert json.loads(response.content)["url"] == "https://img.example/x"
    assert response.headers["K-Cache-Status"] == "miss"
    assert outcome.cache_outcome == "rendered"


def test_a_redirect_to_our_own_url_resolves_no_variant() -> None:
    variant = _variant()
    outcome = FetchOutcome(
        request=_request(ReturnFormat.REDIRECT),
        assets=[_asset(variant, alt=None)],
        asset_outcome="memory",
        location="https://img.example/assets/photos/-/entry/7/content",
    )
    response = _answer(outcome)
    assert isinstance(response, Redirect)
    assert response.status_code == 307
    assert response.url == "https://img.example/assets/photos/-/entry/7/content"
    assert "K-Cache-Status" not in response.headers


def test_a_presigned_redirect_is_never_kept_by_a_cdn() -> None:
    variant = _variant()
    request = _request(ReturnFormat.REDIRECT)
    redirect = msgspec.structs.replace(request.settings.return_format.redirect, strategy="presigned")
    settings = msgspec.structs.replace(
        request.settings, return_format=msgspec.structs.replace(request.settings.return_format, redirect=redirect)
    )
    outcome = FetchOutcome(
        request=msgspec.structs.replace(request, settings=settings),
        assets=[_asset(variant)],
        asset_outcome="memory",
        variants=[ResolvedVariant(variant=variant, cache_status="hit", negotiated=True)],
        location="https://s3.example/assets/photos/a?X-Amz-Signature=1",
    )
    response = _answer(outcome)
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Vary"] == "Accept"


def _replay(tmp_path: Path) -> Replay:
    # Recording asks the runtime only for a reader of the path's generation.
    generations = SharedMemoryGenerations(tmp_path / "generations.bin")
    runtime: Any = SimpleNamespace(resolutions=ResolutionCache(generations, None))
    return Replay(runtime)


class _Request:
    def __init__(self, method: str, accept: str = "") -> None:
        self.method = method
        headers = [(b"accept", accept.encode())] if accept else []
        self.scope = {"type": "http", "path": "/assets/photos/-/entry/7", "query_string": b"", "headers": headers}


@pytest.mark.parametrize("negotiated", [False, True])
def test_an_entry_image_is_recorded_with_its_complete_header_list(negotiated: bool, tmp_path: Path) -> None:
    outcome, _ = _content(negotiated=negotiated)
    response = _answer(outcome)
    replay = _replay(tmp_path)
    request: Any = _Request("GET", accept="image/webp")
    replay.record(request, outcome, response)
    target = "/assets/photos/-/entry/7?"
    assert replay.find(target, "image/avif" if negotiated else "") is None or not negotiated
    recorded = replay.find(target, "image/webp")
    assert recorded is not None
    headers = dict(recorded.length_and_type)
    assert headers[b"content-length"] == str(len(BYTES)).encode()
    assert headers[b"content-type"] == b"image/png"
    assert headers[b"k-cache-status"] == b"hit"
    assert b"content-length" not in dict(recorded.headers)
    assert recorded.body is None and recorded.body_key == "assets/photos/a"
    assert recorded.counts_as_variant_lookup
    assert recorded.generation_now is not None and recorded.generation_now() == 0


def test_only_whole_public_get_answers_of_an_entry_in_memory_are_recorded() -> None:
    outcome, _ = _content()
    whole = _answer(outcome)
    assert _recordable("GET", outcome, whole)
    assert not _recordable("HEAD", outcome, whole)
    assert not _recordable("GET", outcome, _answer(outcome, Conditions(range="bytes=0-1")))
    assert not _recordable("GET", msgspec.structs.replace(outcome, generation=None), whole)
    newest = msgspec.structs.replace(outcome, request=_request(ReturnFormat.CONTENT, entry_id=None))
    assert not _recordable("GET", newest, whole)
    streamed, _ = _content(in_memory=False)
    assert not _recordable("GET", streamed, _answer(streamed))
    private = msgspec.structs.replace(
        outcome.request.settings, access=msgspec.structs.replace(outcome.request.settings.access, read="key")
    )
    assert not _recordable(
        "GET",
        msgspec.structs.replace(outcome, request=msgspec.structs.replace(outcome.request, settings=private)),
        whole,
    )


def test_metadata_is_recorded_with_its_body(tmp_path: Path) -> None:
    variant = _variant()
    outcome = FetchOutcome(
        request=_request(ReturnFormat.METADATA, entry_id=None), assets=[_asset(variant)], asset_outcome="redis"
    )
    outcome = msgspec.structs.replace(outcome, generation=5)
    response = _answer(outcome)
    replay = _replay(tmp_path)
    request: Any = _Request("GET")
    replay.record(request, outcome, response)
    recorded = replay.find("/assets/photos/-/entry/7?", "")
    assert recorded is not None
    assert recorded.body == response.content and recorded.etag is None
    assert dict(recorded.length_and_type)[b"content-type"] == b"application/json"
    assert (recorded.route_kind, recorded.generation) == ("fetch_metadata", 5)


def test_links_are_recorded_per_origin_unless_they_expire(tmp_path: Path) -> None:
    outcome, _ = _content(ReturnFormat.LINK)
    lasting = msgspec.structs.replace(outcome, links=[LinkTarget(url="https://img.example/assets/photos/-/entry/7")])
    response = _answer(lasting)
    assert _recordable("GET", lasting, response)
    replay = _replay(tmp_path)
    request: Any = _Request("GET")
    request.scope["headers"].append((b"host", b"img.example"))
    replay.record(request, lasting, response)
    target = "/assets/photos/-/entry/7?"
    assert replay.find(target, "", "http://elsewhere.example") is None
    recorded = replay.find(target, "", "http://img.example")
    assert recorded is not None and recorded.body == response.content
    assert dict(recorded.length_and_type)[b"k-cache-status"] == b"hit"
    presigned = LinkTarget(url="https://s3.example/a?X-Amz-Signature=1", expires_at=datetime(2026, 1, 3, tzinfo=UTC))
    expiring = msgspec.structs.replace(outcome, links=[presigned])
    assert not _recordable("GET", expiring, _answer(expiring))
