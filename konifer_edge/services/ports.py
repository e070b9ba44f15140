"""The ports: what the services call on the infrastructure, each as a narrow `typing.Protocol`.

A service states the parts it needs in these terms, not as the classes built at start-up
(`storage/repository.py`, `storage/object_store.py`, `cache/`, `imaging/`). That keeps each
service's reach visible in its signature, and lets a part be replaced by anything with the same
methods. The ports live here, beside their callers, because they are shaped by what the services
use: a backend package declares what all its backends offer (`storage.object_store.ObjectStore`,
`cache.shared.SharedState`, `cache.generations.Generations`), a port only the slice a service calls.

The implementations do not import this module; they match the ports by their methods alone, and
mypy checks that they do wherever `services.runtime.Runtime` is handed to a service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, ParamSpec, Protocol, TypeVar

from konifer_edge.config.rules import RuleDefinition, UploadRuleset
from konifer_edge.domain.listing import ChildrenQuery, ListingCursor, ListingQuery
from konifer_edge.domain.models import Asset, Variant
from konifer_edge.domain.selectors import DeleteSelector, Order
from konifer_edge.domain.shares import Share
from konifer_edge.imaging.original import ExaminedOriginal, OriginalJob
from konifer_edge.imaging.pool import Lane
from konifer_edge.rules.decision import Decision
from konifer_edge.rules.scoring import RuleScore
from konifer_edge.sources.s3_object import S3ObjectSource
from konifer_edge.storage.object_store import StoredObject
from konifer_edge.storage.repository import AgingVariant, ChildPath, DeletedAssets, NewAsset, NewVariant, ObjectRef
from konifer_edge.storage.shares import NewShare

P = ParamSpec("P")
T = TypeVar("T")

# -- the repository (storage/repository.py, storage/shares.py) -------------------------------------


class AssetLookup(Protocol):
    async def find_entry(self, path: str, entry_id: int) -> Asset | None: ...

    async def find_newest(self, path: str, order: Order, limit: int, labels: dict[str, str]) -> list[Asset]: ...


class AssetRecords(Protocol):
    """Recording a stored original."""

    async def create(self, asset: NewAsset, original: NewVariant) -> Asset: ...


class MetadataRecords(Protocol):
    async def update_metadata(
        self, path: str, entry_id: int, alt: str | None, labels: dict[str, str], tags: list[str], now: datetime
    ) -> Asset | None: ...


class AssetDeletion(Protocol):
    async def delete(self, path: str, selector: DeleteSelector, labels: dict[str, str]) -> DeletedAssets: ...


class AssetListing(Protocol):
    async def list_page(self, query: ListingQuery) -> tuple[list[Asset], ListingCursor | None]: ...

    async def count(self, path: str, recursive: bool, labels: dict[str, str]) -> int: ...

    async def child_paths(self, query: ChildrenQuery) -> tuple[int, list[ChildPath]]: ...

    async def label_keys(self, path: str, limit: int) -> list[str]: ...

    async def find_entries(self, entries: Sequence[tuple[str, int]]) -> list[Asset]: ...


class VariantRecords(Protocol):
    """Finding a rendered variant, and recording one."""

    async def find_variant(self, asset_id: uuid.UUID, transformation_key: str) -> Variant | None: ...

    async def variant_keys(self, asset_id: uuid.UUID, limit: int) -> list[str]:
        """The transformation keys of the asset's stored variants, at most ``limit`` of them."""
        ...

    async def add_variant(self, asset_id: uuid.UUID, variant: NewVariant, now: datetime) -> Variant | None: ...


class FetchRecords(AssetLookup, VariantRecords, Protocol):
    """A fetch finds its assets, then their variants."""


class VariantAging(Protocol):
    """Access times and expiry of variants."""

    async def touch_variants(self, variant_ids: Sequence[uuid.UUID], now: datetime) -> None: ...

    async def aging_variants(self, older_than: datetime, batch: int) -> list[AgingVariant]: ...

    async def delete_variants(self, variant_ids: Sequence[uuid.UUID]) -> list[ObjectRef]: ...


class ShareRecords(Protocol):
    async def create(self, share: NewShare) -> Share | None: ...

    async def find_by_token(self, digest: bytes) -> Share | None: ...

    async def find(self, share_id: uuid.UUID) -> Share | None: ...

    async def for_asset(self, asset_id: uuid.UUID) -> list[Share]: ...

    async def at_path(self, path: str) -> list[Share]: ...

    async def revoke(self, share_id: uuid.UUID, now: datetime) -> Share | None: ...

    async def claim_download(self, share_id: uuid.UUID, now: datetime) -> Share | None: ...


# -- the object store (storage/object_store.py) ----------------------------------------------------


class ObjectRemoval(Protocol):
    async def delete(self, bucket: str, key: str) -> None: ...


class ObjectWrites(ObjectRemoval, Protocol):
    """Putting an object, and taking it back when its row could not be written."""

    async def put(self, bucket: str, key: str, data: bytes | memoryview, content_type: str) -> None: ...


