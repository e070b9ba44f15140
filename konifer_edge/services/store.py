"""Storing an asset: examine the bytes in a decode process, put the object, then record the row.

The object goes first: a crash before the row is written leaves an orphan object
that a sweep can remove, never a row that points at nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
import msgspec

from konifer_edge.config import AssetLimits, PathSettings
from konifer_edge.domain.errors import Forbidden
from konifer_edge.domain.formats import new_store_key
from konifer_edge.domain.metadata_rules import validate_metadata
from konifer_edge.domain.models import Asset, AssetMetadataInput, AssetSource
from konifer_edge.domain.transformation import parse_transformation
from konifer_edge.imaging.original import OriginalJob, Preprocessing
from konifer_edge.imaging.probe import ProbeLimits, sniff
from konifer_edge.rules.decision import merge_labels
from konifer_edge.services.ports import AssetRecords, Decoding, RuleDecisions, Spawning, VariantRecords
from konifer_edge.services.upload_rules import apply_upload_rules, needs_pixels
from konifer_edge.services.variants import ConfiguredVariantParts, render_eager_variants
from konifer_edge.storage.repository import NewAsset, NewVariant

log = logging.getLogger(__name__)


class StoreRecords(AssetRecords, VariantRecords, Protocol):
    """Recording the original, and (for eager renders) its variants."""


class StoreParts(ConfiguredVariantParts, Protocol):
    """A store reaches what an eager render does, plus the decode processes, the rules and the row of the asset."""

    @property
    def repository(self) -> StoreRecords: ...
    @property
    def decoding(self) -> Decoding: ...
    @property
    def rules(self) -> RuleDecisions | None: ...
    @property
    def upkeep(self) -> Spawning: ...


class StoreRequest(msgspec.Struct, frozen=True):
    path: str
    metadata: AssetMetadataInput
    content: bytes
    source: AssetSource
    source_url: str | None = None


def probe_limits(limits: AssetLimits) -> ProbeLimits:
    """An original's limits as the decoder checks them, before any pixel is decoded."""
    return ProbeLimits(
        max_width=limits.max_width,
        max_height=limits.max_height,
        max_pixels=limits.max_pixels,
        max_frames=limits.max_pages,
        max_pixels_per_frame=limits.max_pixels_per_page,
    )


def _original_job(
    settings: PathSettings, profiles: Mapping[str, Mapping[str, str]], *, rule_pixels: bool
) -> OriginalJob:
    limits = settings.limits
    preprocessing = None
    if settings.transform.preprocessing_enabled:
        configured = settings.transform.preprocessing
        preprocessing = Preprocessing(
            requested=parse_transformation(configured.params, profiles),
            max_width=configured.max_width,
            max_height=configured.max_height,
        )
    return OriginalJob(
        limits=probe_limits(limits),
        lqip_kinds=settings.image.lqip,
        preprocessing=preprocessing,
        rule_pixels=rule_pixels,
    )


async def store_asset(parts: StoreParts, request: StoreRequest) -> Asset:
    validate_metadata(request.metadata)
    settings = parts.config.paths.resolve(request.path)
    _check_allowed(settings, request.path, sniff(request.content).mime_type)
    ruleset = settings.upload_ruleset
    job = _original_job(settings, parts.config.variant_profiles, rule_pixels=needs_pixels(ruleset))
    examined = await parts.decoding.examine(request.content, job)
    # Decided before anything is stored or counted: a rejected upload leaves no object, no row, no entry id.
    # The rules score the upload as sent (its pixels are taken from the original in the same decode
    # as preprocessing), so preprocessing never changes a decision; one decode serves both.
    rule_labels = await apply_upload_rules(parts.rules, ruleset, examined.rule_pixels)
    metadata = request.metadata
    if rule_labels:
        metadata = validate_metadata(
            msgspec.structs.replace(metadata, labels=merge_labels(metadata.labels, rule_labels))
        )
    content = request.content if examined.processed is None else examined.processed
    probed = examined.probed
    mime_type = probed.format.mime_type
    bucket = settings.object_store.bucket
    store_key = new_store_key(probed.format)
    await parts.objects.put(bucket, store_key, content, mime_type)
    now = datetime.now(UTC)
    try:
        asset = await parts.repository.create(
            NewAsset(
                path=request.path,
                alt=metadata.alt,
                labels=metadata.labels,
                tags=metadata.tags,
                source=request.source,
                source_url=request.source_url,
                created_at=now,
            ),
            NewVariant(
                transformation_key="",
                transformation=None,
                bucket=bucket,
                store_key=store_key,
                attributes=probed.attributes,
                content_type=mime_type,
                size=len(content),
                content_hash=examined.content_hash,
                lqip=examined.lqip,
            ),
        )
    except BaseException as error:
        if not _may_have_committed(error):
            with contextlib.suppress(Exception):
                await parts.objects.delete(bucket, store_key)
        raise
    await parts.resolutions.invalidate([request.path])
    if settings.transform.eager_variants:
        parts.upkeep.spawn(render_eager_variants(parts, asset))
    return asset


# A connection that was never made: nothing reached the database.
_NOT_CONNECTED = (
    FileNotFoundError,
    ConnectionRefusedError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionRejectionError,
)
# Errors PostgreSQL itself may send about the connection rather than the statement.
_CONNECTION_LEVEL = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError)


def _may_have_committed(error: BaseException) -> bool:
    """Whether the row may exist although recording it failed.

    Only two failures prove that nothing was written: a connection that was never made, and an
    error the server answered a statement with (the transaction then rolled back). Anything else,
    such as a connection lost after COMMIT went out, a cancelled request or a confused client
    protocol, leaves the outcome unknown. Then the object must stay, because deleting it could leave
    a committed row pointing at nothing; if no row names it after all, `sweep` removes the orphan.
    """
    if isinstance(error, _NOT_CONNECTED):
        return False
    if isinstance(error, asyncpg.PostgresError):
        return isinstance(error, _CONNECTION_LEVEL)
    return True


def _check_allowed(settings: PathSettings, path: str, mime_type: str) -> None:
    allowed = settings.allowed_content_types
    if allowed is not None and mime_type not in allowed:
        raise Forbidden(
            f"Content type {mime_type} is not allowed at {path}; allowed: {', '.join(allowed)}",
            reason="content_type_not_allowed",
        )
