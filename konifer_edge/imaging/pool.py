"""A bounded pool for libvips work, so no decode or encode ever runs on the event loop.

libvips releases the GIL while it computes, so threads give real parallelism. The
queue is bounded: past it, callers are told to come back later instead of piling up
memory behind a flood of renders.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from konifer_edge.domain.errors import ServiceUnavailable
from konifer_edge.observability import metrics

P = ParamSpec("P")
T = TypeVar("T")


class ImagingPool:
    def __init__(self, workers: int, queue_size: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vips")
        self._admitted = asyncio.BoundedSemaphore(max(1, workers) + max(0, queue_size))
        self.workers = max(1, workers)
        metrics.IMAGING_CAPACITY.set(max(1, workers) + max(0, queue_size))

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._admitted.locked():
            raise ServiceUnavailable("The image pipeline is busy; retry shortly", reason="render_queue_full")
        async with self._admitted:
            metrics.IMAGING_IN_USE.inc()
            try:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))
            finally:
                metrics.IMAGING_IN_USE.dec()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
