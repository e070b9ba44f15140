"""Reading a store request's body: multipart (metadata + image) or JSON with a URL.

The body is read as a stream and cut off as soon as it passes its limit, so no more
than the limit (plus a small allowance for the metadata part) is ever held.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

import msgspec
import multipart

from konifer_edge.domain.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from konifer_edge.domain.models import AssetMetadataInput
from konifer_edge.sources.requested import SourceBody

T = TypeVar("T")

METADATA_PART = "metadata"
MAX_METADATA_BYTES = 64 * 1024
MAX_JSON_BODY_BYTES = 64 * 1024


class UrlStoreBody(msgspec.Struct, frozen=True):
    url: str | None = None
    """Spec 03's source URL; Konifer now calls it deprecated in favour of ``source``."""
    alt: str | None = None
    labels: dict[str, str] = {}
    tags: list[str] = []
    source: SourceBody | None = None

    @property
    def names_a_source(self) -> bool:
        return self.url is not None or (self.source is not None and self.source.names_any)


class MultipartUpload(msgspec.Struct, frozen=True):
    metadata: AssetMetadataInput
    content: bytes


def decode_json(raw: bytes, kind: type[T], *, what: str, reason: str) -> T:
    """Decode a JSON body into ``kind``; every way it can be wrong is a 400 that says which."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as error:
        raise BadRequest(f"The {what} is not valid: {error}", reason=reason) from error
    except msgspec.DecodeError as error:
        raise BadRequest(f"The {what} is not valid JSON", reason=reason) from error
    except UnicodeDecodeError as error:  # msgspec's answer to invalid UTF-8 inside a string it keeps
        raise BadRequest(f"The {what} is not valid UTF-8", reason=reason) from error
    except RecursionError as error:  # msgspec walks nested arrays and objects recursively, even unknown ones
        raise BadRequest(f"The {what} is nested too deeply", reason=reason) from error


def decode_metadata(raw: bytes, *, what: str) -> UrlStoreBody:
    return decode_json(raw or b"{}", UrlStoreBody, what=what, reason="invalid_metadata")


async def read_body(chunks: AsyncIterator[bytes], max_bytes: int = MAX_JSON_BODY_BYTES) -> bytes:
    """The whole body, refused with 413 as soon as it passes ``max_bytes``."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"A JSON body may be at most {max_bytes} bytes", reason="body_too_large")
    return bytes(body)


async def read_json_body(chunks: AsyncIterator[bytes]) -> UrlStoreBody:
    return decode_metadata(await read_body(chunks), what="JSON body")


def require_json_content_type(content_type: str) -> None:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"Send the body as application/json, not '{media_type[:64] or 'nothing'}'",
            reason="unsupported_request_type",
        )


async def read_multipart(content_type: str, chunks: AsyncIterator[bytes], max_asset_bytes: int) -> MultipartUpload:
    """Parse `metadata` and the image part (any other name) from a streamed multipart body."""
    _, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary", reason="invalid_multipart")
    parser = multipart.PushMultipartParser(boundary, max_segment_count=8, strict=False)
    metadata_raw: bytearray | None = None
    content: bytearray | None = None
    current: bytearray | None = None
    current_limit = 0
    try:
        async for chunk in chunks:
            for event in parser.parse(chunk):
                if isinstance(event, multipart.MultipartSegment):
                    current = bytearray()
                    if event.name == METADATA_PART:
                        if metadata_raw is not None:
                            raise BadRequest("More than one metadata part", reason="invalid_multipart")
                        metadata_raw, current_limit = current, MAX_METADATA_BYTES
                    else:
                        if content is not None:
                            raise BadRequest("Exactly one asset part is allowed", reason="invalid_multipart")
                        content, current_limit = current, max_asset_bytes
                elif event is None:
                    current = None
                elif current is not None:
                    current += event
                    if len(current) > current_limit:
                        raise PayloadTooLarge(
                            f"The {'metadata' if current is metadata_raw else 'asset'} part is larger than"
                            f" {current_limit} bytes",
                            reason="body_too_large",
                        )
        parser.close()
    except multipart.MultipartError as error:
        raise BadRequest(f"The multipart body is malformed: {error}", reason="invalid_multipart") from error
    if metadata_raw is None:
        raise BadRequest("The multipart body has no 'metadata' part (send {} for none)", reason="missing_metadata")
    metadata = decode_metadata(bytes(metadata_raw), what="metadata part")
    if metadata.names_a_source:
        if content is not None:
            raise BadRequest("Give either an asset part or a url, not both", reason="two_sources")
        raise BadRequest("A url source is sent as application/json, not multipart", reason="invalid_multipart")
    if content is None or not content:
        raise BadRequest("The multipart body has no asset part", reason="missing_asset")
    return MultipartUpload(
        metadata=AssetMetadataInput(alt=metadata.alt, labels=metadata.labels, tags=metadata.tags),
        content=bytes(content),
    )


def require_store_content_type(content_type: str) -> str:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ("multipart/form-data", "application/json"):
        raise UnsupportedMediaType(
            "Store with multipart/form-data (metadata + asset) or application/json with a url",
            reason="unsupported_request_type",
        )
    return media_type
