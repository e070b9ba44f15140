"""Browsing what is stored: pages of assets, the path tree, and what listing accepts."""

from __future__ import annotations

from typing import Protocol

import msgspec

from konifer_edge.domain.errors import NotFound
from konifer_edge.domain.listing import ChildrenQuery, ListingCursor, ListingQuery
from konifer_edge.domain.models import Asset
from konifer_edge.services.ports import AssetListing
from konifer_edge.storage.repository import ChildPath

MAX_LABEL_KEYS = 200


class ListingParts(Protocol):
    @property
    def repository(self) -> AssetListing: ...


class AssetPage(msgspec.Struct, frozen=True):
    assets: list[Asset]
    following: ListingCursor | None
    total: int | None


class PathChildren(msgspec.Struct, frozen=True):
    assets_here: int
    children: list[ChildPath]


async def list_assets(parts: ListingParts, query: ListingQuery) -> AssetPage:
    assets, following = await parts.repository.list_page(query)
    total = None
    if query.include_total:
        total = await parts.repository.count(query.path, query.recursive, query.labels)
    return AssetPage(assets=assets, following=following, total=total)


async def browse_paths(parts: ListingParts, query: ChildrenQuery) -> PathChildren:
    here, children = await parts.repository.child_paths(query)
    return PathChildren(assets_here=here, children=children)


async def label_keys(parts: ListingParts, path: str | None) -> list[str]:
    if path is None:
        return []
    return await parts.repository.label_keys(path, MAX_LABEL_KEYS)


async def listed_entries(parts: ListingParts, requested: list[tuple[str, int]]) -> list[Asset]:
    """The assets at these (path, entry id) pairs, in the order listed; 404 naming the first one missing."""
    found = {(asset.path, asset.entry_id): asset for asset in await parts.repository.find_entries(requested)}
    missing = [pair for pair in requested if pair not in found]
    if missing:
        path, entry_id = missing[0]
        raise NotFound(f"No entry {entry_id} at {path} ({len(missing)} of the listed entries are missing)")
    return [found[pair] for pair in requested]
