"""One computation per key at a time in this process; the others wait for its result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Return the work's result and whether this caller was the one that did it."""
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running), False
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await work()
        except BaseException as error:
            future.set_exception(error)
            # Waiters get the error; nobody else retrieves it, so mark it seen.
            future.exception()
            raise
        else:
            future.set_result(result)
            return result, True
        finally:
            del self._running[key]
