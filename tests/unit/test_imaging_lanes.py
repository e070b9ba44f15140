"""`variant-generation.synchronous-priority`: how the render pool shares workers between its lanes."""

from __future__ import annotations

import asyncio
import threading

import pytest

from konifer_edge.domain.errors import ServiceUnavailable
from konifer_edge.imaging.pool import EAGER, SYNCHRONOUS, ImagingPool, Lane


class Recorder:
    """Work items that append their name when they run; the first one holds the only worker."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.gate = threading.Event()

    def hold(self) -> str:
        self.gate.wait(timeout=30)
        return "held"

    def record(self, name: str) -> str:
        self.order.append(name)
        return name


async def queued_behind_a_held_worker(
    pool: ImagingPool, recorder: Recorder, items: list[tuple[Lane, str, str | None]]
) -> list[asyncio.Task[str]]:
    """Start `hold` on the pool's one worker, then queue `items` in order while it is busy."""
    held = asyncio.create_task(pool.run(recorder.hold))
    await asyncio.sleep(0)
    tasks = [held]
    for lane, name, key in items:
        tasks.append(asyncio.create_task(pool.run_in(lane, key, recorder.record, name)))
        await asyncio.sleep(0)
    return tasks


async def run_all(recorder: Recorder, tasks: list[asyncio.Task[str]]) -> None:
    recorder.gate.set()
    await asyncio.gather(*tasks)


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        (80, ["s0", "s1", "s2", "s3", "e0", "s4", "s5", "s6", "s7", "e1", "e2", "e3", "e4", "e5", "e6", "e7"]),
        (50, ["s0", "e0", "s1", "e1", "s2", "e2", "s3", "e3", "s4", "e4", "s5", "e5", "s6", "e6", "s7", "e7"]),
    ],
)
async def test_while_both_lanes_wait_the_synchronous_lane_gets_its_share(priority: int, expected: list[str]) -> None:
    pool = ImagingPool(workers=1, queue_size=100, synchronous_priority=priority)
    recorder = Recorder()
    items: list[tuple[Lane, str, str | None]] = [(EAGER, f"e{i}", None) for i in range(8)]
    items += [(SYNCHRONOUS, f"s{i}", None) for i in range(8)]
    try:
        await run_all(recorder, await queued_behind_a_held_worker(pool, recorder, items))
    finally:
        pool.shutdown()
    assert recorder.order == expected


async def test_a_lane_alone_gets_every_worker_in_order() -> None:
    pool = ImagingPool(workers=1, queue_size=100, synchronous_priority=99)
    recorder = Recorder()
    items: list[tuple[Lane, str, str | None]] = [(EAGER, f"e{i}", None) for i in range(4)]
    try:
        await run_all(recorder, await queued_behind_a_held_worker(pool, recorder, items))
    finally:
        pool.shutdown()
    assert recorder.order == ["e0", "e1", "e2", "e3"]


async def test_a_needed_eager_render_moves_to_the_synchronous_lane() -> None:
    pool = ImagingPool(workers=1, queue_size=100, synchronous_priority=50)
    recorder = Recorder()
    items: list[tuple[Lane, str, str | None]] = [(EAGER, f"e{i}", f"k{i}") for i in range(4)]
    items += [(SYNCHRONOUS, "s0", None)]
    try:
        with pool.eager_flight("k3"):
            tasks = await queued_behind_a_held_worker(pool, recorder, items)
            pool.promote("k3")  # a request now waits for k3: it is rendered as on-demand work
            await run_all(recorder, tasks)
    finally:
        pool.shutdown()
    # k3 left the eager lane (where it was last) and queued behind s0 in the synchronous lane.
    assert recorder.order == ["s0", "e0", "e3", "e1", "e2"]


async def test_an_eager_render_promoted_before_it_queues_enters_the_synchronous_lane() -> None:
    pool = ImagingPool(workers=1, queue_size=100, synchronous_priority=1)
    recorder = Recorder()
    try:
        with pool.eager_flight("late"):
            pool.promote("late")
            items: list[tuple[Lane, str, str | None]] = [(EAGER, "e0", None), (EAGER, "late", "late")]
            items += [(SYNCHRONOUS, "s0", None)]
            await run_all(recorder, await queued_behind_a_held_worker(pool, recorder, items))
    finally:
        pool.shutdown()
    # With priority 1 the eager lane wins the first pick, then "late" runs as synchronous work.
    assert recorder.order == ["e0", "late", "s0"] or recorder.order == ["late", "e0", "s0"]
    assert recorder.order.index("late") < recorder.order.index("s0")


async def test_promoting_a_key_without_an_eager_render_changes_nothing() -> None:
    pool = ImagingPool(workers=1, queue_size=10)
    try:
        pool.promote("nothing")
        assert await pool.run_in(EAGER, "nothing", lambda: "ran") == "ran"
    finally:
        pool.shutdown()


async def test_a_waiter_that_times_out_frees_its_place() -> None:
    pool = ImagingPool(workers=1, queue_size=10, timeout_seconds=0.2)
    recorder = Recorder()
    try:
        held = asyncio.create_task(pool.run(recorder.hold))
        await asyncio.sleep(0)
        with pytest.raises(ServiceUnavailable):
            await pool.run_in(EAGER, None, recorder.record, "late")
        recorder.gate.set()
        with pytest.raises(ServiceUnavailable):
            await held  # it ran past the timeout too; the thread still finished
        assert await pool.run(recorder.record, "after") == "after"
    finally:
        recorder.gate.set()
        pool.shutdown()
    assert recorder.order == ["after"]
