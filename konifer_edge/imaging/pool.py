"""A bounded pool of threads for renders, so no decode or encode ever runs on the event loop.

libvips releases the GIL while it computes, so threads give real parallelism. The
queue is bounded: past it, callers are told to come back later instead of piling up
memory behind a flood of renders.

Work waits in two lanes, as in Konifer: synchronous work (a request is waiting for it) and eager
renders (background work after a store). While both lanes wait, `synchronous-priority` percent of
the freed workers go to the synchronous lane, spread evenly (80 gives four synchronous picks, then
one eager); while only one lane waits, it gets every worker. A request that needs a variant whose
eager render is still waiting moves that render into the synchronous lane: it is rendered on
demand, and the eager task is gone (spec 06 section 8).

Renders stay in threads, in the server worker: they read stored originals, every byte of which a
decode process (imaging/decode_pool.py) has already decoded once, and a process hop on the hot
path of a first fetch would cost every render to guard against a crash those bytes did not cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Literal, ParamSpec, TypeVar

from konifer_edge.domain.errors import ServiceUnavailable
from konifer_edge.observability import metrics

P = ParamSpec("P")
T = TypeVar("T")

Lane = Literal["synchronous", "eager"]
SYNCHRONOUS: Final[Lane] = "synchronous"
EAGER: Final[Lane] = "eager"


@dataclass(eq=False)
class _Waiter:
    lane: Lane
    key: str | None
    slot: asyncio.Future[None]


class ImagingPool:
    def __init__(
        self, workers: int, queue_size: int, timeout_seconds: float = 30.0, synchronous_priority: int = 80
    ) -> None:
        self._timeout = timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vips")
        self._admitted = asyncio.BoundedSemaphore(max(1, workers) + max(0, queue_size))
        self.workers = max(1, workers)
        self._priority = synchronous_priority
        self._idle = self.workers
        self._waiting: dict[Lane, deque[_Waiter]] = {SYNCHRONOUS: deque(), EAGER: deque()}
        self._picks: dict[Lane, int] = {SYNCHRONOUS: 0, EAGER: 0}
        self._eager_flights: dict[str, int] = {}
        self._urgent: set[str] = set()
        metrics.IMAGING_CAPACITY.labels("render").set(max(1, workers) + max(0, queue_size))

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Synchronous work: a request waits for it."""
        return await self.run_in(SYNCHRONOUS, None, function, *args, **kwargs)

    async def run_in(
        self, lane: Lane, key: str | None, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run in ``lane``; ``key`` names an eager render so that `promote` can find it."""
        if self._admitted.locked():
            raise ServiceUnavailable("The image pipeline is busy; retry shortly", reason="render_queue_full")
        await self._admitted.acquire()
        started = False
        try:
            async with asyncio.timeout(self._timeout):
                await self._take_worker(lane, key)
                started = True
                metrics.IMAGING_IN_USE.labels("render").inc()
                loop = asyncio.get_running_loop()
                work = loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))
                # A libvips call cannot be interrupted: the worker stays taken until the thread is
                # done, even when the request has given up on it, so a flood cannot outgrow the pool.
                work.add_done_callback(self._release)
                return await asyncio.shield(work)
        except TimeoutError:
            raise ServiceUnavailable(
                f"The image took longer than {self._timeout:g}s to process; retry shortly", reason="render_timeout"
            ) from None
        finally:
            if not started:
                self._admitted.release()

    @contextlib.contextmanager
    def eager_flight(self, key: str) -> Iterator[None]:
        """Marks an eager render of ``key`` as under way, for the length of its attempt."""
        self._eager_flights[key] = self._eager_flights.get(key, 0) + 1
        try:
            yield
        finally:
            remaining = self._eager_flights.pop(key) - 1
            if remaining:
                self._eager_flights[key] = remaining
            else:
                self._urgent.discard(key)

    def promote(self, key: str) -> None:
        """A request needs ``key`` now: its eager render, waiting or about to, joins the synchronous lane."""
        if key not in self._eager_flights:
            return
        self._urgent.add(key)
        eager = self._waiting[EAGER]
        for waiter in [w for w in eager if w.key == key]:
            eager.remove(waiter)
            waiter.lane = SYNCHRONOUS
            self._waiting[SYNCHRONOUS].append(waiter)

    async def _take_worker(self, lane: Lane, key: str | None) -> None:
        if lane == EAGER and key in self._urgent:
            lane = SYNCHRONOUS
        if self._idle > 0 and not self._has_waiters():
            self._idle -= 1
            return
        waiter = _Waiter(lane=lane, key=key, slot=asyncio.get_running_loop().create_future())
        self._waiting[lane].append(waiter)
        try:
            await waiter.slot
        except BaseException:
            if waiter.slot.done() and not waiter.slot.cancelled():
                self._hand_on()  # the worker reached us just as we gave up: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiting[waiter.lane].remove(waiter)
            raise

    def _has_waiters(self) -> bool:
        return any(self._waiting.values())

    def _next_lane(self) -> Lane | None:
        synchronous, eager = self._waiting[SYNCHRONOUS], self._waiting[EAGER]
        if not (synchronous and eager):
            self._picks = {SYNCHRONOUS: 0, EAGER: 0}
            return SYNCHRONOUS if synchronous else EAGER if eager else None
        # Even spreading: synchronous while its share of the picks so far is below the priority.
        picked = self._picks[SYNCHRONOUS] + self._picks[EAGER]
        lane = SYNCHRONOUS if self._picks[SYNCHRONOUS] * 100 < self._priority * (picked + 1) else EAGER
        self._picks[lane] += 1
        return lane

    def _hand_on(self) -> None:
        """A worker is free: give it to the next waiter by lane priority, else keep it idle."""
        lane = self._next_lane()
        if lane is None:
            self._idle += 1
            return
        self._waiting[lane].popleft().slot.set_result(None)

    def _release(self, _: object) -> None:
        metrics.IMAGING_IN_USE.labels("render").dec()
        self._admitted.release()
        self._hand_on()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
