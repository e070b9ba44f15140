"""JSON shapes on the wire, with Konifer's field names. Encoded once with msgspec."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from litestar.params import KwargDefinition

from konifer_edge.domain.models import Asset, Attributes, Lqip, Variant
from konifer_edge.domain.selectors import MAX_ENTRY_ID
from konifer_edge.domain.shares import MAX_DOWNLOADS, Share

# Konifer's dates are ISO local date-times without an offset, so not OpenAPI's `date-time` (RFC 3339
# requires the offset): the schema says what is really sent. The encoding itself is unchanged.
LocalDateTime = Annotated[
    datetime,
    KwargDefinition(
        description="ISO local date-time, UTC, without an offset (as Konifer writes it)",
        schema_extra={"format": None, "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?$"},
    ),
]


class AttributesWire(msgspec.Struct, rename="camel"):
    width: int
    height: int
    format: str
    page_count: int
    loop: int


class LqipWire(msgspec.Struct, omit_defaults=True):
    blurhash: str | None = None
    thumbhash: str | None = None


class VariantWire(msgspec.Struct, rename="camel", omit_defaults=True):
    is_original_variant: bool
    store_bucket: str
    store_key: str
    attributes: AttributesWire
    lqip: LqipWire = msgspec.field(default_factory=LqipWire)
    transformation: dict[str, object] | None = None


class AssetMetadataWire(msgspec.Struct, rename="camel", omit_defaults=True):
    """Konifer omits null fields rather than writing them, and so do we."""

    class_: str = msgspec.field(name="class")
    entry_id: int
    labels: dict[str, str]
    tags: list[str]
    source: str
    variants: list[VariantWire]
    created_at: LocalDateTime
    modified_at: LocalDateTime
    alt: str | None = None
    source_url: str | None = None


class AssetLinkWire(msgspec.Struct, omit_defaults=True):
    url: str
    lqip: LqipWire
    alt: str | None = None


class ErrorWire(msgspec.Struct):
    message: str
    error: str


class ShareCreateWire(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """`POST /shares`: an asset (`path` and `entryId`), or without `entryId` whatever is newest at `path`."""

    path: str
    entry_id: Annotated[int, msgspec.Meta(ge=0, le=MAX_ENTRY_ID)] | None = None
    expires_at: datetime | None = None
    expires_in: int | None = None
    max_downloads: Annotated[int, msgspec.Meta(ge=1, le=MAX_DOWNLOADS)] | None = None
    transformation: dict[str, str | int | float] = {}


class ShareWire(msgspec.Struct, rename="camel", omit_defaults=True):
    """A share record. `token` and `url` appear once, in the answer that created it.

    Shares are ours, not Konifer's: their times are RFC 3339 in UTC with the `Z`, the form
    `expiresAt` is given in, so a client can send back what it read.
    """

    id: uuid.UUID
    kind: Literal["asset", "path"]
    path: str
    transformation: dict[str, str]
    status: Literal["active", "revoked", "expired", "exhausted"]
    downloads: int
    created_at: datetime
    entry_id: int | None = None
    expires_at: datetime | None = None
    max_downloads: int | None = None
    revoked_at: datetime | None = None
    token: str | None = None
    url: str | None = None


def lqip_wire(lqip: Lqip) -> LqipWire:
    return LqipWire(blurhash=lqip.blurhash, thumbhash=lqip.thumbhash)


def attributes_wire(attributes: Attributes) -> AttributesWire:
    return AttributesWire(
        width=attributes.width,
        height=attributes.height,
        format=attributes.format,
        page_count=attributes.page_count,
        loop=attributes.loop,
    )


def variant_wire(variant: Variant) -> VariantWire:
    return VariantWire(
        is_original_variant=variant.is_original,
        store_bucket=variant.bucket,
        store_key=variant.store_key,
        attributes=attributes_wire(variant.attributes),
        lqip=lqip_wire(variant.lqip),
        transformation=None if variant.is_original else variant.transformation,
    )


def local_time(moment: datetime) -> datetime:
    """Konifer writes ISO local date-times without a zone; ours are UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def metadata_wire(asset: Asset) -> AssetMetadataWire:
    return AssetMetadataWire(
        class_="image",
        alt=asset.alt,
        entry_id=asset.entry_id,
        labels=asset.labels,
        tags=asset.tags,
        source=asset.source.value,
        source_url=asset.source_url,
        variants=[variant_wire(v) for v in asset.variants],
        created_at=local_time(asset.created_at),
        modified_at=local_time(asset.modified_at),
    )


def share_wire(share: Share, now: datetime, *, token: str | None = None, url: str | None = None) -> ShareWire:
    return ShareWire(
        id=share.id,
        kind="path" if share.of_path else "asset",
        path=share.path,
        entry_id=share.entry_id,
        transformation=share.transformation,
        status=share.status(now).value,
        downloads=share.downloads,
        max_downloads=share.max_downloads,
        expires_at=None if share.expires_at is None else share.expires_at.astimezone(UTC),
        created_at=share.created_at.astimezone(UTC),
        revoked_at=None if share.revoked_at is None else share.revoked_at.astimezone(UTC),
        token=token,
        url=url,
    )
