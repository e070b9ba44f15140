"""Replacing an asset's metadata. Content never changes; alt, labels and tags do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from konifer_edge.domain.errors import NotFound
from konifer_edge.domain.metadata_rules import validate_metadata
from konifer_edge.domain.models import Asset, AssetMetadataInput
from konifer_edge.services import cdn
from konifer_edge.services.ports import CdnPurge, Invalidation, MetadataRecords


class UpdateParts(Protocol):
    @property
    def repository(self) -> MetadataRecords: ...
    @property
    def resolutions(self) -> Invalidation: ...
    @property
    def purge(self) -> CdnPurge: ...


async def update_asset(parts: UpdateParts, path: str, entry_id: int, metadata: AssetMetadataInput) -> Asset:
    validate_metadata(metadata)
    asset = await parts.repository.update_metadata(
        path, entry_id, metadata.alt, metadata.labels, metadata.tags, datetime.now(UTC)
    )
    if asset is None:
        raise NotFound(f"No asset with entry id {entry_id} at {path}", reason="asset_not_found")
    await parts.resolutions.invalidate([path])
    parts.purge.purge(cdn.tags_for(path, entry_id), "update")
    return asset
