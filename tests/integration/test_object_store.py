"""One contract, three stores: S3 (a real moto endpoint), filesystem and memory."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from konifer_edge.storage.object_store import (
    FilesystemObjectStore,
    InvalidRange,
    ListedObject,
    MemoryObjectStore,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    S3ObjectStore,
    S3Params,
    StoredObject,
    create_object_store,
)
from tests.support.images import make_image
from tests.support.services import S3Service, free_port

pytestmark = pytest.mark.integration

# Small chunks so a few hundred KiB already proves the body arrives in pieces, not whole.
CHUNK = 64 * 1024
KINDS = ("s3", "filesystem", "memory")


class Harness:
    def __init__(
        self, kind: str, store: ObjectStore, new_bucket: Callable[[], str], endpoint: str | None = None
    ) -> None:
        self.kind = kind
        self.store = store
        self.new_bucket = new_bucket
        self.endpoint = endpoint


def _s3_store(s3: S3Service, **overrides: object) -> S3ObjectStore:
    params: dict[str, object] = {
        "endpoint_url": s3.endpoint_url,
        "region": s3.region,
        "access_key": s3.access_key,
        "secret_key": s3.secret_key,
        "force_path_style": True,
        "allow_http": True,
        "chunk_size": CHUNK,
    }
    params.update(overrides)
    return S3ObjectStore(**params)  # type: ignore[arg-type]


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    kind: str = request.param

    def plain_bucket() -> str:
        return f"kt-{uuid.uuid4().hex[:16]}"

    if kind == "s3":
        # Resolved here, not as a parameter, so filesystem/memory runs never start moto.
        s3: S3Service = request.getfixturevalue("s3")

        def s3_bucket() -> str:
            name = plain_bucket()
            s3.create_bucket(name)
            return name

        return Harness(kind, _s3_store(s3), s3_bucket, s3.endpoint_url)
    if kind == "filesystem":
        return Harness(kind, FilesystemObjectStore(tmp_path / "objects", chunk_size=CHUNK), plain_bucket)
    return Harness(kind, MemoryObjectStore(chunk_size=CHUNK), plain_bucket)


@pytest.fixture
async def bucket(harness: Harness) -> str:
    name = harness.new_bucket()
    await harness.store.ensure_bucket(name)
    return name


def _payload(size: int) -> bytes:
    return os.urandom(size)


def _key() -> str:
    return str(uuid.uuid4())


async def _collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


async def listed(store: ObjectStore, bucket: str) -> dict[str, ListedObject]:
    """The bucket's listing by key."""
    return {item.key: item async for chunk in store.list_objects(bucket) for item in chunk}


async def test_put_read_stream_round_trip(harness: Harness, bucket: str) -> None:
    store = harness.store
    data = _payload(300 * 1024 + 17)
    key = _key()
    await store.put(bucket, key, data, "image/png")

    assert await store.read(bucket, key) == data
    info, chunks = await store.stream(bucket, key)
    parts = await _collect(chunks)
    assert b"".join(parts) == data
    if harness.kind != "memory":  # MemoryStore hands over its one buffer, already in memory
        assert len(parts) > 1, "the body must arrive in several chunks"
    assert all(isinstance(part, bytes) for part in parts)
    expected_type = None if harness.kind == "filesystem" else "image/png"
    assert info == StoredObject(size=len(data), content_type=expected_type)


async def test_real_image_and_memoryview_round_trip(harness: Harness, bucket: str) -> None:
    image = make_image("webp", 120, 80, frames=3)
    key = _key()
    await harness.store.put(bucket, key, memoryview(image), "image/webp")
    assert await harness.store.read(bucket, key) == image


async def test_empty_object(harness: Harness, bucket: str) -> None:
    key = _key()
    await harness.store.put(bucket, key, b"", "application/octet-stream")
    info, chunks = await harness.store.stream(bucket, key)
    assert info.size == 0
    assert b"".join(await _collect(chunks)) == b""


@pytest.mark.parametrize(
    ("first", "last"),
    [(0, 0), (10, 19), (0, 300_000), (CHUNK - 1, 2 * CHUNK + 1), (-5, -1)],
    ids=["first-byte", "middle", "whole", "across-chunks", "last-five"],
)
async def test_ranges_are_inclusive(harness: Harness, bucket: str, first: int, last: int) -> None:
    data = _payload(300_001)
    key = _key()
    await harness.store.put(bucket, key, data, "image/jpeg")
    if first < 0:
        first, last = len(data) + first, len(data) + last
    info, chunks = await harness.store.stream(bucket, key, (first, last))
    assert b"".join(await _collect(chunks)) == data[first : last + 1]
    assert info.size == len(data), "size is the whole object's, for Content-Range"


