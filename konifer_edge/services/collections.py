"""Browsing what is stored: pages of assets, the path tree, and what listing accepts."""

from __future__ import annotations

import msgspec

from konifer_edge.domain.listing import ChildrenQuery, ListingCursor, ListingQuery
from konifer_edge.domain.models import Asset
from konifer_edge.services.runtime import Runtime
from konifer_edge.storage.repository import ChildPath

MAX_LABEL_KEYS = 200


class AssetPage(msgspec.Struct, frozen=True):
    assets: list[Asset]
    following: ListingCursor | None
    total: int | None


class PathChildren(msgspec.Struct, frozen=True):
    assets_here: int
    children: list[ChildPath]


async def list_assets(runtime: Runtime, query: ListingQuery) -> AssetPage:
    assets, following = await runtime.repository.list_page(query)
    total = None
    if query.include_total:
        total = await runtime.repository.count(query.path, query.recursive, query.labels)
    return AssetPage(assets=assets, following=following, total=total)


async def browse_paths(runtime: Runtime, query: ChildrenQuery) -> PathChildren:
    here, children = await runtime.repository.child_paths(query)
    return PathChildren(assets_here=here, children=children)


async def label_keys(runtime: Runtime, path: str | None) -> list[str]:
    if path is None:
        return []
    return await runtime.repository.label_keys(path, MAX_LABEL_KEYS)
