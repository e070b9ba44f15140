"""Resolving a fetch: which assets a selector names, and which stored variant answers it.

The HTTP layer turns the result into an answer; nothing here knows about headers.
"""

from __future__ import annotations

from konifer_edge.domain.errors import NotFound
from konifer_edge.domain.models import Asset
from konifer_edge.domain.selectors import FetchSelector
from konifer_edge.services.runtime import Runtime


async def resolve_assets(runtime: Runtime, path: str, selector: FetchSelector, labels: dict[str, str]) -> list[Asset]:
    """The assets a selector names, newest first. One-asset selectors that find nothing are 404."""
    if selector.entry_id is not None:
        asset = await runtime.repository.find_entry(path, selector.entry_id)
        if asset is None or not _has_labels(asset, labels):
            raise NotFound(f"No asset with entry id {selector.entry_id} at {path}", reason="asset_not_found")
        return [asset]
    assets = await runtime.repository.find_newest(path, selector.order, selector.limit, labels)
    if not assets and not selector.many:
        raise NotFound(f"No asset at {path} matches the request", reason="asset_not_found")
    return assets


def _has_labels(asset: Asset, labels: dict[str, str]) -> bool:
    return all(asset.labels.get(key) == value for key, value in labels.items())
