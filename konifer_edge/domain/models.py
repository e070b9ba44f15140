"""The asset and its variants as the service knows them, independent of wire and storage."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import msgspec


class AssetSource(enum.Enum):
    UPLOAD = "upload"
    URL = "url"
    ARN = "arn"
    """An S3 object named by its ARN; ``source_url`` holds the ARN."""


class Attributes(msgspec.Struct, frozen=True):
    width: int
    height: int
    format: str
    page_count: int = 1
    loop: int = 0
    color_space: str | None = None
    """Konifer's name for the colour space (`srgb`, `p3`, `cymk`...); None when not recorded."""
    orientation: int | None = None
    """The EXIF orientation (1..8) the bytes carry; None when not recorded."""


class Lqip(msgspec.Struct, frozen=True, omit_defaults=True):
    blurhash: str | None = None
    thumbhash: str | None = None


class Variant(msgspec.Struct, frozen=True):
    """One stored rendition of an asset. The original is the variant with an empty transformation key."""

    id: uuid.UUID
    asset_id: uuid.UUID
    transformation_key: str
    bucket: str
    store_key: str
    attributes: Attributes
    content_type: str
    size: int
    content_hash: str
    lqip: Lqip = Lqip()
    transformation: dict[str, object] | None = None

    @property
    def is_original(self) -> bool:
        return self.transformation_key == ""


class Asset(msgspec.Struct, frozen=True):
    id: uuid.UUID
    path: str
    entry_id: int
    alt: str | None
    labels: dict[str, str]
    tags: list[str]
    source: AssetSource
    source_url: str | None
    created_at: datetime
    modified_at: datetime
    variants: tuple[Variant, ...] = ()

    @property
    def original(self) -> Variant:
        for variant in self.variants:
            if variant.is_original:
                return variant
        raise LookupError(f"asset {self.path}#{self.entry_id} has no original variant")


class AssetMetadataInput(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """What a client may say about an asset when storing or updating it."""

    alt: str | None = None
    labels: dict[str, str] = {}
    tags: list[str] = []
