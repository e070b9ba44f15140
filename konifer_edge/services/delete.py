"""Deleting assets: rows at once in one transaction, objects after commit through the reaper."""

from __future__ import annotations

from konifer_edge.domain.selectors import DeleteSelector
from konifer_edge.services.runtime import Runtime


async def delete_assets(runtime: Runtime, path: str, selector: DeleteSelector, labels: dict[str, str]) -> int:
    queued = await runtime.repository.delete(path, selector, labels)
    if queued:
        runtime.reaper.wake()
    return len(queued)
