"""A bounded pool of threads for model inference, apart from renders and upload decodes.

ONNX Runtime releases the GIL while it computes, so threads run inferences in parallel without
blocking the event loop. Like the render pool (imaging/pool.py), admission is bounded: past
``workers + queue-size`` waiting inferences, an upload is answered 503 with ``Retry-After`` rather
than queued without limit. A pool of its own keeps a burst of rule-checked uploads from starving
renders, and the other way round.
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

POOL_NAME = "rules"


class InferencePool:
    def __init__(self, workers: int, queue_size: int, timeout_seconds: float) -> None:
        self.workers = max(1, workers)
        self._timeout = timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="inference")
        capacity = self.workers + max(0, queue_size)
        self._admitted = asyncio.BoundedSemaphore(capacity)
        metrics.IMAGING_CAPACITY.labels(POOL_NAME).set(capacity)
        metrics.IMAGING_IN_USE.labels(POOL_NAME)

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one inference for a request; 503 when the pool is full or the inference is too slow."""
        if self._admitted.locked():
            raise ServiceUnavailable("Upload rules are busy; retry shortly", reason="rule_queue_full")
        await self._admitted.acquire()
        metrics.IMAGING_IN_USE.labels(POOL_NAME).inc()
        work = asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(function, *args, **kwargs))
        # An inference cannot be interrupted: its slot stays taken until the thread is done.
        work.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(work), self._timeout)
        except TimeoutError:
            raise ServiceUnavailable(
                f"Upload rules took longer than {self._timeout:g}s; retry shortly", reason="rule_timeout"
            ) from None

    async def run_unbounded(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Start-up work (loading, warming the prompt cache): no admission limit, no timeout."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    def _release(self, _: object) -> None:
        metrics.IMAGING_IN_USE.labels(POOL_NAME).dec()
        self._admitted.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