async def test_range_past_end_is_clamped(harness: Harness, bucket: str) -> None:
    data = _payload(1000)
    key = _key()
    await harness.store.put(bucket, key, data, "image/jpeg")
    info, chunks = await harness.store.stream(bucket, key, (990, 5000))
    assert b"".join(await _collect(chunks)) == data[990:]
    assert info.size == 1000


@pytest.mark.parametrize("byte_range", [(1000, 1000), (5000, 6000), (20, 10), (-1, 5)])
async def test_unsatisfiable_ranges(harness: Harness, bucket: str, byte_range: tuple[int, int]) -> None:
    key = _key()
    await harness.store.put(bucket, key, _payload(1000), "image/jpeg")
    with pytest.raises(InvalidRange) as caught:
        await harness.store.stream(bucket, key, byte_range)
    if byte_range[0] >= 1000:
        assert caught.value.size == 1000


async def test_missing_object(harness: Harness, bucket: str) -> None:
    store = harness.store
    key = _key()
    # The error comes from opening, before anyone iterates.
    with pytest.raises(ObjectNotFound):
        await store.stream(bucket, key)
    with pytest.raises(ObjectNotFound):
        await store.stream(bucket, key, (0, 10))
    with pytest.raises(ObjectNotFound):
        await store.read(bucket, key)
    assert key not in await listed(store, bucket)
    assert issubclass(ObjectNotFound, ObjectStoreError)


async def test_listed_and_idempotent_delete(harness: Harness, bucket: str) -> None:
    store = harness.store
    key = _key()
    await store.delete(bucket, key)  # never existed
    await store.put(bucket, key, b"abc", "image/gif")
    assert key in await listed(store, bucket)
    await store.delete(bucket, key)
    assert key not in await listed(store, bucket)
    await store.delete(bucket, key)  # already gone
    with pytest.raises(ObjectNotFound):
        await store.read(bucket, key)


async def test_list_objects(harness: Harness, bucket: str) -> None:
    store = harness.store
    keys = {_key() for _ in range(7)}
    before = datetime.now(UTC) - timedelta(seconds=5)  # the filesystem's and S3's clocks are this machine's
    await asyncio.gather(*(store.put(bucket, key, key.encode(), "image/png") for key in keys))
    objects = await listed(store, bucket)
    assert set(objects) == keys
    for key, item in objects.items():
        assert item.size == len(key.encode())
        assert before <= item.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    other = harness.new_bucket()
    await store.ensure_bucket(other)
    assert await listed(store, other) == {}


async def test_concurrent_puts_and_reads(harness: Harness, bucket: str) -> None:
    store = harness.store
    blobs = {_key(): _payload(20_000 + i) for i in range(24)}
    await asyncio.gather(*(store.put(bucket, k, v, "image/avif") for k, v in blobs.items()))
    read_back = await asyncio.gather(*(store.read(bucket, k) for k in blobs))
    assert read_back == list(blobs.values())


async def test_abandoned_stream_leaves_store_usable(harness: Harness, bucket: str) -> None:
    store = harness.store
    data = _payload(CHUNK * 4)
    key = _key()
    await store.put(bucket, key, data, "image/png")
    _, chunks = await store.stream(bucket, key)
    first = await anext(chunks)
    assert data.startswith(first)
    await chunks.aclose()  # type: ignore[attr-defined]
    assert await store.read(bucket, key) == data


async def test_presigned_url(harness: Harness, bucket: str) -> None:
    key = _key()
    data = _payload(4096)
    await harness.store.put(bucket, key, data, "image/png")
    url = await harness.store.presigned_get_url(bucket, key, timedelta(minutes=5))
    if harness.kind != "s3":
        assert url is None
        return
    assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"


async def test_objects_are_addressed_path_style_at_the_endpoint(harness: Harness, bucket: str) -> None:
    key = _key()
    url = await harness.store.presigned_get_url(bucket, key, timedelta(minutes=5))
    if harness.kind != "s3":
        assert url is None
        return
    assert url is not None
    unsigned = url.partition("?")[0]
    assert unsigned == f"{harness.endpoint}/{bucket}/{key}"
    async with httpx.AsyncClient() as client:
        response = await client.get(unsigned)
    # moto does not enforce bucket policies, so the unsigned path-style URL really addresses the object.
    assert response.status_code == 404


async def test_ping_healthy(harness: Harness, bucket: str) -> None:
    await harness.store.ping()


# --- S3 specifics -------------------------------------------------------------------------------


async def test_s3_objects_are_visible_to_other_clients(s3: S3Service) -> None:
    bucket = f"kt-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(bucket)
    store = _s3_store(s3)
    key = _key()
    image = make_image("jpg", 200, 100)
    await store.put(bucket, key, image, "image/jpeg")
    assert s3.list_keys(bucket) == [key]
    head = s3.client().head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "image/jpeg"
    assert s3.get_object(bucket, key) == image


