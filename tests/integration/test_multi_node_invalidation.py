"""Two nodes on one database see each other's writes, with Redis and without it.

Without Redis, PostgreSQL carries the invalidations (a generation table and notifications);
the nodes here share a PostgreSQL of their own, so that restarting it disturbs no other test.
Every read on the second node is made twice before the write, so that its caches (and the
fast path's recorded answers) hold the old answer the write must retire.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.integration.conftest import STANDARD_CONFIG
from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService, S3Service, ValkeyService

_READY_WAIT_SECONDS = 60.0
_NOTIFICATION_WAIT_SECONDS = 5.0


class Pair:
    def __init__(self, first: Deployment, second: Deployment, database: PostgresService, kind: str) -> None:
        self.first = first
        self.second = second
        self.database = database
        self.kind = kind


@pytest.fixture(scope="module", params=["postgres-only", "with-valkey"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, s3: S3Service) -> Iterator[Pair]:
    config = STANDARD_CONFIG
    if request.param == "with-valkey":
        valkey: ValkeyService = request.getfixturevalue("valkey")
        config += f'\n[cache]\nredis-url = "{valkey.url}"\n'
    database = PostgresService()
    database.start()
    first = second = None
    try:
        first = Deployment(tmp_path_factory.mktemp("node-a"), config, store="s3", postgres=database, s3=s3).start()
        second = Deployment(
            tmp_path_factory.mktemp("node-b"), config, store="s3", postgres=database, s3=s3, dsn=first.dsn
        ).start()
        yield Pair(first, second, database, request.param)
    finally:
        for node in (second, first):
            if node is not None:
                node.stop()
        database.close()


def _store(node: Deployment, path: str, image: bytes) -> None:
    answer = node.client.post(
        f"/assets{path}", files={"metadata": (None, "{}", "application/json"), "asset": ("a.jpg", image, "image/jpeg")}
    )
    assert answer.status_code == 201, answer.text


def _read_twice(node: Deployment, target: str) -> tuple[int, bytes]:
    first = node.client.get(target)
    again = node.client.get(target)
    assert (again.status_code, again.content) == (first.status_code, first.content), target
    return first.status_code, first.content


def _writes_are_seen_on_the_other_node(pair: Pair, path: str) -> None:
    first, second = pair.first, pair.second
    one, two = make_image("jpg", 40, 30), make_image("png", 20, 10)
    _store(first, path, one)
    metadata, content, link = (f"/assets{path}/-/{kind}" for kind in ("metadata", "content", "link"))
    entry_one = f"/assets{path}/-/entry/1/metadata"
    old_link = _read_twice(second, link)
    assert _read_twice(second, content) == (200, one)
    assert second.client.get(metadata).json()["entryId"] == 0
    assert _read_twice(second, entry_one)[0] == 404

    # store
    _store(first, path, two)
    _seen(pair, lambda: second.client.get(metadata).json()["entryId"] == 1)
    assert second.client.get(content).content == two
    assert second.client.get(link).content != old_link[1]
    assert second.client.get(entry_one).status_code == 200

    # render: a new variant is listed on the other node, whose entry content stays as it was
    _read_twice(second, metadata)
    _read_twice(second, entry_one)
    pinned = f"/assets{path}/-/entry/1/content"
    assert _read_twice(second, pinned) == (200, two)
    assert first.client.get(f"/assets{path}/-/entry/1/content?w=8").status_code == 200
    _seen(pair, lambda: len(second.client.get(metadata).json()["variants"]) == 2)
    assert len(second.client.get(entry_one).json()["variants"]) == 2
    assert second.client.get(pinned).content == two

    # update
    _read_twice(second, metadata)
    assert first.client.put(f"/assets{path}/-/entry/1", json={"alt": "changed"}).status_code == 200
    _seen(pair, lambda: second.client.get(metadata).json()["alt"] == "changed")
    assert second.client.get(entry_one).json()["alt"] == "changed"

    # delete the newest, then everything
    _read_twice(second, metadata)
    _read_twice(second, content)
    assert first.client.delete(f"/assets{path}/-/entry/1").status_code == 204
    _seen(pair, lambda: second.client.get(metadata).json()["entryId"] == 0)
    assert second.client.get(content).content == one
    assert second.client.get(entry_one).status_code == 404
    assert first.client.delete(f"/assets{path}/-/all").status_code == 204
    _seen(pair, lambda: second.client.get(metadata).status_code == 404)
    assert second.client.get(content).status_code == 404
    assert second.client.get(f"/assets{path}/-/entry/0/metadata").status_code == 404


def _seen(pair: Pair, check: Callable[[], bool]) -> None:
    """The first read on the other node after a write.

    With Redis every read asks Redis, so the write is there at once. Without it, the write travels
    as a PostgreSQL notification, sent at commit and delivered by each listening connection's own
    server process: on a loaded machine that can take a few milliseconds longer than the client's
    next request. So the first read may be repeated (bounded); a node that never hears stays stale
    and fails. Every later read in a step is checked once.
    """
    if pair.kind == "with-valkey":
        assert check()
        return
    deadline = time.monotonic() + _NOTIFICATION_WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, "the other node never heard of the write"
        time.sleep(0.01)


def _wait_until_ready(*nodes: Deployment) -> None:
    """After a database restart: wait (bounded) until every node answers /ready again."""
    deadline = time.monotonic() + _READY_WAIT_SECONDS
    for node in nodes:
        while node.client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, f"{node.base_url} never got ready again"
            time.sleep(0.2)


def test_store_update_and_delete_on_one_node_are_seen_on_the_other(pair: Pair, path: str) -> None:
    _writes_are_seen_on_the_other_node(pair, path)
    # and the other way round
    _writes_are_seen_on_the_other_node(Pair(pair.second, pair.first, pair.database, pair.kind), path + "-back")


def test_writes_are_seen_on_the_other_node_after_the_database_restarts(pair: Pair, path: str) -> None:
    _store(pair.first, path, make_image("jpg", 40, 30))
    assert _read_twice(pair.second, f"/assets{path}/-/metadata")[0] == 200
    pair.database.stop(mode="immediate")  # crash-like: no node hears a goodbye
    pair.database.start()
    _wait_until_ready(pair.first, pair.second)
    # A write made right after the restart, before the second node may be listening again.
    _store(pair.first, path, make_image("png", 20, 10))
    _seen(pair, lambda: pair.second.client.get(f"/assets{path}/-/metadata").json()["entryId"] == 1)
    _writes_are_seen_on_the_other_node(pair, path + "-after")
    if pair.kind == "postgres-only":
        # Not merely reading through for good: the node listens again (and resynchronised).
        _wait_for_log(pair.second, "listening for cache invalidations", 2)


def _wait_for_log(node: Deployment, text: str, count: int) -> None:
    deadline = time.monotonic() + _READY_WAIT_SECONDS
    while node.server.stderr_path.read_text(errors="replace").count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged {count} times"
        time.sleep(0.2)


def test_what_a_node_resolved_still_answers_while_the_database_is_down(pair: Pair, path: str) -> None:
    _store(pair.first, path, make_image("jpg", 40, 30))
    metadata = f"/assets{path}/-/metadata"
    known = _read_twice(pair.second, metadata)
    pair.database.stop()
    try:
        # Nobody can write meanwhile, so what the node last knew is still the newest.
        answer = pair.second.client.get(metadata)
        assert (answer.status_code, answer.content) == known
    finally:
        pair.database.start()
    _wait_until_ready(pair.first, pair.second)
    _store(pair.first, path, make_image("png", 20, 10))
    _seen(pair, lambda: pair.second.client.get(metadata).json()["entryId"] == 1)
