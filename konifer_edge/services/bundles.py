"""ZIP bundles of many images, streamed as they are read from the object store.

Everything that can fail for a reason the client should hear (an unknown asset, a bad
transformation, a bundle over its limits, a render refused) is settled before the first
byte, while the answer can still be a 4xx or 503. The archive itself is never held in
memory: each image is copied chunk by chunk from the store into the ZIP writer, and what
the writer produced is sent on after every chunk. Images are stored, not deflated: they
are compressed already, and storing keeps the CPU out of the hot loop.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.models import Asset, Variant
from konifer_edge.domain.transformation import parse_transformation
from konifer_edge.services.ports import ObjectReads
from konifer_edge.services.variants import ConfiguredVariantParts, check_on_demand_mode, resolve_variant

# ZIP dates start in 1980; anything earlier cannot be written.
_ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)


class BundleReads(Protocol):
    @property
    def objects(self) -> ObjectReads: ...


class BundleEntry(msgspec.Struct, frozen=True):
    name: str
    variant: Variant
    modified: datetime


def entry_name(asset: Asset, variant: Variant) -> str:
    """`users/123/0.jpg`: the asset's path, its entry id and the format it is sent in."""
    folder = asset.path.strip("/")
    file_name = f"{asset.entry_id}.{variant.attributes.format}"
    return f"{folder}/{file_name}" if folder else file_name


async def plan_bundle(
    parts: ConfiguredVariantParts, assets: list[Asset], raw_transformation: dict[str, str]
) -> list[BundleEntry]:
    """Resolve (rendering where needed) the image of every asset, and check the bundle's limits."""
    limits = parts.config.bundle
    if len(assets) > limits.max_entries:
        raise BadRequest(
            f"A bundle holds at most {limits.max_entries} images; this one would hold {len(assets)}",
            reason="bundle_too_large",
        )
    requested = parse_transformation(raw_transformation, parts.config.variant_profiles)
    entries: list[BundleEntry] = []
    total = 0
    for asset in assets:
        settings = parts.config.paths.resolve(asset.path)
        check_on_demand_mode(settings, raw_transformation)
        # Renders one at a time: a bundle takes one slot of the render queue, not all of it.
        resolved = await resolve_variant(parts, settings, asset, requested, accept=None)
        total += resolved.variant.size
        if total > limits.max_bytes:
            raise BadRequest(
                f"A bundle holds at most {limits.max_bytes} bytes of images; this one would hold more",
                reason="bundle_too_large",
            )
        entries.append(
            BundleEntry(name=entry_name(asset, resolved.variant), variant=resolved.variant, modified=asset.created_at)
        )
    return entries


class _Outbox:
    """The file the ZIP writer writes to: it only collects bytes until they are taken.

    It has no `seek` or `tell`, so the writer streams (sizes and CRCs follow each entry
    in a data descriptor) instead of going back to patch headers.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _zip_info(entry: BundleEntry) -> zipfile.ZipInfo:
    moment = max(entry.modified.astimezone(UTC), _ZIP_EPOCH)
    info = zipfile.ZipInfo(entry.name, date_time=moment.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    # Known up front, so the writer decides from it whether the entry needs ZIP64 sizes.
    info.file_size = entry.variant.size
    info.external_attr = 0o644 << 16
    return info


async def stream_bundle(parts: BundleReads, entries: list[BundleEntry]) -> AsyncIterator[bytes]:
    """The ZIP archive of the entries, in the order given, a store chunk at a time."""
    outbox = _Outbox()
    with zipfile.ZipFile(outbox, mode="w", allowZip64=True) as archive:
        for entry in entries:
            _, chunks = await parts.objects.stream(entry.variant.bucket, entry.variant.store_key)
            with archive.open(_zip_info(entry), mode="w") as member:
                async for chunk in chunks:
                    member.write(chunk)
                    if written := outbox.take():
                        yield written
            if written := outbox.take():
                yield written
    yield outbox.take()
