"""Removes the objects of deleted assets, after their rows are gone, until every one is gone.

The queue lives in PostgreSQL, written in the same transaction as the delete, so a
crash between commit and removal only delays the removal. Failures back off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from konifer_edge.services.ports import ObjectRemoval
from konifer_edge.storage.deletions import DeletionQueue

log = logging.getLogger(__name__)

_BATCH = 100
_IDLE_INTERVAL_SECONDS = 30.0


class ObjectReaper:
    def __init__(self, queue: DeletionQueue, objects: ObjectRemoval) -> None:
        self._queue = queue
        self._objects = objects
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._soonest_retry = _IDLE_INTERVAL_SECONDS

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="object-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._soonest_retry = _IDLE_INTERVAL_SECONDS
            try:
                while await self.reap_due() == _BATCH:
                    pass
            except Exception:  # the database may be down; the queue waits for it
                log.exception("object reaper pass failed")
            # A removal postponed for less than the idle interval is retried when it is due.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._soonest_retry)
            self._wake.clear()

    async def reap_due(self) -> int:
        """Remove the objects whose removal is due; return how many were attempted."""
        due = await self._queue.due(_BATCH)
        removed: list[int] = []
        for deletion in due:
            try:
                await self._objects.delete(deletion.bucket, deletion.store_key)
            except Exception as error:
                delay = await self._queue.postpone(deletion, repr(error))
                self._soonest_retry = min(self._soonest_retry, delay.total_seconds())
            else:
                removed.append(deletion.id)
        if removed:
            await self._queue.finish(removed)
        return len(due)
