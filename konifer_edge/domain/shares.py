"""Share links: what a share is, when it may still be served, and the rules for making one.

A share serves one asset (an *asset share*), or whatever is newest at a path (a *path share*),
to anyone holding its token, until it expires, is revoked or has been downloaded as often as
it allows. Everything here is pure.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from konifer_edge.domain.errors import BadRequest, Gone

# Far enough for any real use; an "expires never" share simply leaves the expiry out.
MAX_LIFETIME = timedelta(days=3653)
MAX_LIFETIME_SECONDS = int(MAX_LIFETIME.total_seconds())
MAX_DOWNLOADS = 2**31 - 1  # the integer column's range


class ShareStatus(enum.Enum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"


class Share(msgspec.Struct, frozen=True):
    id: uuid.UUID
    path: str
    asset_id: uuid.UUID | None
    """The shared asset; ``None`` for a path share."""
    entry_id: int | None
    transformation: dict[str, str]
    expires_at: datetime | None
    max_downloads: int | None
    downloads: int
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def of_path(self) -> bool:
        return self.asset_id is None

    def status(self, now: datetime) -> ShareStatus:
        """Revoked wins over expired, which wins over exhausted: the most deliberate reason is the one told."""
        if self.revoked_at is not None:
            return ShareStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return ShareStatus.EXPIRED
        if self.max_downloads is not None and self.downloads >= self.max_downloads:
            return ShareStatus.EXHAUSTED
        return ShareStatus.ACTIVE


_GONE_MESSAGES = {
    ShareStatus.REVOKED: ("This share link has been revoked", "share_revoked"),
    ShareStatus.EXPIRED: ("This share link has expired", "share_expired"),
    ShareStatus.EXHAUSTED: ("This share link has reached its download limit", "share_exhausted"),
}


def refuse_unless_active(share: Share, now: datetime) -> None:
    """410 for a share that existed but may no longer be used."""
    status = share.status(now)
    if status is not ShareStatus.ACTIVE:
        message, reason = _GONE_MESSAGES[status]
        raise Gone(message, reason=reason)


def share_expiry(expires_at: datetime | None, expires_in: int | None, now: datetime) -> datetime | None:
    """The moment a new share stops working, from either spelling of it; ``None`` for never."""
    if expires_at is not None and expires_in is not None:
        raise BadRequest("Give expiresAt or expiresIn, not both", reason="invalid_expiry")
    if expires_in is not None:
        if not 1 <= expires_in <= MAX_LIFETIME_SECONDS:
            raise BadRequest(
                f"expiresIn must be 1 to {MAX_LIFETIME_SECONDS} seconds, not {expires_in}", reason="invalid_expiry"
            )
        return now + timedelta(seconds=expires_in)
    if expires_at is None:
        return None
    # A time without an offset is UTC, as every time this service writes is.
    moment = expires_at if expires_at.tzinfo is not None else expires_at.replace(tzinfo=UTC)
    if moment <= now:
        raise BadRequest("expiresAt must be in the future", reason="invalid_expiry")
    if moment - now > MAX_LIFETIME:
        raise BadRequest(f"expiresAt may be at most {MAX_LIFETIME.days} days ahead", reason="invalid_expiry")
    return moment
