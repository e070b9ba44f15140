"""Storing an asset: probe the bytes, put the object, then record the row.

The object goes first: a crash before the row is written leaves an orphan object
that a sweep can remove, never a row that points at nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from datetime import UTC, datetime

import msgspec

from konifer_edge.domain.errors import UnsupportedMediaType
from konifer_edge.domain.metadata_rules import validate_metadata
from konifer_edge.domain.models import Asset, AssetMetadataInput, AssetSource
from konifer_edge.imaging.probe import ProbedImage, probe
from konifer_edge.services.runtime import Runtime
from konifer_edge.storage.repository import NewAsset, NewVariant

log = logging.getLogger(__name__)


class StoreRequest(msgspec.Struct, frozen=True):
    path: str
    metadata: AssetMetadataInput
    content: bytes
    source: AssetSource
    source_url: str | None = None


def _probe_and_hash(content: bytes) -> tuple[ProbedImage, str]:
    probed = probe(content)
    return probed, hashlib.sha256(content).hexdigest()


async def store_asset(runtime: Runtime, request: StoreRequest) -> Asset:
    validate_metadata(request.metadata)
    settings = runtime.config.paths.resolve(request.path)
    probed, content_hash = await runtime.imaging.run(_probe_and_hash, request.content)
    mime_type = probed.format.mime_type
    allowed = settings.allowed_content_types
    if allowed is not None and mime_type not in allowed:
        raise UnsupportedMediaType(
            f"Content type {mime_type} is not allowed at {request.path}; allowed: {', '.join(allowed)}",
            reason="content_type_not_allowed",
        )
    bucket = settings.object_store.bucket
    store_key = str(uuid.uuid4())
    await runtime.objects.put(bucket, store_key, request.content, mime_type)
    now = datetime.now(UTC)
    try:
        return await runtime.repository.create(
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
                size=len(request.content),
                content_hash=content_hash,
            ),
        )
    except BaseException:
        with contextlib.suppress(Exception):
            await runtime.objects.delete(bucket, store_key)
        raise
