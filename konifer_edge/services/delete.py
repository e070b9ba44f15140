"""Deleting assets: rows at once in one transaction, objects after commit through the reaper."""

from __future__ import annotations

from konifer_edge.domain.selectors import DeleteSelector
from konifer_edge.services import cdn
from konifer_edge.services.runtime import Runtime


async def delete_assets(runtime: Runtime, path: str, selector: DeleteSelector, labels: dict[str, str]) -> int:
    deleted = await runtime.repository.delete(path, selector, labels)
    if not deleted.entries:
        return 0
    paths = {entry_path for entry_path, _ in deleted.entries}
    # Before answering: no node may serve what this delete removed once it returns.
    await runtime.resolutions.invalidate(paths)
    runtime.reaper.wake()
    tags = [tag for entry_path, entry_id in deleted.entries for tag in cdn.tags_for(entry_path, entry_id)]
    runtime.purge.purge(tags, "delete")
    return len(deleted.entries)
