"""Storing an asset: probe the bytes, put the object, then record the row.

The object goes first: a crash before the row is written leaves an orphan object
that a sweep can remove, never a row that points at nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import asyncpg
import msgspec

from konifer_edge.config import PathSettings
from konifer_edge.config.model import PreprocessingSettings
from konifer_edge.domain.errors import BadRequest, Forbidden
from konifer_edge.domain.metadata_rules import validate_metadata
from konifer_edge.domain.models import Asset, AssetMetadataInput, AssetSource, Attributes, Lqip
from konifer_edge.domain.transformation import (
    RequestedTransformation,
    is_identity,
    parse_transformation,
    plan_transformation,
)
from konifer_edge.imaging.lqip import compute_lqips, decode_thumbnail
from konifer_edge.imaging.probe import ProbedImage, ProbeLimits, probe, sniff
from konifer_edge.imaging.transform import render
from konifer_edge.imaging.vips import VIPS_ERRORS
from konifer_edge.services.runtime import Runtime
from konifer_edge.services.variant_upkeep import render_eager_variants
from konifer_edge.storage.repository import NewAsset, NewVariant

log = logging.getLogger(__name__)


class StoreRequest(msgspec.Struct, frozen=True):
    path: str
    metadata: AssetMetadataInput
    content: bytes
    source: AssetSource
    source_url: str | None = None


class PreparedOriginal(msgspec.Struct, frozen=True):
    content: bytes
    probed: ProbedImage
    content_hash: str
    lqip: Lqip


def _prepare_original(
    content: bytes, settings: PathSettings, profiles: Mapping[str, Mapping[str, str]]
) -> PreparedOriginal:
    """Probe the upload and, where the path preprocesses, replace it with its processed form."""
    limits = settings.limits
    probed = probe(
        content,
        ProbeLimits(
            max_width=limits.max_width,
            max_height=limits.max_height,
            max_pixels=limits.max_pixels,
            max_frames=limits.max_pages,
            max_pixels_per_frame=limits.max_pixels_per_page,
        ),
    )
    try:
        thumbnail = decode_thumbnail(content, probed.attributes.page_count)
    except VIPS_ERRORS as error:
        raise BadRequest(
            f"The {probed.format.short_name} image cannot be decoded: it is damaged or truncated",
            reason="undecodable_image",
        ) from error
    lqip_kinds = settings.image.lqip
    if settings.transform.preprocessing_enabled:
        requested = _preprocessing_request(settings.transform.preprocessing, probed.attributes, profiles)
        output_format = requested.format or probed.format
        plan = plan_transformation(requested, probed.attributes, output_format)
        if not is_identity(plan, probed.attributes, requested):
            rendered = render(content, probed.attributes.page_count, plan, lqip_kinds)
            return PreparedOriginal(
                content=rendered.data,
                probed=ProbedImage(format=output_format, attributes=rendered.attributes),
                content_hash=hashlib.sha256(rendered.data).hexdigest(),
                lqip=rendered.lqip,
            )
    return PreparedOriginal(
        content=content,
        probed=probed,
        content_hash=hashlib.sha256(content).hexdigest(),
        lqip=compute_lqips(thumbnail, lqip_kinds),
    )


def _preprocessing_request(
    preprocessing: PreprocessingSettings, original: Attributes, profiles: Mapping[str, Mapping[str, str]]
) -> RequestedTransformation:
    requested = parse_transformation(preprocessing.params, profiles)
    if requested.width is not None or requested.height is not None:
        return requested  # explicit sizes win over the maxima
    max_width, max_height = preprocessing.max_width, preprocessing.max_height
    width = max_width if max_width is not None and original.width > max_width else None
    height = max_height if max_height is not None and original.height > max_height else None
    return msgspec.structs.replace(requested, width=width, height=height)


async def store_asset(runtime: Runtime, request: StoreRequest) -> Asset:
    validate_metadata(request.metadata)
    settings = runtime.config.paths.resolve(request.path)
    upload_format = await runtime.imaging.run(sniff, request.content)
    _check_allowed(settings, request.path, upload_format.mime_type)
    prepared = await runtime.imaging.run(_prepare_original, request.content, settings, runtime.config.variant_profiles)
    probed, content_hash = prepared.probed, prepared.content_hash
    mime_type = probed.format.mime_type
    bucket = settings.object_store.bucket
    store_key = str(uuid.uuid4())
    await runtime.objects.put(bucket, store_key, prepared.content, mime_type)
    now = datetime.now(UTC)
    try:
        asset = await runtime.repository.create(
            NewAsset(
                path=request.path,
                alt=request.metadata.alt,
                labels=request.metadata.labels,
                tags=request.metadata.tags,
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
                size=len(prepared.content),
                content_hash=content_hash,
                lqip=prepared.lqip,
            ),
        )
    except BaseException as error:
        if not _may_have_committed(error):
            with contextlib.suppress(Exception):
                await runtime.objects.delete(bucket, store_key)
        raise
    await runtime.resolutions.invalidate([request.path])
    if settings.transform.eager_variants:
        runtime.upkeep.spawn(render_eager_variants(runtime, asset))
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
