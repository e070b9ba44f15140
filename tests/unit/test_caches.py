import asyncio
from pathlib import Path

from konifer_edge.cache.bodies import SmallBodyCache
from konifer_edge.cache.generations import SharedMemoryGenerations, slot_of
from konifer_edge.cache.postgres_generations import decode_values, encode_values
from konifer_edge.cache.resolution import LruCache
from konifer_edge.cache.shared import NodeLocks
from konifer_edge.services.background import BackgroundTasks


def test_body_cache_keeps_within_its_byte_budget() -> None:
    cache = SmallBodyCache(budget_bytes=1000, max_body_bytes=400)
    for index in range(10):
        cache.put(f"k{index}", bytes(300))
        assert cache.used_bytes <= 1000
    assert cache.get("k9") is not None
    assert cache.get("k0") is None  # evicted first
    cache.put("big", bytes(401))
    assert cache.get("big") is None  # over the per-body limit: never kept


def test_body_cache_evicts_least_recently_used() -> None:
    cache = SmallBodyCache(budget_bytes=600, max_body_bytes=300)
    cache.put("a", bytes(300))
    cache.put("b", bytes(300))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", bytes(300))
    assert cache.get("b") is None
    assert cache.get("a") is not None


def test_lru_is_bounded_and_expires() -> None:
    cache = LruCache(max_entries=2)
    cache.put("a", 1, ttl=60)
    cache.put("b", 2, ttl=60)
    cache.put("c", 3, ttl=60)
    assert len(cache) == 2
    assert cache.get("a") is None
    cache.put("old", 4, ttl=-1)
    assert cache.get("old") is None


def test_generations_are_shared_between_mappings(tmp_path: Path) -> None:
    async def run() -> None:
        first = SharedMemoryGenerations(tmp_path / "gen.bin")
        second = SharedMemoryGenerations(tmp_path / "gen.bin")  # another worker maps the same file
        assert await second.current("/a") == 0
        await first.bump(["/a"])
        assert await second.current("/a") == 1
        assert await second.current("/b") in (0, 1)  # only a slot collision could move it

    asyncio.run(run())


class TestSharedMemoryGenerationsFedByAnotherNode:
    async def test_raise_to_moves_up_only_and_resync_retires_everything(self, tmp_path: Path) -> None:
        generations = SharedMemoryGenerations(tmp_path / "gen.bin")
        worker = SharedMemoryGenerations(tmp_path / "gen.bin")
        slot = slot_of("/a")
        start = await generations.current("/a")

        generations.raise_to([(slot, 5)])
        raised = await worker.current("/a")
        assert raised != start
        generations.raise_to([(slot, 3)])  # an older value (a late or repeated notification)
        assert await worker.current("/a") == raised

        other = await worker.current("/b")
        generations.resync([(slot, 5)])  # same value for /a, but a new epoch
        assert await worker.current("/a") not in (start, raised)
        assert await worker.current("/b") != other

        before = await worker.current("/b")
        generations.retire_all()
        assert await worker.current("/b") != before

    async def test_a_file_of_the_older_size_is_extended(self, tmp_path: Path) -> None:
        file = tmp_path / "gen.bin"
        file.write_bytes(bytes(8 * (1 << 16)))
        generations = SharedMemoryGenerations(file)
        await generations.bump(["/a"])
        assert await generations.current("/a") == 1


def test_invalidation_payloads_stay_under_the_notification_limit_and_read_back() -> None:
    values = [(slot, (1 << 63) - 1 - slot) for slot in range(0, 65536, 100)]  # the widest numbers
    payloads = encode_values("0123456789abcdef", values)
    assert len(payloads) > 1
    assert all(len(payload.encode()) < 8000 for payload in payloads)
    decoded = [decode_values(payload) for payload in payloads]
    assert {sender for sender, _ in decoded} == {"0123456789abcdef"}
    assert [value for _, part in decoded for value in part] == values


def test_node_locks_exclude_each_other_across_openers_and_release(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Two holders stand for two worker processes: each lock is its own open file.
        one, other = NodeLocks(tmp_path), NodeLocks(tmp_path)
        token = await one.try_lock("render:a", 30)
        assert token is not None
        assert await other.try_lock("render:a", 30) is None
        assert await other.try_lock("render:b", 30) is not None
        await one.unlock("render:a", token)
        assert await other.try_lock("render:a", 30) is not None
        await one.close()
        await other.close()

    asyncio.run(scenario())


def test_finishing_work_ends_before_shutdown_cancels_it() -> None:
    async def scenario() -> list[str]:
        done: list[str] = []
        tasks = BackgroundTasks()

        async def bookkeeping() -> None:
            await asyncio.sleep(0.01)
            done.append("finished")

        async def forever() -> None:
            await asyncio.Event().wait()

        tasks.spawn(bookkeeping(), finish=True)
        tasks.spawn(forever())
        await tasks.stop()
        return done

    assert asyncio.run(scenario()) == ["finished"]
