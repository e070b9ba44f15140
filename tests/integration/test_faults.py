"""Dependency faults: the real PostgreSQL, Valkey and S3 servers stop and start under running servers.

The suite's session-wide services stay untouched: this module starts a PostgreSQL, a Valkey and an
S3 endpoint of its own, and two konifer-edge nodes that share them (S3 objects, one database, one
Redis). `first` reaches PostgreSQL over its own socket; `second` goes through `CommitCutter`, a relay
that can lose the answer to one COMMIT, which is what a database that goes away at the worst moment
looks like to a client.

Every test gives back whatever it took away, even when it fails, so the next one starts healthy.
Waits are bounded polls; nothing here asserts on how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from redis.exceptions import RedisError

from konifer_edge.cache.generations import RedisGenerations
from konifer_edge.storage.object_store import ObjectStoreError, S3ObjectStore
from tests.support.assets import stored, upload
from tests.support.deployment import Deployment
from tests.support.images import describe, make_image
from tests.support.services import PostgresService, S3Service, ValkeyService, free_port

# A bucket of this module's own: moto keeps every bucket in one process-wide backend, so the suite's
# `assets` bucket would mix other modules' objects into the listings these tests check.
BUCKET = "konifer-faults"
CONFIG = f"""
[paths."/**"]
object-store.bucket = "{BUCKET}"

[source.multipart]
max-bytes = 2000000

[cache]
redis-url = "{{redis_url}}"
# Every body streams from the object store: an outage of S3 cannot hide behind the body cache.
small-object-max-size = 0
"""
# Bounds on waiting for something that must happen; none is asserted on.
DEADLINE_SECONDS = 45.0
# A request must be answered within this, whatever is down (it is the client's timeout).
REQUEST_BOUND_SECONDS = 40.0
# What a request may answer while a dependency is down: success, or "retry shortly".
UNAVAILABLE = {503, 504}


def eventually(check: Callable[[], bool], what: str, deadline: float = DEADLINE_SECONDS) -> None:
    give_up = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < give_up, f"gave up waiting: {what}"
        time.sleep(0.05)


class CommitCutter:
    """A Unix-socket relay in front of PostgreSQL that, when armed, loses the answer to one COMMIT.

    The COMMIT reaches the server, which commits; the client's connection is cut before any answer,
    so the client cannot tell whether its transaction landed.
    """

    def __init__(self, upstream: Path) -> None:
        self.upstream = upstream
        self.directory = Path(tempfile.mkdtemp(prefix="kfx-"))
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.directory / upstream.name))
        self._listener.listen(64)
        self._armed = threading.Event()
        self.cuts = 0
        self._thread = threading.Thread(target=self._accept, name="commit-cutter", daemon=True)
        self._thread.start()

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.directory}"

    def arm(self) -> None:
        self._armed.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.connect(str(self.upstream))
        except OSError:
            client.close()
            server.close()
            return
        threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()
        self._pump(client, server, True)

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while chunk := source.recv(65536):
                # asyncpg commits with the simple query "COMMIT;".
                if from_client and b"COMMIT;\x00" in chunk and self._armed.is_set():
                    self._armed.clear()
                    self.cuts += 1
                    source.shutdown(socket.SHUT_RDWR)  # the client hears nothing more, ever
                    sink.sendall(chunk)  # ...but the server gets the COMMIT and commits
                    return
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


@dataclass
class Faults:
    postgres: PostgresService
    valkey: ValkeyService
    s3: S3Service
    cutter: CommitCutter
    first: Deployment
    second: Deployment

    @property
    def nodes(self) -> tuple[Deployment, Deployment]:
        return self.first, self.second

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return self.first.query(sql, *args)

    def object_keys(self) -> set[str]:
        return set(self.s3.list_keys(BUCKET))


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    postgres = PostgresService()
    valkey = ValkeyService(data_dir=tmp_path_factory.mktemp("faults-valkey"))
    s3 = S3Service()
    started: list[Callable[[], None]] = []
    try:
        postgres.start()
        started.append(postgres.close)
        valkey.start()
        started.append(valkey.close)
        s3.start()
        started.append(s3.close)
        s3.create_bucket(BUCKET)
        socket_dir = parse_qs(urlsplit(postgres.dsn).query)["host"][0]
        cutter = CommitCutter(Path(socket_dir) / ".s.PGSQL.5432")
        started.append(cutter.close)
        config = CONFIG.format(redis_url=valkey.url)
        first = Deployment(tmp_path_factory.mktemp("faults-a"), config, store="s3", postgres=postgres, s3=s3).start()
        started.append(first.stop)
        second = Deployment(
            tmp_path_factory.mktemp("faults-b"),
            config,
            store="s3",
            postgres=postgres,
            s3=s3,
            dsn=cutter.dsn_for(first.database),
        ).start()
        started.append(second.stop)
        for node in (first, second):
            node.client.timeout = httpx.Timeout(REQUEST_BOUND_SECONDS)
        yield Faults(postgres, valkey, s3, cutter, first, second)
    finally:
        for stop in reversed(started):
            with contextlib.suppress(Exception):
                stop()


@contextlib.contextmanager
def down(faults: Faults, dependency: str) -> Iterator[None]:
    """Stop one dependency for the body of the block; it is back (and answering) afterwards."""
    services: dict[str, PostgresService | ValkeyService | S3Service] = {
        "postgres": faults.postgres,
        "valkey": faults.valkey,
        "s3": faults.s3,
    }
    service = services[dependency]
    service.stop()
    try:
        yield
    finally:
        service.start()
        if dependency == "postgres":
            eventually(lambda: faults.first.client.get("/ready").status_code == 200, "ready again")


def unique(prefix: str) -> str:
    return f"/faults/{prefix}/{uuid.uuid4().hex[:10]}"


def assert_unavailable(answer: httpx.Response) -> None:
    """503 with Retry-After and the JSON error body that every failure carries."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert set(body) == {"message", "error"}, body
    assert body["error"] == "dependency_unavailable"


