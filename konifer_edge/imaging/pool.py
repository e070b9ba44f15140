"""A bounded pool of threads for renders, so no decode or encode ever runs on the event loop.

libvips releases the GIL while it computes, so threads give real parallelism. The
queue is bounded: past it, callers are told to come back later instead of piling up
memory behind a flood of renders.

Renders stay in threads, in the server worker: they read stored originals, every byte of which a
decode process (imaging/decode_pool.py) has already decoded once, and a process hop on the hot
path of a first fetch would cost every render to guard against a crash those bytes did not cause.
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
    def __init__(self, workers: int, queue_size: int, timeout_seconds: float = 30.0) -> None:
        self._timeout = timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vips")
        self._admitted = asyncio.BoundedSemaphore(max(1, workers) + max(0, queue_size))
        self.workers = max(1, workers)
        metrics.IMAGING_CAPACITY.labels("render").set(max(1, workers) + max(0, queue_size))

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._admitted.locked():
            raise ServiceUnavailable("The image pipeline is busy; retry shortly", reason="render_queue_full")
        await self._admitted.acquire()
        metrics.IMAGING_IN_USE.labels("render").inc()
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))
        # A libvips call cannot be interrupted: the slot stays taken until the thread is done,
        # even when the request has given up on it, so a flood cannot outgrow the pool.
        work.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(work), self._timeout)
        except TimeoutError:
            raise ServiceUnavailable(
                f"The image took longer than {self._timeout:g}s to process; retry shortly", reason="render_timeout"
            ) from None

    def _release(self, _: object) -> None:
        metrics.IMAGING_IN_USE.labels("render").dec()
        self._admitted.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
