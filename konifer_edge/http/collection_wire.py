"""JSON shapes of listing, path browsing, filter metadata and bundle requests (konifer-edge's own)."""

from __future__ import annotations

import msgspec

from konifer_edge.http.wire import AssetMetadataWire


class ListedAssetWire(AssetMetadataWire, kw_only=True):
    """An asset's metadata as fetch returns it, plus its path: a recursive page spans paths."""

    path: str


class AssetPageWire(msgspec.Struct, rename="camel", omit_defaults=True):
    assets: list[ListedAssetWire]
    next_cursor: str | None = None
    total: int | None = None


class ChildPathWire(msgspec.Struct, rename="camel"):
    path: str
    assets: int
    """Assets stored exactly at this path."""
    assets_below: int
    """Assets at this path or anywhere below it."""


class PathChildrenWire(msgspec.Struct, rename="camel", omit_defaults=True):
    path: str
    assets: int
    children: list[ChildPathWire]
    next_cursor: str | None = None


class FilterWire(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str
    type: str
    description: str
    values: list[str] | None = None
    default: str | None = None
    minimum: int | None = None
    maximum: int | None = None


class FilterMetadataWire(msgspec.Struct, rename="camel"):
    sort_keys: list[str]
    orders: list[str]
    parameters: list[FilterWire]
    label_filter: str
    label_keys: list[str]
    """Label keys in use at or below the requested `path` (empty without one)."""


class BundleItemWire(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    path: str
    entry_id: int


class BundleRequestWire(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    assets: list[BundleItemWire]
    transformation: dict[str, str | int | float] = {}
    """Konifer transformation parameters applied to every image, as on a fetch."""
