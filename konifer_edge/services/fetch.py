"""Resolving a fetch: one typed `FetchRequest` in, one `FetchOutcome` out.

Which assets a selector names (through the resolution cache), which variant answers them
(stored, or rendered now), where its bytes are, and the cache and generation facts the
answer reports. The HTTP layer parses the request (`http/targets.fetch_request`) and maps
the outcome to status, headers and body (`http/answers.py`); nothing here knows about headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

import msgspec

from konifer_edge.cache.bodies import body_key
from konifer_edge.config import PathSettings
from konifer_edge.domain.errors import NotFound
from konifer_edge.domain.models import Asset, Variant
from konifer_edge.domain.selectors import FetchSelector, ReturnFormat
from konifer_edge.domain.transformation import RequestedTransformation, query_parameters
from konifer_edge.services import delivery
from konifer_edge.services.delivery import DeliveryParts, LinkTarget
from konifer_edge.services.ports import (
    AssetLookup,
    AssetResolution,
    BodyCache,
    FetchObjects,
    FetchRecords,
    FetchResolutions,
    ObjectReads,
)
from konifer_edge.services.variants import ResolvedVariant, VariantParts, resolve_variant
from konifer_edge.storage.object_store import ObjectNotFound


class LookupParts(Protocol):
    """Asking the database, past every cache, whether an entry still exists."""

    @property
    def repository(self) -> AssetLookup: ...


class AssetParts(LookupParts, Protocol):
    """Resolving the assets a selector names: the cache, else the database."""

    @property
    def resolutions(self) -> AssetResolution: ...


class BodyParts(LookupParts, Protocol):
    """Reading a variant's bytes: the body cache, else the object store."""

    @property
    def bodies(self) -> BodyCache: ...
    @property
    def objects(self) -> ObjectReads: ...


class FetchParts(AssetParts, BodyParts, VariantParts, DeliveryParts, Protocol):
    """All a fetch reaches: its assets, their variants, where a link or redirect points, the bytes."""

    @property
    def repository(self) -> FetchRecords: ...
    @property
    def resolutions(self) -> FetchResolutions: ...
    @property
    def objects(self) -> FetchObjects: ...
    @property
    def bodies(self) -> BodyCache: ...


class FetchRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A fetch as the client asked for it: parsed and validated, nothing resolved yet."""

    path: str
    selector: FetchSelector
    settings: PathSettings
    raw_transformation: dict[str, str]
    """The transformation parameters as sent (a link and a redirect carry them on)."""
    requested: RequestedTransformation
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    accept: str | None = None
    """The `Accept` header, for negotiating the format where the request does not fix it."""
    base_url: str = ""
    """The base of the absolute URLs a link or a redirect hands out."""


class VariantBody(Protocol):
    """Where the bytes of the variant an answer sends are."""

    @property
    def variant(self) -> Variant: ...

    @property
    def key(self) -> str:
        """The body cache's key of these bytes."""
        ...

    @property
    def in_memory(self) -> bool:
        """Small enough to be read whole and kept in the body cache."""
        ...

    async def read(self) -> bytes: ...

    async def stream(self, byte_range: tuple[int, int] | None) -> AsyncIterator[bytes]: ...


class StoredBody:
    """Where a variant's bytes are: small ones through the body cache, else streamed from the store.

    Nothing is read until the answer asks, so a 304, a HEAD or a 416 never touches the store.
    """

    __slots__ = ("_assets", "_parts", "key", "variant")

    def __init__(self, parts: BodyParts, variant: Variant, assets: list[Asset]) -> None:
        self._parts = parts
        self._assets = assets
        self.variant = variant
        self.key = body_key(variant.bucket, variant.store_key)

    @property
    def in_memory(self) -> bool:
        return self.variant.size <= self._parts.bodies.max_body_bytes

    async def read(self) -> bytes:
        body = self._parts.bodies.get(self.key)
        if body is None:
            try:
                body = await self._parts.objects.read(self.variant.bucket, self.variant.store_key)
            except ObjectNotFound:
                await raise_if_deleted(self._parts, self._assets)
                raise
            self._parts.bodies.put(self.key, body)
        return body

    async def stream(self, byte_range: tuple[int, int] | None) -> AsyncIterator[bytes]:
        try:
            _, chunks = await self._parts.objects.stream(self.variant.bucket, self.variant.store_key, byte_range)
        except ObjectNotFound:
            await raise_if_deleted(self._parts, self._assets)
            raise
        return chunks


class FetchOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a fetch resolved to; `http/answers.py` maps it to status, headers and body."""

    request: FetchRequest
    assets: list[Asset]
    asset_outcome: str
    """The tier that knew the assets (memory, redis, database), for the access log."""
    generation: int | None = None
    """The path's generation the assets were resolved at; None when it is unknown."""
    variants: list[ResolvedVariant] = msgspec.field(default_factory=list)
    """Link: one per asset. Content and download (and a redirect we serve ourselves): the one sent."""
    links: list[LinkTarget] = msgspec.field(default_factory=list)
    """Link: where each asset's link points."""
    location: str | None = None
    """Redirect: where it sends the client; None when the variant is served here instead."""
    body: VariantBody | None = None
    """Content: where the variant's bytes are."""

    @property
    def cache_outcome(self) -> str:
        """The tier that answered: the variant's, where one was resolved, else the assets'."""
        if len(self.variants) == 1 and not self.request.selector.many and self.variants[0].source:
            return self.variants[0].source
        return self.asset_outcome


