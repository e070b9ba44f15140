"""Share links: create, list, revoke, and open one to serve what it shares.

The token is the credential. It is made here, returned once, and only its SHA-256 is kept
(as with API keys): 256 random bits need no slow hash, and a stolen database does not give
working links away. Serving checks the share on every request, uncached, so a revocation or
an expiry takes effect at once on every node; a download is counted by a conditional UPDATE
just before the bytes are read, so concurrent requests cannot pass a download limit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime
from typing import Final, Protocol

import msgspec

from konifer_edge.config import Config, PathSettings
from konifer_edge.domain.errors import BadRequest, Gone, NotFound
from konifer_edge.domain.models import Asset
from konifer_edge.domain.selectors import FetchSelector, Order, ReturnFormat
from konifer_edge.domain.shares import Share, refuse_unless_active
from konifer_edge.domain.transformation import RequestedTransformation, parse_transformation
from konifer_edge.services.fetch import AssetParts, resolve_assets
from konifer_edge.services.ports import AssetLookup, ShareRecords
from konifer_edge.services.variants import check_on_demand_mode, check_transformation
from konifer_edge.storage.shares import NewShare

_TOKEN_BYTES: Final = 32
_TOKEN_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{43}")


class ShareParts(Protocol):
    @property
    def config(self) -> Config: ...
    @property
    def repository(self) -> AssetLookup: ...
    @property
    def shares(self) -> ShareRecords: ...


class OpeningParts(ShareParts, AssetParts, Protocol):
    """Opening a share resolves its asset as a fetch does, through the resolution cache."""


class ShareRequest(msgspec.Struct, frozen=True):
    """A share to create, validated: a normalised path, an expiry moment, canonical parameters."""

    path: str
    entry_id: int | None
    transformation: dict[str, str]
    expires_at: datetime | None
    max_downloads: int | None


class CreatedShare(msgspec.Struct, frozen=True):
    share: Share
    token: str
    """Shown once, in the answer to the creation; never stored."""


class OpenedShare(msgspec.Struct, frozen=True):
    """A usable share resolved to the asset it serves now, with the transformation to apply."""

    share: Share
    asset: Asset
    settings: PathSettings
    requested: RequestedTransformation
    asset_outcome: str


def new_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _requested(parts: ShareParts, settings: PathSettings, parameters: dict[str, str]) -> RequestedTransformation:
    # The path's on-demand mode holds for shares as for fetches: a share is no way around it.
    check_on_demand_mode(settings, parameters)
    return parse_transformation(parameters, parts.config.variant_profiles)


async def create_share(parts: ShareParts, request: ShareRequest, now: datetime) -> CreatedShare:
    """Check the target exists and the transformation is one the path would render, then record the share."""
    settings = parts.config.paths.resolve(request.path)
    requested = _requested(parts, settings, request.transformation)
    if request.entry_id is not None:
        asset = await parts.repository.find_entry(request.path, request.entry_id)
        if asset is None:
            raise NotFound(f"No asset with entry id {request.entry_id} at {request.path}", reason="asset_not_found")
    else:
        newest = await parts.repository.find_newest(request.path, Order.CREATED, 1, {})
        if not newest:
            raise NotFound(f"No asset at {request.path}", reason="asset_not_found")
        asset = newest[0]
    # Against today's newest for a path share: a later asset may differ, but a bad size shows up now.
    check_transformation(settings, asset, requested)
    token = new_token()
    share = await parts.shares.create(
        NewShare(
            token_hash=token_digest(token),
            path=request.path,
            asset_id=asset.id if request.entry_id is not None else None,
            entry_id=request.entry_id,
            transformation=request.transformation,
            expires_at=request.expires_at,
            max_downloads=request.max_downloads,
            created_at=now,
        )
    )
    if share is None:
        raise NotFound(f"No asset with entry id {request.entry_id} at {request.path}", reason="asset_not_found")
    return CreatedShare(share=share, token=token)


async def find_share(parts: ShareParts, share_id: uuid.UUID) -> Share:
    share = await parts.shares.find(share_id)
    if share is None:
        raise NotFound(f"No share with id {share_id}", reason="share_not_found")
    return share


async def list_shares(parts: ShareParts, path: str, entry_id: int | None) -> list[Share]:
    """The shares of one asset, or every share at a path (asset and path shares), newest first."""
    if entry_id is None:
        return await parts.shares.at_path(path)
    asset = await parts.repository.find_entry(path, entry_id)
    if asset is None:
        raise NotFound(f"No asset with entry id {entry_id} at {path}", reason="asset_not_found")
    return await parts.shares.for_asset(asset.id)


async def revoke_share(parts: ShareParts, share: Share, now: datetime) -> None:
    if await parts.shares.revoke(share.id, now) is None:
        raise NotFound(f"No share with id {share.id}", reason="share_not_found")


async def open_share(parts: OpeningParts, token: str, entry_id: int | None, now: datetime) -> OpenedShare:
    """The share a token names and what it serves now: 404 unknown, 410 no longer usable."""
    # A token that cannot be one of ours is unknown without asking the database.
    share = await parts.shares.find_by_token(token_digest(token)) if _TOKEN_SHAPE.fullmatch(token) else None
    if share is None:
        raise NotFound("No share link with this token", reason="share_not_found")
    refuse_unless_active(share, now)
    if not share.of_path and entry_id is not None:
        raise BadRequest("This link shares one asset; it takes no /-/entry/{id}", reason="invalid_selector")
    selector = FetchSelector(
        return_format=ReturnFormat.CONTENT, entry_id=share.entry_id if entry_id is None else entry_id
    )
    # The generation is left out: share answers are never recorded for the fast path (each serve counts).
    assets, outcome, _ = await resolve_assets(parts, share.path, selector, {})
    settings = parts.config.paths.resolve(share.path)
    requested = _requested(parts, settings, share.transformation)
    return OpenedShare(share=share, asset=assets[0], settings=settings, requested=requested, asset_outcome=outcome)


async def claim_download(parts: ShareParts, share: Share, now: datetime) -> None:
    """Count one download, or refuse (410, or 404 once its asset is gone) if the share no longer allows it."""
    if await parts.shares.claim_download(share.id, now) is not None:
        return
    current = await parts.shares.find(share.id)
    if current is None:
        raise NotFound("No share link with this token", reason="share_not_found")
    refuse_unless_active(current, now)
    raise Gone("This share link can no longer be used", reason="share_exhausted")
