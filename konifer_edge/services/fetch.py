"""Resolving a fetch: which assets a selector names, and which stored variant answers it.

The HTTP layer turns the result into an answer; nothing here knows about headers.
"""

from __future__ import annotations

from konifer_edge.domain.errors import NotFound
from konifer_edge.domain.models import Asset
from konifer_edge.domain.selectors import FetchSelector
from konifer_edge.services.runtime import Runtime


async def resolve_assets(
    runtime: Runtime, path: str, selector: FetchSelector, labels: dict[str, str]
) -> tuple[list[Asset], str, int | None]:
    """The assets a selector names, newest first, which cache tier answered, and the path's generation.

    One-asset selectors that find nothing are 404.
    """

    async def load() -> list[Asset]:
        if selector.entry_id is not None:
            asset = await runtime.repository.find_entry(path, selector.entry_id)
            return [] if asset is None or not _has_labels(asset, labels) else [asset]
        return await runtime.repository.find_newest(path, selector.order, selector.limit, labels)

    selector_key = f"{selector.entry_id}|{selector.order.value}|{selector.limit}|{sorted(labels.items())}"
    assets, outcome, generation = await runtime.resolutions.assets(path, selector_key, load)
    if not assets and not selector.many:
        if selector.entry_id is not None:
            raise NotFound(f"No asset with entry id {selector.entry_id} at {path}", reason="asset_not_found")
        raise NotFound(f"No asset at {path} matches the request", reason="asset_not_found")
    return assets, outcome, generation


def _has_labels(asset: Asset, labels: dict[str, str]) -> bool:
    return all(asset.labels.get(key) == value for key, value in labels.items())


async def raise_if_deleted(runtime: Runtime, assets: list[Asset]) -> None:
    """NotFound if one of these resolved assets has been deleted since (asked of the database, past every cache)."""
    for asset in assets:
        if await runtime.repository.find_entry(asset.path, asset.entry_id) is None:
            raise NotFound(f"The entry {asset.entry_id} at {asset.path} was deleted", reason="asset_not_found")