class ObjectReads(Protocol):
    async def read(self, bucket: str, key: str) -> bytes: ...

    async def stream(
        self, bucket: str, key: str, byte_range: tuple[int, int] | None = None
    ) -> tuple[StoredObject, AsyncIterator[bytes]]: ...


class RenderObjects(ObjectReads, ObjectWrites, Protocol):
    """A render reads the original and puts the variant beside it."""


class Presigning(Protocol):
    async def presigned_get_url(self, bucket: str, key: str, ttl: timedelta) -> str | None: ...


class FetchObjects(RenderObjects, Presigning, Protocol):
    """A fetch renders, reads the bytes it sends, and presigns where a redirect strategy says so."""


# -- the caches (cache/resolution.py, cache/shared.py, cache/single_flight.py) ----------------------


class Invalidation(Protocol):
    """Making every node forget what it cached for these paths (their generations move on)."""

    async def invalidate(self, paths: Iterable[str]) -> None: ...


class VariantCache(Invalidation, Protocol):
    async def variant(
        self, path: str, asset: Asset, plan_key: str, load: Callable[[], Awaitable[Variant | None]]
    ) -> tuple[Variant | None, str]: ...

    async def variant_added(self, path: str, asset_id: uuid.UUID, plan_key: str) -> None:
        """A render added a variant: what lists variants (metadata) is retired everywhere, nothing else."""
        ...

    def known_variant_keys(self, generation: int, asset_id: uuid.UUID) -> frozenset[str] | None:
        """Every stored variant key of the asset as of the path's combined ``generation``, if this worker knows them."""
        ...

    def know_variant_keys(self, generation: int, asset_id: uuid.UUID, keys: frozenset[str]) -> None: ...

    async def generation(self, path: str, *, with_variants: bool = False) -> int | None:
        """The path's generation (with its variants generation); None when it cannot be told now."""
        ...


class AssetResolution(Protocol):
    """The assets a selector names at a path: which tier knew them, and the path's generation."""

    async def assets(
        self,
        path: str,
        selector_key: str,
        load: Callable[[], Awaitable[list[Asset]]],
        *,
        with_variants: bool = False,
    ) -> tuple[list[Asset], str, int | None]: ...


class FetchResolutions(AssetResolution, VariantCache, Protocol):
    """A fetch resolves its assets, then their variants, through the same cache."""


class BodyKeeping(Protocol):
    """Keeping a small variant's bytes in memory (cache/bodies.py), so its first answer reads nothing back."""

    def put(self, key: str, body: bytes) -> None: ...


class BodyMemory(BodyKeeping, Protocol):
    """Bytes kept in memory by key, read back (cache/bodies.py)."""

    def get(self, key: str) -> bytes | None: ...


class BodyCache(BodyMemory, Protocol):
    """Reading a small variant's bytes from memory, and keeping them there once read."""

    @property
    def max_body_bytes(self) -> int: ...


class RenderLocks(Protocol):
    """The lock one node holds while it renders a variant, so that the others wait for its row."""

    async def try_lock(self, name: str, ttl_seconds: float) -> str | None: ...

    async def unlock(self, name: str, token: str) -> None: ...


class RenderFlights(Protocol):
    """Concurrent renders of one variant in this process, run once (`cache.single_flight.SingleFlight`)."""

    async def run(
        self, key: str, work: Callable[[], Awaitable[tuple[Variant, bool]]]
    ) -> tuple[tuple[Variant, bool], bool]: ...


# -- imaging (imaging/pool.py, imaging/decode_pool.py) and rules -----------------------------------


class RenderPool(Protocol):
    async def run_in(
        self, lane: Lane, key: str | None, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T: ...

    def eager_flight(self, key: str) -> AbstractContextManager[None]: ...

    def promote(self, key: str) -> None: ...


class Decoding(Protocol):
    async def examine(self, content: bytes, job: OriginalJob) -> ExaminedOriginal: ...


class RuleDecisions(Protocol):
    async def decide(self, ruleset: UploadRuleset, pixels: bytes) -> Decision: ...


class RuleScoring(Protocol):
    async def score(self, definitions: Sequence[RuleDefinition], pixels: bytes) -> dict[str, RuleScore]: ...


# -- the sources (sources/url.py, sources/s3_object.py) ---------------------------------------------


class UrlDownloads(Protocol):
    async def download(self, url: str) -> bytes: ...


class S3ObjectDownloads(Protocol):
    async def download(self, source: S3ObjectSource) -> bytes: ...


# -- the services' own helpers (services/background.py, object_reaper.py, cdn.py) ------------------


class AccessNotes(Protocol):
    """Which variants were served, remembered for `idle` expiry."""

    def touch(self, variant: Variant) -> None: ...


class Spawning(Protocol):
    """Starting work that outlives the request (`services.background.BackgroundTasks`)."""

    def spawn(self, work: Coroutine[Any, Any, None], *, finish: bool = False) -> None:
        """``finish``: shutdown lets it end (a while) rather than cancelling it at once."""
        ...


class ReaperSignal(Protocol):
    """Telling the object reaper that removals were queued."""

    def wake(self) -> None: ...


class CdnPurge(Protocol):
    def purge(self, tags: Iterable[str], reason: str) -> None: ...