async def resolve_fetch(
    parts: FetchParts, fetch: FetchRequest, assets_found: Callable[[str], None] | None = None
) -> FetchOutcome:
    """The outcome of a fetch: assets, and for link, content and redirect the variant.

    ``assets_found`` hears which tier knew the assets as soon as they are known, so that a
    fetch that fails later (a render, a deleted entry) is still counted by it.
    """
    assets, outcome, generation = await resolve_assets(parts, fetch.path, fetch.selector, fetch.labels)
    if assets_found is not None:
        assets_found(outcome)
    return await resolve_variants(parts, fetch, assets, outcome, generation)


async def resolve_variants(
    parts: FetchParts, fetch: FetchRequest, assets: list[Asset], asset_outcome: str, generation: int | None = None
) -> FetchOutcome:
    """The rest of a fetch once its assets are known (share links resolve their own asset)."""
    resolved = FetchOutcome(request=fetch, assets=assets, asset_outcome=asset_outcome, generation=generation)
    return_format = fetch.selector.return_format
    if return_format.is_metadata:
        return resolved
    try:
        if return_format is ReturnFormat.LINK:
            return await _links(parts, resolved)
        if return_format is ReturnFormat.REDIRECT:
            return await _redirect(parts, resolved)
        return await _content(parts, resolved)
    except ObjectNotFound:
        # The entry was resolved, then deleted before its bytes were read (its objects go right
        # after the delete commits): the 404 it now is, not a storage failure.
        await raise_if_deleted(parts, assets)
        raise


async def _links(parts: FetchParts, resolved: FetchOutcome) -> FetchOutcome:
    fetch = resolved.request
    variants = []
    links = []
    for asset in resolved.assets:
        variant = await resolve_variant(parts, fetch.settings, asset, fetch.requested, accept=None)
        target = await delivery.link_target(
            parts, fetch.settings, fetch.base_url, asset, variant.variant, _link_parameters(fetch, variant)
        )
        variants.append(variant)
        links.append(target)
    return msgspec.structs.replace(resolved, variants=variants, links=links)


def _link_parameters(fetch: FetchRequest, resolved: ResolvedVariant) -> dict[str, str] | None:
    """The canonical parameters a link carries; the format only when the request fixed it."""
    if not fetch.raw_transformation or resolved.plan is None:
        return None
    params = query_parameters(resolved.plan)
    if fetch.requested.format is None:
        del params["format"]
    return params


async def _redirect(parts: FetchParts, resolved: FetchOutcome) -> FetchOutcome:
    fetch = resolved.request
    asset = resolved.assets[0]
    if fetch.settings.return_format.redirect.strategy is None:
        # Our own content URL negotiates and renders by itself; nothing to resolve here.
        location = delivery.own_content_url(parts, fetch.settings, fetch.base_url, asset, fetch.raw_transformation)
        return msgspec.structs.replace(resolved, location=location)
    variant = await resolve_variant(parts, fetch.settings, asset, fetch.requested, accept=fetch.accept)
    target = await delivery.object_store_target(parts, fetch.settings, variant.variant)
    if target is None:
        return _with_body(parts, resolved, variant)
    return msgspec.structs.replace(resolved, variants=[variant], location=target)


async def _content(parts: FetchParts, resolved: FetchOutcome) -> FetchOutcome:
    fetch = resolved.request
    variant = await resolve_variant(parts, fetch.settings, resolved.assets[0], fetch.requested, accept=fetch.accept)
    return _with_body(parts, resolved, variant)


def _with_body(parts: BodyParts, resolved: FetchOutcome, variant: ResolvedVariant) -> FetchOutcome:
    body = StoredBody(parts, variant.variant, resolved.assets)
    return msgspec.structs.replace(resolved, variants=[variant], body=body)


async def resolve_assets(
    parts: AssetParts, path: str, selector: FetchSelector, labels: dict[str, str]
) -> tuple[list[Asset], str, int | None]:
    """The assets a selector names, newest first, which cache tier answered, and the path's generation.

    One-asset selectors that find nothing are 404.
    """

    async def load() -> list[Asset]:
        if selector.entry_id is not None:
            asset = await parts.repository.find_entry(path, selector.entry_id)
            return [] if asset is None or not _has_labels(asset, labels) else [asset]
        return await parts.repository.find_newest(path, selector.order, selector.limit, labels)

    selector_key = f"{selector.entry_id}|{selector.order.value}|{selector.limit}|{sorted(labels.items())}"
    # Metadata lists variants, so it alone must also follow renders (cache/resolution.py).
    assets, outcome, generation = await parts.resolutions.assets(
        path, selector_key, load, with_variants=selector.return_format.is_metadata
    )
    if not assets and not selector.many:
        if selector.entry_id is not None:
            raise NotFound(f"No asset with entry id {selector.entry_id} at {path}", reason="asset_not_found")
        raise NotFound(f"No asset at {path} matches the request", reason="asset_not_found")
    return assets, outcome, generation


def _has_labels(asset: Asset, labels: dict[str, str]) -> bool:
    return all(asset.labels.get(key) == value for key, value in labels.items())


async def raise_if_deleted(parts: LookupParts, assets: list[Asset]) -> None:
    """NotFound if one of these resolved assets has been deleted since (asked of the database, past every cache)."""
    for asset in assets:
        if await parts.repository.find_entry(asset.path, asset.entry_id) is None:
            raise NotFound(f"The entry {asset.entry_id} at {asset.path} was deleted", reason="asset_not_found")
