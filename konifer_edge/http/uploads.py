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
ASSET_PART = "asset"
MAX_METADATA_BYTES = 64 * 1024
MAX_JSON_BODY_BYTES = 64 * 1024
MULTIPART_FRAMING_BYTES = 16 * 1024


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


class _Part(msgspec.Struct):
    name: str
    has_filename: bool
    content: bytearray


class _HttpSourceCheck(msgspec.Struct, frozen=True):
    url: str | None = None


class _S3SourceCheck(msgspec.Struct, frozen=True):
    arn: str | None = None


class _SourceCheck(msgspec.Struct, frozen=True):
    http: _HttpSourceCheck | None = None
    s3: _S3SourceCheck | None = None


class _MultipartSources(msgspec.Struct, frozen=True):
    """The source fields a JSON store names, read from a multipart `metadata` part only to refuse them."""

    url: str | None = None
    source: _SourceCheck | None = None

    def named(self) -> list[str]:
        named = ["url"] if self.url is not None else []
        if self.source is not None and self.source.http is not None and self.source.http.url is not None:
            named.append("source.http.url")
        if self.source is not None and self.source.s3 is not None and self.source.s3.arn is not None:
            named.append("source.s3.arn")
        return named


async def read_multipart(content_type: str, chunks: AsyncIterator[bytes], max_asset_bytes: int) -> MultipartUpload:
    """Parse the `metadata` part and the image part from a streamed multipart body.

    The image is the part named `asset`, as Konifer's client sends it; other parts are then
    ignored, as Konifer ignores them. Without an `asset` part, a single other part is the
    image (the form of the first API and of scripts that name it `file`), a part carrying a
    file name before one that does not. The parts may come in any order.
    """
    _, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary", reason="invalid_multipart")
    parser = multipart.PushMultipartParser(boundary, max_segment_count=8, strict=False)
    # Every part counts against one budget, so ignored parts cannot hold more memory than an upload may.
    budget = max_asset_bytes + MAX_METADATA_BYTES + MULTIPART_FRAMING_BYTES
    received = 0
    metadata_raw: bytearray | None = None
    asset: bytearray | None = None
    others: list[_Part] = []
    current: bytearray | None = None
    current_limit = 0
    try:
        async for chunk in chunks:
            for event in parser.parse(chunk):
                if isinstance(event, multipart.MultipartSegment):
                    current, current_limit = bytearray(), max_asset_bytes
                    name = event.name or ""
                    if name == METADATA_PART:
                        if metadata_raw is not None:
                            raise BadRequest("More than one metadata part", reason="invalid_multipart")
                        metadata_raw, current_limit = current, MAX_METADATA_BYTES
                    elif name == ASSET_PART:
                        if asset is not None:
                            raise BadRequest("More than one 'asset' part", reason="two_assets")
                        asset = current
                        others.clear()
                    elif asset is None:
                        others.append(_Part(name=name, has_filename=bool(event.filename), content=current))
                    else:
                        current = None  # an asset part is present: the rest is ignored unread
                elif event is None:
                    current = None
                else:
                    received += len(event)
                    if received > budget:
                        raise PayloadTooLarge(
                            f"The multipart body is larger than {budget} bytes", reason="body_too_large"
                        )
                    if current is not None:
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
    raw = bytes(metadata_raw)
    metadata = decode_metadata(raw, what="metadata part")
    sources = decode_json(raw or b"{}", _MultipartSources, what="metadata part", reason="invalid_metadata").named()
    if sources:
        raise BadRequest(
            f"A multipart store carries its image in the 'asset' part; {' and '.join(sources)} is not allowed"
            " in its metadata (send a URL or ARN source as application/json)",
            reason="invalid_metadata",
        )
    content = asset if asset is not None else _the_other_image_part(others)
    if not content:
        raise BadRequest("The multipart body has no asset part", reason="missing_asset")
    return MultipartUpload(
        metadata=AssetMetadataInput(alt=metadata.alt, labels=metadata.labels, tags=metadata.tags),
        content=bytes(content),
    )


def _the_other_image_part(parts: list[_Part]) -> bytearray | None:
    """Without an `asset` part: the one part that can be the image, files before plain fields."""
    files = [part for part in parts if part.has_filename] or parts
    if len(files) > 1:
        names = ", ".join(sorted({f"'{part.name[:32]}'" for part in files}))
        raise BadRequest(
            f"The multipart body has more than one candidate image part ({names}); name the image part 'asset'",
            reason="two_assets",
        )
    return files[0].content if files else None


def require_store_content_type(content_type: str) -> str:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ("multipart/form-data", "application/json"):
        raise UnsupportedMediaType(
            "Store with multipart/form-data (metadata + asset) or application/json with a url",
            reason="unsupported_request_type",
        )
    return media_type