def png(seed: int, width: int = 40, height: int = 30) -> bytes:
    """A small PNG whose bytes differ for every seed."""
    return make_image("png", width, height, color=(seed % 256, (seed // 256) % 256, 90))


def assert_rows_have_objects(faults: Faults) -> set[str]:
    """No variant row names a missing object; return the orphan objects (no row names them)."""
    referenced = {key for (key,) in faults.query("SELECT store_key FROM variant WHERE bucket = $1", BUCKET)}
    present = faults.object_keys()
    missing = referenced - present
    assert not missing, f"{len(missing)} variant rows point at objects that are not in the store: {sorted(missing)}"
    orphans = present - referenced
    if orphans:
        # An orphan is allowed (the sweep removes it) as long as nothing refers to it.
        rows = faults.query("SELECT count(*) FROM variant WHERE store_key = ANY($1::text[])", sorted(orphans))
        assert rows == [(0,)]
    return orphans


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_down_refuses_writes_with_503_serves_cached_reads_and_recovers(faults: Faults) -> None:
    node = faults.first
    cached, changed, doomed, later = unique("pg-cached"), unique("pg-update"), unique("pg-delete"), unique("pg-new")
    image = png(1)
    entry = stored(node.client, cached, image)
    stored(node.client, changed, png(2))
    stored(node.client, doomed, png(3))
    # Fetched just before the outage: the resolutions are now in the node's memory.
    content = node.client.get(f"/assets{cached}/-/entry/0/content")
    newest = node.client.get(f"/assets{cached}/-/metadata")
    assert content.status_code == 200 and content.content == image
    assert newest.status_code == 200 and newest.json()["entryId"] == entry["entryId"]
    pid = node.server.process.pid if node.server.process else None
    rows_before = faults.query("SELECT count(*) FROM asset")
    orphans_before = assert_rows_have_objects(faults)

    with down(faults, "postgres"):
        assert_unavailable(upload(node.client, later, png(4)))
        assert_unavailable(node.client.put(f"/assets{changed}/-/entry/0", json={"alt": "during the outage"}))
        assert_unavailable(node.client.delete(f"/assets{doomed}/-/entry/0"))
        again = node.client.get(f"/assets{cached}/-/entry/0/content")
        assert again.status_code == 200, again.text
        assert again.content == image
        assert again.headers["ETag"] == content.headers["ETag"]
        newest_again = node.client.get(f"/assets{cached}/-/metadata")
        assert newest_again.status_code == 200, newest_again.text
        assert newest_again.json() == newest.json()
        # What was never resolved before cannot be: 503, not 404 or 500.
        assert_unavailable(node.client.get(f"/assets{unique('pg-unknown')}/-/metadata"))
        assert node.client.get("/health").status_code == 200

    # The same process, its pool reconnected: writes work again.
    assert node.server.process is not None and node.server.process.pid == pid and node.server.is_running()
    assert faults.query("SELECT count(*) FROM asset") == rows_before, "a refused write left a row behind"
    # One store was refused: at most its object is left over, and only if the refusal came mid-transaction.
    assert len(assert_rows_have_objects(faults) - orphans_before) <= 1
    created = stored(node.client, later, png(4))
    assert created["entryId"] == 0
    updated = node.client.put(f"/assets{changed}/-/entry/0", json={"alt": "after the outage"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["alt"] == "after the outage"
    assert node.client.delete(f"/assets{doomed}/-/entry/0").status_code == 204
    assert node.client.get(f"/assets{doomed}/-/metadata").status_code == 404
    assert faults.query("SELECT count(*) FROM asset WHERE path = $1", later) == [(1,)]
    assert_rows_have_objects(faults)


def test_a_store_whose_commit_answer_is_lost_never_leaves_a_row_without_its_object(faults: Faults) -> None:
    """The connection dies between COMMIT and its answer: the row may exist, so its object must too."""
    path = unique("pg-lost-commit")
    image = png(5)
    cuts = faults.cutter.cuts
    faults.cutter.arm()

    answer = upload(faults.second.client, path, image)

    assert faults.cutter.cuts == cuts + 1, "the store's COMMIT did not pass the relay"
    assert_unavailable(answer)  # the client cannot know whether it landed: retry later
    eventually(
        lambda: faults.query("SELECT count(*) FROM asset WHERE path = $1", path) == [(1,)],
        "the COMMIT the client never heard about lands",
        deadline=10,
    )
    keys = faults.query("SELECT v.store_key FROM variant v JOIN asset a ON a.id = v.asset_id WHERE a.path = $1", path)
    assert len(keys) == 1
    assert keys[0][0] in faults.object_keys(), "the store removed the object of a row that was committed"
    fetched = faults.first.client.get(f"/assets{path}/-/entry/0/content")
    assert fetched.status_code == 200 and fetched.content == image
    assert_rows_have_objects(faults)


# --- Redis (Valkey) -----------------------------------------------------------------------------


def newest_entry(node: Deployment, path: str) -> int:
    answer = node.client.get(f"/assets{path}/-/metadata")
    assert answer.status_code == 200, answer.text
    entry: int = answer.json()["entryId"]
    return entry


def test_redis_down_the_service_keeps_working_and_nodes_agree_again_once_it_returns(faults: Faults) -> None:
    first, second = faults.nodes
    path = unique("redis")
    stored(first.client, path, png(10))
    # The second node resolves (and caches) the newest asset at the path under the current generation.
    assert newest_entry(second, path) == 0
    assert second.client.get(f"/assets{path}/-/entry/0/metadata").status_code == 200

    with down(faults, "valkey"):
        during = png(11, 60, 40)
        assert stored(first.client, path, during)["entryId"] == 1
        # No generations to compare: both nodes read through to PostgreSQL, so both see the write.
        assert newest_entry(second, path) == 1
        assert newest_entry(first, path) == 1
        for node in (first, second):
            content = node.client.get(f"/assets{path}/-/entry/1/content")
            assert content.status_code == 200 and content.content == during
            rendered = node.client.get(f"/assets{path}/-/entry/1/content?w=30&format=webp")
            assert rendered.status_code == 200, rendered.text
            assert describe(rendered.content).width == 30
        assert second.client.put(f"/assets{path}/-/entry/1", json={"alt": "no redis"}).status_code == 200
        assert first.client.get(f"/assets{path}/-/metadata").json()["alt"] == "no redis"
        # The render locks fell back to per-node ones; the row insert still keeps one variant per key.
        variants = faults.query(
            "SELECT count(*) FROM variant v JOIN asset a ON a.id = v.asset_id"
            " WHERE a.path = $1 AND v.transformation_key <> ''",
            path,
        )
        assert variants == [(1,)]

    # Redis is back (empty: this Valkey keeps nothing across a restart). What was written while it was
    # down is seen by both nodes, and so is every write from now on, at once.
    assert newest_entry(second, path) == 1
    assert second.client.get(f"/assets{path}/-/metadata").json()["alt"] == "no redis"
    assert stored(first.client, path, png(12))["entryId"] == 2
    assert newest_entry(second, path) == 2
    assert first.client.put(f"/assets{path}/-/entry/2", json={"alt": "redis again"}).status_code == 200
    assert second.client.get(f"/assets{path}/-/metadata").json()["alt"] == "redis again"
    assert second.client.delete(f"/assets{path}/-/entry/2").status_code == 204
    assert newest_entry(first, path) == 1
    assert first.client.get(f"/assets{path}/-/entry/2/metadata").status_code == 404
    assert_rows_have_objects(faults)


def test_a_bump_lost_while_redis_was_unreachable_retires_what_every_node_cached(faults: Faults) -> None:
    """Redis kept its data, but one writer's bump never reached it: its next contact retires the lot."""
    from redis.asyncio import Redis

    async def scenario() -> tuple[int, int, int]:
        reachable = Redis.from_url(faults.valkey.url, socket_timeout=2, socket_connect_timeout=2)
        # Nothing listens on the old port of a stopped service: the writer's Redis is unreachable.
        unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1, socket_connect_timeout=1)
        reader, writer = RedisGenerations(reachable), RedisGenerations(unreachable)
        path = unique("lost-bump")
        try:
            cached_under = await reader.current(path)
            with pytest.raises(RedisError):
                await writer.bump([path])
            unchanged = await reader.current(path)  # nobody has heard of the write yet
            writer._client = reachable  # the writer's Redis answers again
            await writer.current(unique("any"))
            return cached_under, unchanged, await reader.current(path)
        finally:
            await reachable.aclose()
            await unreachable.aclose()

    cached_under, unchanged, after = asyncio.run(scenario())
    assert unchanged == cached_under
    assert after != cached_under


# --- S3 -----------------------------------------------------------------------------------------


def test_s3_down_refuses_stores_and_content_keeps_deletes_and_finishes_removals_after(faults: Faults) -> None:
    node = faults.first
    kept, refused = unique("s3-kept"), unique("s3-refused")
    doomed = [unique("s3-doomed") for _ in range(3)]
    image = png(20)
    stored(node.client, kept, image)
    doomed_keys = [stored(node.client, path, png(21 + i))["variants"][0]["storeKey"] for i, path in enumerate(doomed)]
    # A rendered variant is an object of its own, queued with its original.
    assert node.client.get(f"/assets{doomed[0]}/-/content?w=10&format=png").status_code == 200
    doomed_keys += [
        key
        for (key,) in faults.query(
            "SELECT v.store_key FROM variant v JOIN asset a ON a.id = v.asset_id"
            " WHERE a.path = $1 AND v.transformation_key <> ''",
            doomed[0],
        )
    ]
    assert len(doomed_keys) == 4
    # Resolved before the outage, so only the object store stands between it and an answer.
    assert node.client.get(f"/assets{kept}/-/entry/0/content").content == image

    with down(faults, "s3"):
        assert_unavailable(upload(node.client, refused, png(25)))
        assert faults.query("SELECT count(*) FROM asset WHERE path = $1", refused) == [(0,)]
        content = node.client.get(f"/assets{kept}/-/entry/0/content")
        assert content.status_code in UNAVAILABLE, content.text
        assert content.json()["error"] == "dependency_unavailable"
        assert node.client.get(f"/assets{kept}/-/content?w=12").status_code in UNAVAILABLE
        # What needs no object still answers.
        assert node.client.get(f"/assets{kept}/-/metadata").status_code == 200
        assert node.client.get(f"/assets{kept}").status_code == 200
        # Deletes need only the database: rows go now, objects are queued.
        for path in doomed:
            assert node.client.delete(f"/assets{path}/-/all").status_code == 204
            assert node.client.get(f"/assets{path}/-/metadata").status_code == 404
        assert faults.query("SELECT count(*) FROM asset WHERE path = ANY($1::text[])", doomed) == [(0,)]
        queued = {key for (key,) in faults.query("SELECT store_key FROM pending_object_deletion")}
        assert set(doomed_keys) <= queued

        def tried_and_postponed() -> bool:
            rows = faults.query(
                "SELECT count(*) FROM pending_object_deletion WHERE store_key = ANY($1::text[]) AND attempts > 0",
                doomed_keys,
            )
            return rows == [(len(doomed_keys),)]

        # The reaper tried each removal, failed, and backed off: the queue still owns every object.
        eventually(tried_and_postponed, "the reaper tries the removals while S3 is down")

    def drained() -> bool:
        sql = "SELECT count(*) FROM pending_object_deletion WHERE store_key = ANY($1::text[])"
        return faults.query(sql, doomed_keys) == [(0,)]

    eventually(drained, "the queued removals finish once S3 is back")
    assert not set(doomed_keys) & faults.object_keys()
    back = node.client.get(f"/assets{kept}/-/entry/0/content")
    assert back.status_code == 200 and back.content == image
    assert stored(node.client, refused, png(25))["entryId"] == 0
    assert_rows_have_objects(faults)


class Stalling:
    """A TCP endpoint that accepts connections and never answers: an S3 that is there but gone."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(connection)

    def close(self) -> None:
        for connection in [self._listener, *self._held]:
            connection.close()


def test_an_s3_that_accepts_but_never_answers_fails_within_its_timeouts() -> None:
    """Timeouts and retries bound every call: a silent endpoint becomes ObjectStoreError (503), never a hang."""
    stalling = Stalling()
    objects = S3ObjectStore(
        f"http://127.0.0.1:{stalling.port}",
        "us-east-1",
        "key",
        "secret",
        force_path_style=True,
        allow_http=True,
        connect_timeout=1.0,
        read_timeout=1.0,
        max_retries=1,
    )

    async def each_call() -> list[str]:
        failures = []
        for call in (
            lambda: objects.read(BUCKET, "k"),
            lambda: objects.stream(BUCKET, "k"),
            lambda: objects.put(BUCKET, "k", b"data", "image/png"),
            lambda: objects.delete(BUCKET, "k"),
        ):
            with pytest.raises(ObjectStoreError) as raised:
                # The outer bound only keeps a regression from hanging the suite.
                await asyncio.wait_for(call(), 30)
            failures.append(str(raised.value))
        return failures

    try:
        failures = asyncio.run(each_call())
    finally:
        stalling.close()
    assert len(failures) == 4


# --- Everything, under load ---------------------------------------------------------------------


@dataclass
class Workload:
    """Stores and fetches in a loop on one node, recording every answer."""

    node: Deployment
    prefix: str = field(default_factory=lambda: unique("load"))
    written: list[tuple[str, int, bytes]] = field(default_factory=list)
    statuses: list[tuple[str, int]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="workload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=REQUEST_BOUND_SECONDS * 2)
        assert not self._thread.is_alive(), "the workload is stuck on a request"

    def wait_for_answers(self, count: int, what: str) -> None:
        target = len(self.statuses) + count
        eventually(lambda: len(self.statuses) >= target, what)

    def wait_for_stores(self, count: int, what: str) -> None:
        target = len(self.written) + count
        eventually(lambda: len(self.written) >= target, what)

    def _run(self) -> None:
        chooser = random.Random(7)
        with httpx.Client(base_url=self.node.base_url, timeout=REQUEST_BOUND_SECONDS) as client:
            number = 0
            while not self._stop.is_set():
                number += 1
                path = f"{self.prefix}/{number % 5}"
                image = png(1000 + number, 24 + number % 7, 18)
                answer = client.post(
                    f"/assets{path}",
                    files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", image)},
                )
                self.statuses.append(("store", answer.status_code))
                if answer.status_code == 201:
                    self.written.append((path, answer.json()["entryId"], image))
                if not self.written:
                    continue
                written_path, entry, expected = chooser.choice(self.written)
                content = client.get(f"/assets{written_path}/-/entry/{entry}/content")
                self.statuses.append(("content", content.status_code))
                if content.status_code == 200 and content.content != expected:
                    self.wrong.append(f"{written_path}#{entry}: other bytes")
                rendered = client.get(f"/assets{written_path}/-/entry/{entry}/content?w=12&format=webp")
                self.statuses.append(("render", rendered.status_code))
                newest = client.get(f"/assets{written_path}/-/metadata")
                self.statuses.append(("metadata", newest.status_code))


def test_a_running_workload_loses_nothing_while_each_dependency_goes_down_in_turn(faults: Faults) -> None:
    orphans_before = assert_rows_have_objects(faults)
    workload = Workload(faults.first)
    workload.start()
    try:
        workload.wait_for_stores(3, "the workload stores")
        for dependency in ("postgres", "valkey", "s3"):
            with down(faults, dependency):
                workload.wait_for_answers(8, f"requests while {dependency} is down")
            workload.wait_for_stores(2, f"stores after {dependency} is back")
    finally:
        workload.stop()

    expected = {200, 201, *UNAVAILABLE}
    unexpected = sorted({(kind, status) for kind, status in workload.statuses if status not in expected})
    assert not unexpected, f"answers other than success or 503/504: {unexpected}"
    assert not workload.wrong, workload.wrong
    assert any(status in UNAVAILABLE for _, status in workload.statuses), "no request ever met an outage"
    # Every write that was acknowledged is there, byte for byte, on both nodes.
    for path, entry, image in workload.written:
        for node in faults.nodes:
            answer = node.client.get(f"/assets{path}/-/entry/{entry}/content")
            assert answer.status_code == 200, f"{path}#{entry}: {answer.status_code} {answer.text[:200]}"
            assert answer.content == image, f"{path}#{entry} changed"
    acknowledged = {(path, entry) for path, entry, _ in workload.written}
    rows = set(faults.query("SELECT path, entry_id FROM asset WHERE path LIKE $1", workload.prefix + "/%"))
    assert acknowledged <= rows
    # A refused store or render may leave its object behind (an orphan for the sweep), never more.
    orphans = assert_rows_have_objects(faults) - orphans_before
    refused = sum(1 for kind, status in workload.statuses if kind in ("store", "render") and status in UNAVAILABLE)
    assert len(orphans) <= refused, (len(orphans), refused)
