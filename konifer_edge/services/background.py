"""Work off the request path: tasks spawned after an answer, and jobs that run on a period.

Each worker has one set (``Runtime.upkeep``); shutdown cancels them all, except that what was
spawned with ``finish=True`` (short bookkeeping an answer left behind, such as releasing a lock)
is first given a few seconds to end. What a job does is its owner's business (see
``variant_upkeep``); this module only runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from konifer_edge.domain.models import Variant

log = logging.getLogger(__name__)

# How long shutdown waits for the bookkeeping that answers left behind before cancelling it.
FINISH_SECONDS = 5.0


class AccessTracker:
    """Remembers which variants were served, for `idle` expiry, and writes them in batches."""

    def __init__(self) -> None:
        self._seen: set[uuid.UUID] = set()

    def touch(self, variant: Variant) -> None:
        if not variant.is_original:
            self._seen.add(variant.id)

    def drain(self) -> list[uuid.UUID]:
        seen, self._seen = list(self._seen), set()
        return seen


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._finishing: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    def every(self, seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
        """Run `job` every `seconds` until stop(); a failed round is logged and the next one tries again."""
        self._loops.append(asyncio.create_task(_every(seconds, job), name=name))

    def spawn(self, work: Coroutine[Any, Any, None], *, finish: bool = False) -> None:
        """Run ``work`` off the request path; ``finish``: shutdown waits for it (a while) before cancelling."""
        tasks = self._finishing if finish else self._tasks
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def stop(self) -> None:
        if self._finishing:
            await asyncio.wait(list(self._finishing), timeout=FINISH_SECONDS)
        for task in [*self._loops, *self._tasks, *self._finishing]:
            task.cancel()
        for task in [*self._loops, *self._tasks, *self._finishing]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:  # a dependency may be down; the next round tries again
            log.exception("background variant job failed")
