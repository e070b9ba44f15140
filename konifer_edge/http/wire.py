"""JSON shapes on the wire, with Konifer's field names. Encoded once with msgspec."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from litestar.params import KwargDefinition

from konifer_edge.config.model import WireSpelling
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
    color_space: str
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
    external_source_address: str | None = None
    """Konifer's current name for the URL or ARN an asset was fetched from; ``sourceUrl`` is kept."""
    source_url: str | None = None


class AssetEntriesWire(msgspec.Struct):
    """`/-/entries`: the newest assets' metadata, wrapped (Konifer's AssetEntriesResponse)."""

    entries: list[AssetMetadataWire]


class AssetLinkWire(msgspec.Struct, rename="camel", omit_defaults=True):
    """A `link` answer. `attributes` are the selected variant's, in the same shape (and with the same
    fields, `colorSpace` included where variants carry it) as in metadata."""

    url: str
    lqip: LqipWire
    attributes: AttributesWire
    alt: str | None = None
    expires_at: LocalDateTime | None = None
    """Only for presigned URLs: when the URL stops working."""


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
        # rows stored before colour spaces were recorded
        color_space=attributes.color_space or UNKNOWN_COLOUR_SPACE,
        page_count=attributes.page_count,
        loop=attributes.loop,
    )


UNKNOWN_COLOUR_SPACE = "unknown"
# Konifer 0.2's spellings (compat.wire = "v0.2"), from the current ones.
_V02_ROTATE = {"0": "zero", "90": "ninety", "180": "one_hundred_eighty", "270": "two_hundred_seventy"}
_V02_FLIP = {"": "none"}
_V02_FILTER = {"": "none", "grayscale": "greyscale"}
# Spellings rows carried before the current ones were written.
_OLD_FLIP = {"none": ""}
_OLD_FILTER = {"none": "", "greyscale": "grayscale"}
_LOSSLESS_QUALITY = 100


def transformation_wire(variant: Variant, spelling: WireSpelling = "current") -> dict[str, object]:
    """Konifer's `transformation` object, from the stored one in whichever spelling it was written.

    Rows written before `colorSpace` and `metadata` existed get them from the variant's
    canonical key, which always named a `strip` or `cs` that was asked for.
    """
    stored = dict(variant.transformation or {})
    asked = dict(part.split("=", 1) for part in variant.transformation_key.split(";") if "=" in part)
    flip = _OLD_FLIP.get(str(stored.get("flip", "")), str(stored.get("flip", "")))
    filter_ = _OLD_FILTER.get(str(stored.get("filter", "")), str(stored.get("filter", "")))
    rotate = str(stored.get("rotate", "0"))
    blur = stored.get("blur", 0)
    quality = stored.get("quality")
    metadata = stored.get("metadata") or {"strip": sorted(filter(None, asked.get("strip", "").split(",")))}
    colour_space = stored.get("colorSpace") or asked.get("cs") or variant.attributes.color_space
    if spelling == "v0.2":
        rotate = _V02_ROTATE.get(rotate, rotate)
        flip = _V02_FLIP.get(flip, flip)
        filter_ = _V02_FILTER.get(filter_, filter_)
    return {
        "width": stored.get("width"),
        "height": stored.get("height"),
        "fit": stored.get("fit"),
        "gravity": stored.get("gravity"),
        "format": stored.get("format"),
        "rotate": rotate,
        "flip": flip,
        "filter": filter_,
        "blur": math.floor(blur + 0.5) if isinstance(blur, int | float) else 0,
        "quality": _LOSSLESS_QUALITY if quality is None else quality,
        "padding": stored.get("padding", {"amount": 0, "color": []}),
        "metadata": metadata,
        "colorSpace": colour_space or UNKNOWN_COLOUR_SPACE,
    }


def variant_wire(variant: Variant, spelling: WireSpelling = "current") -> VariantWire:
    return VariantWire(
        is_original_variant=variant.is_original,
        store_bucket=variant.bucket,
        store_key=variant.store_key,
        attributes=attributes_wire(variant.attributes),
        lqip=lqip_wire(variant.lqip),
        transformation=None if variant.is_original else transformation_wire(variant, spelling),
    )


def local_time(moment: datetime) -> datetime:
    """Konifer writes ISO local date-times without a zone; ours are UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def metadata_wire(asset: Asset, spelling: WireSpelling = "current") -> AssetMetadataWire:
    return AssetMetadataWire(
        class_="image",
        alt=asset.alt,
        entry_id=asset.entry_id,
        labels=asset.labels,
        tags=asset.tags,
        source=asset.source.value,
        external_source_address=asset.source_url,
        source_url=asset.source_url,
        variants=[variant_wire(v, spelling) for v in asset.variants],
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
