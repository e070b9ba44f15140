"""Deleting assets: rows at once in one transaction, objects after commit through the reaper."""

from __future__ import annotations

from typing import Protocol

from konifer_edge.domain.selectors import DeleteSelector
from konifer_edge.services import cdn
from konifer_edge.services.ports import AssetDeletion, CdnPurge, Invalidation, ReaperSignal


class DeleteParts(Protocol):
    @property
    def repository(self) -> AssetDeletion: ...
    @property
    def resolutions(self) -> Invalidation: ...
    @property
    def reaper(self) -> ReaperSignal: ...
    @property
    def purge(self) -> CdnPurge: ...


async def delete_assets(parts: DeleteParts, path: str, selector: DeleteSelector, labels: dict[str, str]) -> int:
    deleted = await parts.repository.delete(path, selector, labels)
    if not deleted.entries:
        return 0
    entry_paths = {entry_path for entry_path, _ in deleted.entries}
    # Before answering: no node may serve what this delete removed once it returns.
    await parts.resolutions.invalidate(entry_paths)
    parts.reaper.wake()
    tags = [tag for entry_path, entry_id in deleted.entries for tag in cdn.tags_for(entry_path, entry_id)]
    parts.purge.purge(tags, "delete")
    return len(deleted.entries)
