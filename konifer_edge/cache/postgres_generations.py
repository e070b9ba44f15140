"""Generations carried by PostgreSQL, for nodes that share a database but no Redis.

A bump increments the slots' rows in `cache_generation` and, in the same transaction, sends
the new values on a notification channel; PostgreSQL delivers it at commit to every
listening worker of every node, which raises its node's shared-memory counters to those
values. The writer answers once its own copy came back (at most half a second), so the other
nodes' copies are on their way by then.

The table is what makes a missed notification harmless: a worker whose listening connection
dropped answers "unavailable" (its callers read through to the database) until it is
listening again, and then re-reads the whole table into a new epoch, which retires
everything its node cached while it could not hear.

A bump that cannot reach the database (the write before it usually could not either)
retires this node's caches at once and is sent again once the database answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterable, Sequence

import asyncpg
import asyncpg.pool

from konifer_edge.cache.generations import (
    GenerationReader,
    GenerationsUnavailable,
    SharedMemoryGenerations,
    slot_of,
)

log = logging.getLogger(__name__)

CHANNEL = "konifer_cache_generation"

_BUMP = """
INSERT INTO cache_generation (slot, generation)
SELECT slot, 1 FROM unnest($1::integer[]) AS slot
ON CONFLICT (slot) DO UPDATE SET generation = cache_generation.generation + 1
RETURNING slot, generation
"""
# A notification payload must stay under 8000 bytes; a pair is at most 5 + 1 + 20 + 1 characters.
_PAIRS_PER_NOTIFICATION = 250
_RECONNECT_DELAY_SECONDS = 0.5
# A connection that died without a word (a network cut) is only noticed by using it.
_PROBE_INTERVAL_SECONDS = 2.0
_PROBE_TIMEOUT_SECONDS = 5.0
_FIRST_CONNECT_WAIT_SECONDS = 10.0
_ECHO_WAIT_SECONDS = 0.5
_DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def encode_values(sender: str, values: Sequence[tuple[int, int]]) -> list[str]:
    """Payloads of "sender|slot:value,slot:value...", each small enough for one notification."""
    pairs = [f"{slot}:{value}" for slot, value in values]
    return [
        f"{sender}|" + ",".join(pairs[i : i + _PAIRS_PER_NOTIFICATION])
        for i in range(0, len(pairs), _PAIRS_PER_NOTIFICATION)
    ]


def decode_values(payload: str) -> tuple[str, list[tuple[int, int]]]:
    sender, _, pairs = payload.partition("|")
    values = []
    for pair in pairs.split(","):
        slot, _, value = pair.partition(":")
        values.append((int(slot), int(value)))
    return sender, values


class PostgresGenerations:
    def __init__(self, pool: asyncpg.Pool, dsn: str, local: SharedMemoryGenerations) -> None:
        self._pool = pool
        self._dsn = dsn
        self._local = local
        self._listening = asyncio.Event()
        self._pending: set[int] = set()
        self._resend = asyncio.Event()
        self._echoes: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._announcing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start listening; wait a little for the first connection so start-up serves from cache."""
        self._task = asyncio.create_task(self._listen_forever(), name="generation listener")
        try:
            await asyncio.wait_for(self._listening.wait(), _FIRST_CONNECT_WAIT_SECONDS)
        except TimeoutError:
            log.warning("not yet listening for cache invalidations; reading through to the database meanwhile")

    async def close(self) -> None:
        if self._announcing:
            await asyncio.wait(self._announcing, timeout=_ECHO_WAIT_SECONDS)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def current(self, path: str) -> int:
        last_known = await self._local.current(path)
        if not self._listening.is_set():
            raise GenerationsUnavailable("not listening for invalidations from other nodes", last_known)
        return last_known

    def reader(self, path: str) -> GenerationReader:
        local, listening = self._local.reader(path), self._listening

        def read() -> int | None:
            # Unknown while not listening, as `current` says by raising.
            return local() if listening.is_set() else None

        return read

    async def bump(self, paths: Iterable[str]) -> None:
        slots = sorted({slot_of(path) for path in paths})
        if not slots:
            return
        try:
            try:
                values = await self._send(slots)
            except _DATABASE_ERRORS:
                # Most often a pooled connection the database ended (a restart): the pool replaces it.
                values = await self._send(slots)
        except _DATABASE_ERRORS as error:
            self._missed(slots)
            log.warning("could not send a cache invalidation, sending it again shortly: %r", error)
            return
        except BaseException:
            self._missed(slots)
            raise
        self._local.raise_to(values)

    async def announce(self, paths: Iterable[str]) -> None:
        """This node's workers see the bump at once; the table and the other nodes a moment later.

        Until the table's value comes back, this node's counter may stand one ahead of it: a write
        another node makes meanwhile then reaches here with a value already passed, and is seen
        when this bump's own value arrives, milliseconds later.
        """
        paths = list(paths)
        await self._local.bump(paths)
        task = asyncio.create_task(self.bump(paths), name="generation announcement")
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    def _missed(self, slots: Iterable[int]) -> None:
        self._pending.update(slots)
        self._resend.set()
        # Nobody else heard of this write yet; at least this node stops serving what it replaced.
        self._local.retire_all()

    async def _send(self, slots: list[int]) -> list[tuple[int, int]]:
        sender = secrets.token_hex(8)
        echo = asyncio.get_running_loop().create_future()
        self._echoes[sender] = echo
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                rows = await connection.fetch(_BUMP, slots)
                values = [(row["slot"], row["generation"]) for row in rows]
                for payload in encode_values(sender, values):
                    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            if self._listening.is_set():
                # PostgreSQL signals every listener at commit, and each sends the notification when
                # it next can. Answering the write only once this worker's own copy arrived means the
                # other nodes' copies are on their way too: a client that reads on another node right
                # after the write's answer finds it there, short of an overloaded machine.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(echo), _ECHO_WAIT_SECONDS)
        finally:
            del self._echoes[sender]
        return values

    async def _send_pending(self) -> None:
        if not self._pending:
            return
        slots = sorted(self._pending)
        self._pending.difference_update(slots)
        try:
            self._local.raise_to(await self._send(slots))
        except BaseException:
            self._pending.update(slots)
            raise

    def _on_notification(
        self,
        _connection: asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
        _pid: int,
        _channel: str,
        payload: object,
    ) -> None:
        try:
            sender, values = decode_values(str(payload))
        except ValueError:
            log.warning("ignoring a malformed cache invalidation: %r", str(payload)[:100])
            return
        self._local.raise_to(values)
        echo = self._echoes.get(sender)
        if echo is not None and not echo.done():
            echo.set_result(None)

    async def _listen_forever(self) -> None:
        said = False  # one warning per outage, not one per attempt
        while True:
            try:
                await self._listen_once()
                said = False
            except _DATABASE_ERRORS as error:
                if not said:
                    log.warning("cannot listen for cache invalidations, reading through until it can: %r", error)
                    said = True
            finally:
                self._listening.clear()
            await asyncio.sleep(_RECONNECT_DELAY_SECONDS)

    async def _listen_once(self) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=_PROBE_TIMEOUT_SECONDS)
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(CHANNEL, self._on_notification)
            # Listening first, then reading the table: a bump committed in between is in one or the other.
            await self._send_pending()
            rows = await connection.fetch("SELECT slot, generation FROM cache_generation")
            self._local.resync((row["slot"], row["generation"]) for row in rows)
            self._listening.set()
            if lost.is_set():
                return
            log.info("listening for cache invalidations from other nodes")
            while not lost.is_set():
                self._resend.clear()
                waits = {asyncio.ensure_future(lost.wait()), asyncio.ensure_future(self._resend.wait())}
                try:
                    done, _ = await asyncio.wait(waits, timeout=_PROBE_INTERVAL_SECONDS)
                finally:
                    for waiting in waits:
                        waiting.cancel()
                if lost.is_set():
                    break
                if not done:
                    await asyncio.wait_for(connection.execute("SELECT 1"), _PROBE_TIMEOUT_SECONDS)
                await self._send_pending()
            log.warning("the cache invalidation channel closed, reading through until it is back")
        finally:
            self._listening.clear()
            connection.terminate()
