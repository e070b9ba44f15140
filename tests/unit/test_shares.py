"""Share links: when a share may be served, the two spellings of its expiry, its parameters, its token."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from konifer_edge.domain.errors import BadRequest, Gone
from konifer_edge.domain.query import transformation_from_json
from konifer_edge.domain.shares import (
    MAX_LIFETIME,
    MAX_LIFETIME_SECONDS,
    Share,
    ShareStatus,
    refuse_unless_active,
    share_expiry,
)
from konifer_edge.observability.request_log import logged_path
from konifer_edge.services.shares import new_token, token_digest

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def share(**changes: object) -> Share:
    base = Share(
        id=uuid.uuid4(),
        path="/users/1",
        asset_id=uuid.uuid4(),
        entry_id=0,
        transformation={},
        expires_at=None,
        max_downloads=None,
        downloads=0,
        created_at=NOW - timedelta(hours=1),
    )
    return msgspec.structs.replace(base, **changes)


def test_a_share_is_active_until_revoked_expired_or_used_up() -> None:
    assert share().status(NOW) is ShareStatus.ACTIVE
    assert share(expires_at=NOW + timedelta(seconds=1)).status(NOW) is ShareStatus.ACTIVE
    assert share(expires_at=NOW).status(NOW) is ShareStatus.EXPIRED
    assert share(max_downloads=2, downloads=1).status(NOW) is ShareStatus.ACTIVE
    assert share(max_downloads=2, downloads=2).status(NOW) is ShareStatus.EXHAUSTED
    assert share(revoked_at=NOW).status(NOW) is ShareStatus.REVOKED


def test_the_most_deliberate_reason_is_the_one_told() -> None:
    everything = share(revoked_at=NOW, expires_at=NOW, max_downloads=1, downloads=1)
    assert everything.status(NOW) is ShareStatus.REVOKED
    assert share(expires_at=NOW, max_downloads=1, downloads=1).status(NOW) is ShareStatus.EXPIRED


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"revoked_at": NOW}, "share_revoked"),
        ({"expires_at": NOW - timedelta(seconds=1)}, "share_expired"),
        ({"max_downloads": 3, "downloads": 3}, "share_exhausted"),
    ],
)
def test_a_share_no_longer_usable_is_gone(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(Gone) as raised:
        refuse_unless_active(share(**changes), NOW)
    assert (raised.value.status, raised.value.reason) == (410, reason)
    refuse_unless_active(share(), NOW)


def test_path_shares_have_no_asset() -> None:
    assert share(asset_id=None, entry_id=None).of_path
    assert not share().of_path


def test_expiry_in_seconds_or_at_a_moment() -> None:
    assert share_expiry(None, None, NOW) is None
    assert share_expiry(None, 60, NOW) == NOW + timedelta(seconds=60)
    later = NOW + timedelta(days=2)
    assert share_expiry(later, None, NOW) == later
    # No offset means UTC; an offset is honoured.
    assert share_expiry(later.replace(tzinfo=None), None, NOW) == later
    assert share_expiry(later.astimezone(timezone(timedelta(hours=-7))), None, NOW) == later
    assert share_expiry(None, MAX_LIFETIME_SECONDS, NOW) == NOW + MAX_LIFETIME


@pytest.mark.parametrize(
    ("expires_at", "expires_in"),
    [
        (NOW + timedelta(hours=1), 60),
        (NOW, None),
        (NOW - timedelta(seconds=1), None),
        (NOW + MAX_LIFETIME + timedelta(seconds=1), None),
        (None, 0),
        (None, -1),
        (None, MAX_LIFETIME_SECONDS + 1),
    ],
)
def test_bad_expiries_are_400(expires_at: datetime | None, expires_in: int | None) -> None:
    with pytest.raises(BadRequest) as raised:
        share_expiry(expires_at, expires_in, NOW)
    assert raised.value.reason == "invalid_expiry"


def test_parameters_are_strings_sorted_by_key() -> None:
    assert transformation_from_json({}) == {}
    assert transformation_from_json({"w": 200, "format": "webp", "blur": 1.5, "h": 30.0}) == {
        "blur": "1.5",
        "format": "webp",
        "h": "30",
        "w": "200",
    }
    assert list(transformation_from_json({"w": "1", "fit": "fit", "dpr": "2"})) == ["dpr", "fit", "w"]


@pytest.mark.parametrize("key", ["phone", "limit", "s", "label:w", "W", ""])
def test_only_transformation_keys_are_parameters(key: str) -> None:
    with pytest.raises(BadRequest) as raised:
        transformation_from_json({key: "1"})
    assert raised.value.reason == "invalid_transformation"


def test_tokens_are_256_random_bits_kept_as_their_digest() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) == 43 and token.replace("-", "").replace("_", "").isalnum() for token in tokens)
    token = next(iter(tokens))
    assert token_digest(token) == hashlib.sha256(token.encode()).digest()


def test_share_tokens_never_reach_the_access_log() -> None:
    assert logged_path("/s/abcdef") == "/s/[token]"
    assert logged_path("/s/abcdef/-/entry/3") == "/s/[token]/-/entry/3"
    assert logged_path("/shares/123") == "/shares/123"
    assert logged_path("/assets/s/abc") == "/assets/s/abc"
    assert len(logged_path("/assets/" + "a" * 1000)) == 512
