"""Where a link points and where a redirect goes, per the path's redirect strategy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote, urlencode

import msgspec

from konifer_edge.config import Config, PathSettings
from konifer_edge.domain.models import Asset, Variant
from konifer_edge.security.signing import sign_url
from konifer_edge.services.ports import Presigning


class SigningParts(Protocol):
    """Our own URLs are signed with the keys the configuration names for their path."""

    @property
    def config(self) -> Config: ...


class PresigningParts(Protocol):
    @property
    def objects(self) -> Presigning: ...


class DeliveryParts(SigningParts, PresigningParts, Protocol):
    pass


def entry_url(base_url: str, asset: Asset) -> str:
    return f"{base_url}/assets{quote(asset.path)}/-/entry/{asset.entry_id}"


def content_url(base_url: str, asset: Asset, transformation: dict[str, str] | None = None) -> str:
    url = f"{entry_url(base_url, asset)}/content"
    if transformation:
        url += "?" + urlencode(sorted(transformation.items()))
    return url


async def object_store_target(parts: PresigningParts, settings: PathSettings, variant: Variant) -> str | None:
    """The object-store URL a `presigned` or `template` strategy sends clients to, if any."""
    redirect = settings.return_format.redirect
    if redirect.strategy == "presigned":
        return await parts.objects.presigned_get_url(variant.bucket, variant.store_key, redirect.presigned_ttl)
    if redirect.strategy == "template" and redirect.template_string:
        # Plain replacement, not str.format: the template is operator text with braces of its own.
        return redirect.template_string.replace("{bucket}", variant.bucket).replace("{key}", variant.store_key)
    return None


def signed_if_required(parts: SigningParts, settings: PathSettings, url: str) -> str:
    """Our own URLs must pass our own signature check where the path requires one."""
    signing = parts.config.signing_for(settings)
    if not signing.enabled or not signing.signing_keys:
        return url
    return sign_url(url, signing.signing_keys[0], signing.algorithm)


def own_content_url(
    parts: SigningParts, settings: PathSettings, base_url: str, asset: Asset, transformation: dict[str, str] | None
) -> str:
    return signed_if_required(parts, settings, content_url(base_url, asset, transformation))


class LinkTarget(msgspec.Struct, frozen=True):
    url: str
    expires_at: datetime | None = None
    """When a presigned URL stops working (issue time plus `presigned.ttl`); None for URLs that do not expire."""


async def link_target(
    parts: DeliveryParts,
    settings: PathSettings,
    base_url: str,
    asset: Asset,
    variant: Variant,
    transformation: dict[str, str] | None = None,
) -> LinkTarget:
    """Where a `link` answer points: the object store where the strategy says so, else our content URL."""
    redirect = settings.return_format.redirect
    issued = datetime.now(UTC)
    target = await object_store_target(parts, settings, variant)
    if target is None:
        return LinkTarget(url=own_content_url(parts, settings, base_url, asset, transformation))
    presigned = redirect.strategy == "presigned"
    return LinkTarget(url=target, expires_at=issued + redirect.presigned_ttl if presigned else None)
