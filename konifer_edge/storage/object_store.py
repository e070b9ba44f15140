"""Object storage for originals and variants: one small interface, three obstore-backed stores.

The store is picked once at start-up by `create_object_store`; nothing on the request path
branches on the backend kind. Keys are opaque UUID strings and content is immutable, so the
stores never need conditional writes or versioning.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias
from urllib.parse import urlsplit

import msgspec
import obstore as obs
from obstore.exceptions import BaseError as _ObstoreError
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import LocalStore, MemoryStore, S3Store

if TYPE_CHECKING:
    from obstore import GetOptions, GetResult
    from obstore.store import ClientConfig, RetryConfig, S3Config

__all__ = [
    "FilesystemObjectStore",
    "InvalidRange",
    "ListedObject",
    "MemoryObjectStore",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "S3ObjectStore",
    "S3Params",
    "StoredObject",
    "create_object_store",
]

_BackendStore: TypeAlias = S3Store | LocalStore | MemoryStore

# obstore's own default is 10 MiB per chunk, which would buffer a whole image before the first
# byte reaches the client. 256 KiB keeps time-to-first-byte low without crossing into Python
# for every few kilobytes.
DEFAULT_CHUNK_SIZE = 256 * 1024
_LIST_CHUNK = 1000

# Anything that cannot be a single path segment would let a bucket name escape the filesystem
# root or alias another bucket.
_FORBIDDEN_BUCKET_NAMES = frozenset({"", ".", ".."})


class ObjectStoreError(Exception):
    """The object store failed (network, 5xx, permissions, corrupt state); the cause is chained."""


class ObjectNotFound(ObjectStoreError):
    """No object at that bucket and key."""


class InvalidRange(ObjectStoreError):
    """The requested byte range starts at or past the end of the object (HTTP 416)."""

    def __init__(self, message: str, *, size: int | None) -> None:
        super().__init__(message)
        self.size = size


class StoredObject(msgspec.Struct, frozen=True):
    """What the store knows about an object: its full size (not the range's) and content type.

    `content_type` is None where the backend keeps no attributes (the filesystem store).
    """

    size: int
    content_type: str | None


class ListedObject(msgspec.Struct, frozen=True):
    """One object of a bucket's listing: its key, size and when it was last written."""

    key: str
    size: int
    last_modified: datetime


class S3Params(msgspec.Struct, frozen=True, kw_only=True):
    """Connection settings for an S3-compatible store, independent of the config package."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    force_path_style: bool = False
    allow_http: bool = False
    connect_timeout: float = 5.0
    # Longest wait for the next byte: catches a stalled connection without cutting off a long body.
    read_timeout: float = 30.0
    # Cap on a whole request including its body, which a slow client paces when it is streamed.
    request_timeout: float = 300.0
    # obstore's defaults (10 retries within 3 minutes) would hold a request far longer than any
    # client waits for an image.
    max_retries: int = 3
    retry_timeout: float = 30.0


class ObjectStore(Protocol):
    async def put(self, bucket: str, key: str, data: bytes | memoryview, content_type: str) -> None: ...

    async def stream(
        self, bucket: str, key: str, byte_range: tuple[int, int] | None = None
    ) -> tuple[StoredObject, AsyncIterator[bytes]]:
        """Open the object, then yield its bytes in chunks.

        Raises ObjectNotFound (or InvalidRange) before any byte is yielded. `byte_range` is
        HTTP's inclusive (first, last); a last past the end is clamped to the object's end.
        """
        ...

    async def read(self, bucket: str, key: str) -> bytes: ...

    async def delete(self, bucket: str, key: str) -> None:
        """Delete the object; a missing object is not an error."""
        ...

    def list_objects(self, bucket: str) -> AsyncIterator[list[ListedObject]]:
        """Every object of the bucket, in chunks, with its size and last-modified time (S3's
        LastModified, the file's mtime)."""
        ...

    async def presigned_get_url(self, bucket: str, key: str, ttl: timedelta) -> str | None:
        """A time-limited GET URL, or None where the store cannot presign."""
        ...

    async def ping(self) -> None:
        """Raise ObjectStoreError when the store cannot be reached."""
        ...

    async def ensure_bucket(self, bucket: str) -> None: ...


def _translate(exc: Exception, bucket: str, key: str | None) -> ObjectStoreError:
    where = f"{bucket}/{key}" if key is not None else bucket
    # obstore raises the builtin FileNotFoundError (its own NotFoundError is deprecated).
    if isinstance(exc, FileNotFoundError) and key is not None:
        return ObjectNotFound(f"no object at {where}")
    return ObjectStoreError(f"object store failure at {where}: {type(exc).__name__}: {exc}")


# OSError covers what obstore surfaces as builtins: FileNotFoundError, PermissionError, TimeoutError.
_BACKEND_ERRORS: tuple[type[Exception], ...] = (_ObstoreError, OSError)


def _check_range(byte_range: tuple[int, int]) -> None:
    first, last = byte_range
    if first < 0 or last < first:
        raise InvalidRange(f"invalid byte range {first}-{last}", size=None)


class _ObstoreBacked:
    """Everything the three stores share; subclasses only say how a bucket maps to an obstore store."""

    # LocalStore refuses put attributes (NotImplementedError), so it cannot keep a content type.
    _keeps_attributes: bool = True

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._chunk_size = chunk_size
        self._stores: dict[str, _BackendStore] = {}

    def _make_store(self, bucket: str) -> _BackendStore:
        raise NotImplementedError

    def _store(self, bucket: str) -> _BackendStore:
        store = self._stores.get(bucket)
        if store is None:
            try:
                store = self._make_store(bucket)
            except _BACKEND_ERRORS as exc:
                raise _translate(exc, bucket, None) from exc
            store = self._stores.setdefault(bucket, store)
        return store

    async def put(self, bucket: str, key: str, data: bytes | memoryview, content_type: str) -> None:
        store = self._store(bucket)
        try:
            if self._keeps_attributes:
                await obs.put_async(store, key, data, attributes={"Content-Type": content_type})
            else:
                await obs.put_async(store, key, data)
        except FileNotFoundError as exc:
            # A PUT only "misses" when the bucket itself is absent: a deployment fault, not a 404.
            raise ObjectStoreError(f"bucket {bucket!r} does not exist") from exc
        except _BACKEND_ERRORS as exc:
            raise _translate(exc, bucket, key) from exc

    async def stream(
        self, bucket: str, key: str, byte_range: tuple[int, int] | None = None
    ) -> tuple[StoredObject, AsyncIterator[bytes]]:
        store = self._store(bucket)
        options: GetOptions | None = None
        if byte_range is not None:
            _check_range(byte_range)
            # obstore's (start, end) is end-exclusive; HTTP's last byte is inclusive.
            options = {"range": (byte_range[0], byte_range[1] + 1)}
        try:
            result = await obs.get_async(store, key, options=options)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object at {bucket}/{key}") from exc
        except _BACKEND_ERRORS as exc:
            if byte_range is not None:
                await self._raise_if_unsatisfiable(store, bucket, key, byte_range[0], exc)
            raise _translate(exc, bucket, key) from exc
        info = StoredObject(size=result.meta["size"], content_type=_content_type(result))
        return info, self._chunks(result, bucket, key)

    async def _raise_if_unsatisfiable(
        self, store: _BackendStore, bucket: str, key: str, first: int, cause: Exception
    ) -> None:
        # Backends report an unsatisfiable range as a generic error (S3: a 416, memory and
        # filesystem: an InvalidRange text). Asking for the size on this error path only is
        # sturdier than parsing messages, and keeps the happy path at one request.
        try:
            meta = await obs.head_async(store, key)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object at {bucket}/{key}") from exc
        except _BACKEND_ERRORS:
            return
        if first >= meta["size"]:
            raise InvalidRange(
                f"range starts at {first} but {bucket}/{key} has {meta['size']} bytes", size=meta["size"]
            ) from cause

    async def _chunks(self, result: GetResult, bucket: str, key: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in result.stream(min_chunk_size=self._chunk_size):
                yield chunk
        except _BACKEND_ERRORS as exc:
            raise _translate(exc, bucket, key) from exc

    async def read(self, bucket: str, key: str) -> bytes:
        store = self._store(bucket)
        try:
            result = await obs.get_async(store, key)
            return (await result.bytes_async()).to_bytes()
        except _BACKEND_ERRORS as exc:
            raise _translate(exc, bucket, key) from exc

    async def delete(self, bucket: str, key: str) -> None:
        store = self._store(bucket)
        try:
            await obs.delete_async(store, key)
        except FileNotFoundError:
            # S3 and memory already treat this as success; the filesystem does not.
            return
        except _BACKEND_ERRORS as exc:
            raise _translate(exc, bucket, key) from exc

    async def list_objects(self, bucket: str) -> AsyncIterator[list[ListedObject]]:
        store = self._store(bucket)
        try:
            async for batch in obs.list(store, chunk_size=_LIST_CHUNK):
                yield [
                    ListedObject(key=meta["path"], size=meta["size"], last_modified=meta["last_modified"])
                    for meta in batch
                ]
        except _BACKEND_ERRORS as exc:
            raise _translate(exc, bucket, None) from exc

    async def presigned_get_url(self, bucket: str, key: str, ttl: timedelta) -> str | None:
        return None

    async def ping(self) -> None:
        return None

    async def ensure_bucket(self, bucket: str) -> None:
        self._store(bucket)


def _content_type(result: GetResult) -> str | None:
    value = result.attributes.get("Content-Type")
    return value if value else None


class MemoryObjectStore(_ObstoreBacked):
    """In-process store for tests and throwaway runs; contents die with the process."""

    def _make_store(self, bucket: str) -> _BackendStore:
        return MemoryStore()


class FilesystemObjectStore(_ObstoreBacked):
    """One directory per bucket under `root`: the embedded default when no object store is configured."""

    _keeps_attributes = False

    def __init__(self, root: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__(chunk_size=chunk_size)
        self._root = root

    def _make_store(self, bucket: str) -> _BackendStore:
        if bucket in _FORBIDDEN_BUCKET_NAMES or "/" in bucket or "\\" in bucket:
            raise ObjectStoreError(f"bucket name {bucket!r} is not a single path segment")
        path = self._root / bucket
        return LocalStore(path, mkdir=True)

    async def ping(self) -> None:
        # The filesystem is "unreachable" when the root vanished or became read-only (a lost mount).
        root = self._root
        if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
            raise ObjectStoreError(f"object store root {root} is missing or not writable")


class S3ObjectStore(_ObstoreBacked):
    """An S3-compatible store; one obstore S3Store per bucket, made on first use."""

    def __init__(
        self,
        endpoint_url: str | None,
        region: str,
        access_key: str | None,
        secret_key: str | None,
        force_path_style: bool,
        allow_http: bool,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        request_timeout: float = 300.0,
        max_retries: int = 3,
        retry_timeout: float = 30.0,
        ping_timeout: float = 5.0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        super().__init__(chunk_size=chunk_size)
        self._endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._path_style = force_path_style
        self._ping_timeout = ping_timeout
        # reqwest re-arms the read timeout at each poll, so a client that pauses the stream (back-
        # pressure) does not trip it; only the overall `timeout` counts that time.
        self._client_options: ClientConfig = {
            "allow_http": allow_http,
            "connect_timeout": timedelta(seconds=connect_timeout),
            "read_timeout": timedelta(seconds=read_timeout),
            "timeout": timedelta(seconds=request_timeout),
        }
        self._retry_config: RetryConfig = {
            "max_retries": max_retries,
            "retry_timeout": timedelta(seconds=retry_timeout),
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=2),
                "base": 2,
            },
        }

    @classmethod
    def from_params(cls, params: S3Params) -> S3ObjectStore:
        return cls(
            params.endpoint_url,
            params.region,
            params.access_key,
            params.secret_key,
            params.force_path_style,
            params.allow_http,
            connect_timeout=params.connect_timeout,
            read_timeout=params.read_timeout,
            request_timeout=params.request_timeout,
            max_retries=params.max_retries,
            retry_timeout=params.retry_timeout,
        )

    def _bucket_endpoint(self, bucket: str) -> str | None:
        if self._endpoint_url is None:
            return None
        if self._path_style:
            return self._endpoint_url
        # With virtual-host addressing obstore expects the bucket already in the endpoint's host.
        parts = urlsplit(self._endpoint_url)
        return f"{parts.scheme}://{bucket}.{parts.netloc}{parts.path}"

    def _make_store(self, bucket: str) -> _BackendStore:
        config: S3Config = {"region": self._region, "virtual_hosted_style_request": not self._path_style}
        endpoint = self._bucket_endpoint(bucket)
        if endpoint is not None:
            config["endpoint"] = endpoint
        if self._access_key is not None and self._secret_key is not None:
            config["access_key_id"] = self._access_key
            config["secret_access_key"] = self._secret_key
        return S3Store(bucket, config=config, client_options=self._client_options, retry_config=self._retry_config)

    async def presigned_get_url(self, bucket: str, key: str, ttl: timedelta) -> str | None:
        store = self._store(bucket)
        assert isinstance(store, S3Store)
        try:
            return await obs.sign_async(store, "GET", key, ttl)
        except _BACKEND_ERRORS as exc:
            raise _translate(exc, bucket, key) from exc

    async def ping(self) -> None:
        # Readiness asks "can we reach the store", not "does this key exist": any HTTP answer,
        # including 404 and 403 (S3 answers 403 for a missing key without ListBucket), proves the
        # endpoint is up. Transport errors and 5xx come back as GenericError after retries.
        bucket = next(iter(self._stores), "konifer-edge-readiness-probe")
        store = self._store(bucket)
        try:
            await asyncio.wait_for(obs.head_async(store, ".konifer-edge-ping"), self._ping_timeout)
        except (FileNotFoundError, PermissionDeniedError, UnauthenticatedError):
            return
        except TimeoutError as exc:
            raise ObjectStoreError(f"object store did not answer within {self._ping_timeout}s") from exc
        except _BACKEND_ERRORS as exc:
            raise _translate(exc, bucket, None) from exc

    async def ensure_bucket(self, bucket: str) -> None:
        # Operators provision S3 buckets; registering the bucket here only makes ping() probe a
        # bucket we actually use.
        self._store(bucket)


def create_object_store(
    provider: str, *, s3: S3Params | None = None, filesystem_root: Path | None = None
) -> ObjectStore:
    """Build the configured store once at start-up. `provider` is "s3", "filesystem" or "memory"."""
    kind = provider.strip().lower()
    if kind == "s3":
        if s3 is None:
            raise ValueError("the s3 object store needs S3Params")
        return S3ObjectStore.from_params(s3)
    if kind in ("filesystem", "fs", "local"):
        if filesystem_root is None:
            raise ValueError("the filesystem object store needs a root directory")
        return FilesystemObjectStore(filesystem_root)
    if kind in ("memory", "in-memory", "inmemory"):
        return MemoryObjectStore()
    raise ValueError(f"unknown object store provider {provider!r} (expected s3, filesystem or memory)")
