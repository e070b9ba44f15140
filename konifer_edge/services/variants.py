"""Resolving the variant that answers a request: stored already, or rendered once and stored.

A request's transformation is planned against the original, named by its canonical
key, and looked up. Only a miss renders, and concurrent misses for one key share a
single render.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from datetime import UTC, datetime
from typing import Final, Protocol

import msgspec

from konifer_edge.cache.bodies import body_key
from konifer_edge.config import Config, PathSettings
from konifer_edge.domain.errors import BadRequest, NotFound
from konifer_edge.domain.formats import ImageFormat, new_store_key
from konifer_edge.domain.models import Asset, Lqip, Variant
from konifer_edge.domain.negotiation import choose_format
from konifer_edge.domain.transformation import (
    ANIMATED_FORMATS,
    Plan,
    RequestedTransformation,
    is_identity,
    keeps_placeholders,
    parse_transformation,
    plan_transformation,
)
from konifer_edge.imaging.pool import EAGER, SYNCHRONOUS, Lane
from konifer_edge.imaging.transform import render
from konifer_edge.observability import metrics
from konifer_edge.services.ports import (
    AccessNotes,
    BodyKeeping,
    BodyMemory,
    RenderFlights,
    RenderLocks,
    RenderObjects,
    RenderPool,
    Spawning,
    VariantCache,
    VariantRecords,
)
from konifer_edge.storage.repository import NewVariant

log = logging.getLogger(__name__)

# A render holding the lock longer than this is presumed dead and others render themselves.
RENDER_LOCK_SECONDS = 30.0
_POLL_SECONDS = 0.05


class VariantParts(Protocol):
    """What resolving a variant reaches: where variants are known, and what renders and stores one."""

    @property
    def repository(self) -> VariantRecords: ...
    @property
    def resolutions(self) -> VariantCache: ...
    @property
    def objects(self) -> RenderObjects: ...
    @property
    def imaging(self) -> RenderPool: ...
    @property
    def renders(self) -> RenderFlights: ...
    @property
    def shared(self) -> RenderLocks: ...
    @property
    def access(self) -> AccessNotes: ...
    @property
    def bodies(self) -> BodyKeeping: ...
    @property
    def originals(self) -> BodyMemory: ...
    @property
    def upkeep(self) -> Spawning: ...


class ConfiguredVariantParts(VariantParts, Protocol):
    """Resolving variants together with the configuration that says which (paths' settings, profiles)."""

    @property
    def config(self) -> Config: ...


class ResolvedVariant(msgspec.Struct, frozen=True):
    variant: Variant
    cache_status: str  # "hit" or "miss", for K-Cache-Status
    negotiated: bool  # the format came from Accept, so the answer varies by it
    plan: Plan | None = None
    source: str | None = None  # the tier that knew the variant (memory, redis, database) or "rendered"


def check_on_demand_mode(settings: PathSettings, raw_params: dict[str, str]) -> None:
    """Refuse transformations the path's on-demand mode does not allow, before anything is resolved."""
    mode = settings.transform.on_demand_mode
    if mode == "enabled" or not raw_params:
        return
    if mode == "profile_only" and set(raw_params) != {"profile"}:
        raise BadRequest(
            "Only 'profile' may be given at this path (on-demand mode profile_only)",
            reason="transformation_not_allowed",
        )
    if mode == "disabled" and (
        set(raw_params) != {"profile"} or raw_params["profile"] not in settings.transform.eager_variants
    ):
        raise BadRequest(
            "This path serves only the original and its eager variants (on-demand mode disabled)",
            reason="transformation_not_allowed",
        )


async def resolve_variant(
    parts: VariantParts,
    settings: PathSettings,
    asset: Asset,
    requested: RequestedTransformation,
    accept: str | None,
    lane: Lane = SYNCHRONOUS,
) -> ResolvedVariant:
    """The variant ``requested`` names, stored or rendered now; eager renders pass ``lane=EAGER``."""
    original = asset.original
    original_format = ImageFormat.from_short_name(original.attributes.format)
    assert original_format is not None
    # Only a path that renders on demand may answer a browser's Accept with a new format.
    may_negotiate = settings.transform.on_demand_mode == "enabled" or requested.profile is not None
    animated = original.attributes.page_count > 1
    chosen = choose_format(
        requested.format,
        accept if may_negotiate else None,
        original_format,
        candidates=ANIMATED_FORMATS if animated else None,
    )
    negotiated = requested.format is None and may_negotiate
    if requested.is_empty and chosen.format is original_format:
        return ResolvedVariant(variant=original, cache_status="hit", negotiated=negotiated)
    plan = plan_transformation(requested, original.attributes, chosen.format)
    _check_output_limits(settings, plan)
    if is_identity(plan, original.attributes, requested):
        return ResolvedVariant(variant=original, cache_status="hit", negotiated=negotiated, plan=plan)
    variant, source = await _stored_or_rendered(parts, settings, asset, plan, lane)
    rendered_here = source == "rendered"
    metrics.LOOKUPS.add(("miss" if rendered_here else "hit",))
    parts.access.touch(variant)
    return ResolvedVariant(
        variant=variant,
        cache_status="miss" if rendered_here else "hit",
        negotiated=negotiated,
        plan=plan,
        source=source,
    )


def check_transformation(settings: PathSettings, asset: Asset, requested: RequestedTransformation) -> None:
    """Plan ``requested`` against ``asset`` as a fetch without Accept would, refusing what the path's limits refuse.

    For checking a transformation that will be applied later (a share's) without rendering it now.
    """
    original = asset.original
    original_format = ImageFormat.from_short_name(original.attributes.format)
    assert original_format is not None
    animated = original.attributes.page_count > 1
    chosen = choose_format(requested.format, None, original_format, candidates=ANIMATED_FORMATS if animated else None)
    _check_output_limits(settings, plan_transformation(requested, original.attributes, chosen.format))


def _check_output_limits(settings: PathSettings, plan: Plan) -> None:
    limits = settings.transform.limits
    width, height = plan.width + 2 * plan.pad, plan.height + 2 * plan.pad
    if width > limits.max_width or height > limits.max_height or width * height > limits.max_pixels:
        raise BadRequest(
            f"The requested output {width}x{height} is larger than this path allows"
            f" ({limits.max_width}x{limits.max_height}, {limits.max_pixels} pixels)",
            reason="output_too_large",
        )


async def _stored_or_rendered(
    parts: VariantParts, settings: PathSettings, asset: Asset, plan: Plan, lane: Lane
) -> tuple[Variant, str]:
    """The stored variant and where it came from: "rendered" only for the request that rendered it."""
    listed_before: int | None = None

    async def from_database() -> Variant | None:
        nonlocal listed_before
        # Every render at the path moves this before its lock is released (on this node at once); read
        # only when the caches missed, so that a hit costs nothing more.
        listed_before = await parts.resolutions.generation(asset.path, with_variants=True)
        return await _stored_variant(parts, asset, plan.key, listed_before)

    existing, tier = await parts.resolutions.variant(asset.path, asset, plan.key, from_database)
    if existing is not None:
        return existing, tier

    async def render_unless_stored() -> tuple[Variant, bool]:
        # The database missed a moment ago. A render still running here is joined through the single
        # flight, one elsewhere is caught by its lock below, and one that ended in between (its lock
        # already released) moved the path's variants generation: only then is the database asked
        # again. Across nodes, whose announcements arrive a moment later, the row insert settles ties.
        lock_name = f"render:{asset.id}:{plan.key}"
        token = await parts.shared.try_lock(lock_name, RENDER_LOCK_SECONDS)
        if token is None:
            rendered_elsewhere = await _wait_for_variant(parts, asset, plan.key)
            if rendered_elsewhere is not None:
                return rendered_elsewhere, False
        try:
            listed_now = await parts.resolutions.generation(asset.path, with_variants=True)
            if listed_before is None or listed_now != listed_before:
                stored_meanwhile = await parts.repository.find_variant(asset.id, plan.key)
                if stored_meanwhile is not None:
                    return stored_meanwhile, False
            # Without the lock here, its holder vanished: render anyway; the row insert settles ties.
            return await _render_and_store(parts, settings, asset, plan, lane, flight), True
        finally:
            if token is not None:
                # The row is in (or the render failed): whoever waits polls for the row, not the lock,
                # so releasing it need not hold up this answer.
                parts.upkeep.spawn(_unlock(parts, lock_name, token), finish=True)

    flight = f"{asset.id}:{plan.key}"
    if lane == EAGER:
        with parts.imaging.eager_flight(flight):
            (variant, rendered), leader = await parts.renders.run(flight, render_unless_stored)
    else:
        # Waiting for an eager render still queued would put this request behind background work.
        parts.imaging.promote(flight)
        (variant, rendered), leader = await parts.renders.run(flight, render_unless_stored)
    return variant, "rendered" if rendered and leader else "database"


async def _stored_variant(parts: VariantParts, asset: Asset, key: str, generation: int | None) -> Variant | None:
    """The stored variant ``key`` of ``asset``, from the database unless this worker knows it is not there.

    The asset's variant keys, read at the path's combined ``generation``, say which variants exist
    until that generation moves; this worker's own renders carry them on (`variant_added`). So the
    first requests of several widths of one image (a page's `srcset`) ask the database once, not
    once each. An asset with very many variants is not listed.
    """
    if generation is None:
        return await parts.repository.find_variant(asset.id, key)
    known = parts.resolutions.known_variant_keys(generation, asset.id)
    if known is None:
        keys = await parts.repository.variant_keys(asset.id, _MOST_KNOWN_KEYS + 1)
        if len(keys) > _MOST_KNOWN_KEYS:
            return await parts.repository.find_variant(asset.id, key)
        known = frozenset(keys)
        parts.resolutions.know_variant_keys(generation, asset.id, known)
    return await parts.repository.find_variant(asset.id, key) if key in known else None


# An asset with more variants than this is looked up variant by variant: its listing would cost more than it saves.
_MOST_KNOWN_KEYS: Final = 200


async def _unlock(parts: VariantParts, name: str, token: str) -> None:
    try:
        await parts.shared.unlock(name, token)
    except Exception:
        # A lock not released expires (Redis) or goes with its connection (PostgreSQL).
        log.warning("could not release the render lock %s", name, exc_info=True)


async def _wait_for_variant(parts: VariantParts, asset: Asset, key: str) -> Variant | None:
    deadline = asyncio.get_running_loop().time() + RENDER_LOCK_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(_POLL_SECONDS)
        variant = await parts.repository.find_variant(asset.id, key)
        if variant is not None:
            return variant
    return None


async def _render_and_store(
    parts: VariantParts, settings: PathSettings, asset: Asset, plan: Plan, lane: Lane, flight: str
) -> Variant:
    original = asset.original
    source = await _original_bytes(parts, original)
    lqip_kinds = settings.image.lqip
    copied = _copied_placeholders(original, plan, lqip_kinds)
    async with metrics.timed(metrics.RENDER_DURATION, plan.format.short_name):
        rendered = await parts.imaging.run_in(
            lane, flight, render, source, original.attributes.page_count, plan, () if copied else lqip_kinds
        )
    if copied is not None:
        rendered = msgspec.structs.replace(rendered, lqip=copied)
    metrics.RENDERS.labels(plan.format.short_name).inc()
    del source
    store_key = new_store_key(plan.format)
    await parts.objects.put(original.bucket, store_key, rendered.data, plan.format.mime_type)
    record = NewVariant(
        transformation_key=plan.key,
        transformation=plan.spelled_out(rendered.source_color_space),
        bucket=original.bucket,
        store_key=store_key,
        attributes=rendered.attributes,
        content_type=plan.format.mime_type,
        size=len(rendered.data),
        content_hash=_hash(rendered.data),
        lqip=rendered.lqip,
    )
    variant = await parts.repository.add_variant(asset.id, record, datetime.now(UTC))
    if variant is not None:
        # The answer that asked for this render needs these bytes next: keep them rather than read
        # back what was just written.
        parts.bodies.put(body_key(original.bucket, store_key), rendered.data)
        # The asset's metadata lists its variants; it must list this one now. Nothing else changed:
        # which asset each selector names, and every other variant, stay resolved and recorded.
        await parts.resolutions.variant_added(asset.path, asset.id, plan.key)
        return variant
    # Another node stored it first (or the asset was deleted meanwhile): keep theirs.
    with contextlib.suppress(Exception):
        await parts.objects.delete(original.bucket, store_key)
    existing = await parts.repository.find_variant(asset.id, plan.key)
    if existing is None:
        raise NotFound(f"The entry {asset.entry_id} at {asset.path} was deleted", reason="asset_not_found")
    return existing


def _copied_placeholders(original: Variant, plan: Plan, kinds: tuple[str, ...]) -> Lqip | None:
    """The original's LQIPs for a variant that only scales it, when it has every kind the path wants.

    Computing them adds 40-55% to a render; an original stored before the path enabled a kind has
    none of it, and its variants then compute their own.
    """
    if not kinds or not keeps_placeholders(plan, original.attributes):
        return None
    found = {kind: getattr(original.lqip, kind) for kind in kinds}
    if any(value is None for value in found.values()):
        return None
    return Lqip(**found)


async def _original_bytes(parts: VariantParts, original: Variant) -> bytes:
    """The original's encoded bytes, from memory when a render read them a moment ago.

    Encoded, not decoded: libvips decodes a JPEG at the scale it needs (shrink-on-load), which
    costs less than resizing a full decode kept in memory.
    """
    key = body_key(original.bucket, original.store_key)
    kept = parts.originals.get(key)
    if kept is not None:
        return kept
    source = await parts.objects.read(original.bucket, original.store_key)
    parts.originals.put(key, source)
    return source


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def render_eager_variants(parts: ConfiguredVariantParts, asset: Asset) -> None:
    """Best effort: a failed eager render is simply rendered on demand later."""
    settings = parts.config.paths.resolve(asset.path)
    for profile in settings.transform.eager_variants:
        try:
            requested = parse_transformation({"profile": profile}, parts.config.variant_profiles)
            await resolve_variant(parts, settings, asset, requested, accept=None, lane=EAGER)
        except Exception:
            log.warning("eager variant %r of %s#%d failed", profile, asset.path, asset.entry_id, exc_info=True)