async def test_s3_put_into_missing_bucket_is_a_store_error(s3: S3Service) -> None:
    store = _s3_store(s3)
    with pytest.raises(ObjectStoreError) as caught:
        await store.put(f"kt-missing-{uuid.uuid4().hex[:8]}", _key(), b"x", "image/png")
    assert not isinstance(caught.value, ObjectNotFound)
    assert caught.value.__cause__ is not None


async def test_s3_dead_endpoint_fails_fast_and_chained() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    store = S3ObjectStore(
        dead, "us-east-1", "k", "s", force_path_style=True, allow_http=True,
        connect_timeout=1.0, read_timeout=2.0, request_timeout=5.0, max_retries=2,
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(ObjectStoreError) as caught:
        await store.ping()
    assert time.monotonic() - started < 10
    assert caught.value.__cause__ is not None
    assert not isinstance(caught.value, ObjectNotFound)

    await store.ensure_bucket("some-bucket")
    for operation in (
        store.ping(),
        store.read("some-bucket", _key()),
        store.put("some-bucket", _key(), b"x", "image/png"),
        store.delete("some-bucket", _key()),
        store.stream("some-bucket", _key()),
    ):
        started = time.monotonic()
        with pytest.raises(ObjectStoreError) as caught:
            await operation
        assert not isinstance(caught.value, ObjectNotFound)
        assert time.monotonic() - started < 10
    with pytest.raises(ObjectStoreError):
        await listed(store, "some-bucket")


async def test_s3_ping_is_bounded_against_a_silent_endpoint() -> None:
    # A socket that accepts (the kernel's backlog does) but never answers: only timeouts end it.
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        store = S3ObjectStore(endpoint, "us-east-1", "k", "s", force_path_style=True, allow_http=True, ping_timeout=1.5)
        started = time.monotonic()
        with pytest.raises(ObjectStoreError):
            await store.ping()
        assert time.monotonic() - started < 5
    finally:
        listener.close()


async def test_s3_object_addresses() -> None:
    """Path-style and virtual-hosted addressing, at a given endpoint and at AWS, as the store signs them."""

    async def address(store: S3ObjectStore, bucket: str, key: str) -> str:
        url = await store.presigned_get_url(bucket, key, timedelta(minutes=5))  # signed locally, no request
        assert url is not None
        return url.partition("?")[0]

    path_style = S3ObjectStore("http://127.0.0.1:9000/", "eu-west-1", "k", "s", True, True)
    assert await address(path_style, "b", "k/1") == "http://127.0.0.1:9000/b/k/1"
    virtual = S3ObjectStore("https://s3.example.com", "eu-west-1", "k", "s", False, False)
    assert await address(virtual, "media", "abc") == "https://media.s3.example.com/abc"
    aws_virtual = S3ObjectStore(None, "eu-west-1", "k", "s", False, False)
    assert await address(aws_virtual, "media", "abc") == "https://media.s3.eu-west-1.amazonaws.com/abc"
    aws_path = S3ObjectStore(None, "eu-west-1", "k", "s", True, False)
    assert await address(aws_path, "media", "a b") == "https://s3.eu-west-1.amazonaws.com/media/a%20b"


# --- filesystem and factory ---------------------------------------------------------------------


async def test_filesystem_layout_and_ping(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = FilesystemObjectStore(root)
    with pytest.raises(ObjectStoreError):
        await store.ping()  # root does not exist yet
    root.mkdir()
    await store.ping()
    await store.ensure_bucket("originals")
    assert (root / "originals").is_dir()
    key = _key()
    await store.put("originals", key, b"bytes", "image/png")
    assert (root / "originals" / key).read_bytes() == b"bytes"
    for bad in ("..", ".", "", "a/b"):
        with pytest.raises(ObjectStoreError):
            await store.ensure_bucket(bad)
    root.chmod(0o500)
    try:
        if not os.access(root, os.W_OK):  # root ignores permission bits
            with pytest.raises(ObjectStoreError):
                await store.ping()
    finally:
        root.chmod(0o700)


def test_factory(tmp_path: Path) -> None:
    params = S3Params(endpoint_url="http://127.0.0.1:1", access_key="a", secret_key="b", allow_http=True)
    assert isinstance(create_object_store("s3", s3=params), S3ObjectStore)
    assert isinstance(create_object_store("filesystem", filesystem_root=tmp_path), FilesystemObjectStore)
    assert isinstance(create_object_store("memory"), MemoryObjectStore)
    with pytest.raises(ValueError):
        create_object_store("s3")
    with pytest.raises(ValueError):
        create_object_store("filesystem")
    with pytest.raises(ValueError):
        create_object_store("gcs")
