"""API keys: scopes, whole-segment path prefixes, how a key is presented, and the lookup cache."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from konifer_edge.config import ConfigError, load_config
from konifer_edge.domain.errors import Forbidden
from konifer_edge.security.api_keys import (
    ADMIN,
    READ,
    WRITE,
    ApiKey,
    CachedKeys,
    Unauthorized,
    authorize,
    cache_ttl_from_environment,
    display_prefix,
    new_token,
    parse_path_prefix,
    parse_scopes,
    path_within,
    presented_token,
    token_digest,
    well_formed,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def key(*scopes: str, prefix: str | None = None, revoked: bool = False) -> ApiKey:
    return ApiKey(
        id=1,
        prefix="ke_abcdefgh",
        scopes=scopes,
        path_prefix=prefix,
        name=None,
        created_at=NOW,
        revoked_at=NOW if revoked else None,
    )


def test_tokens_are_long_random_and_recognisable() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert well_formed(token)
        assert display_prefix(token) == token[:11]
        assert len(token_digest(token)) == 32
    assert not well_formed("ke_short")
    assert not well_formed(next(iter(tokens)) + "x")
    assert not well_formed("Bearer " + next(iter(tokens)))


@pytest.mark.parametrize(
    ("path", "prefix", "inside"),
    [
        ("/users/123", "/users/123", True),
        ("/users/123/avatar", "/users/123", True),
        ("/users/1234", "/users/123", False),
        ("/users/12", "/users/123", False),
        ("/users", "/users/123", False),
        ("/Users/123", "/users/123", False),
        ("/anything", None, True),
    ],
)
def test_prefixes_match_whole_segments(path: str, prefix: str | None, inside: bool) -> None:
    assert path_within(path, prefix) is inside


def test_prefixes_are_read_as_asset_paths() -> None:
    assert parse_path_prefix("users/123/") == "/users/123"
    assert parse_path_prefix("/") is None
    assert parse_path_prefix(None) is None
    with pytest.raises(ValueError, match="empty segment"):
        parse_path_prefix("/users//123")


def test_scopes_are_known_and_distinct() -> None:
    assert parse_scopes(["assets:write", " ASSETS:READ", "assets:write"]) == (WRITE, READ)
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes(["assets:delete"])
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes([])


def test_a_key_is_presented_as_bearer_or_x_api_key() -> None:
    assert presented_token({"authorization": "Bearer ke_x"}) == "ke_x"
    assert presented_token({"authorization": "bearer   ke_x "}) == "ke_x"
    assert presented_token({"x-api-key": " ke_y"}) == "ke_y"
    assert presented_token({"authorization": "Basic dXNlcjpwYXNz", "x-api-key": "ke_y"}) == "ke_y"
    assert presented_token({"authorization": "Bearer"}) == ""
    assert presented_token({}) is None


def test_admin_implies_read_and_write() -> None:
    for scope in (READ, WRITE):
        assert authorize(key(ADMIN), scope=scope, path="/a") is not None
    authorize(key(READ, WRITE), scope=WRITE, path="/a")


@pytest.mark.parametrize(
    ("api_key", "scope", "path", "status", "reason"),
    [
        (None, WRITE, "/a", 401, "invalid_api_key"),
        (key(WRITE, revoked=True), WRITE, "/a", 401, "revoked_api_key"),
        (key(READ), WRITE, "/a", 403, "insufficient_scope"),
        (key(WRITE), READ, "/a", 403, "insufficient_scope"),
        (key(WRITE, prefix="/users/123"), WRITE, "/users/1234", 403, "outside_key_prefix"),
    ],
)
def test_refusals(api_key: ApiKey | None, scope: str, path: str, status: int, reason: str) -> None:
    with pytest.raises((Unauthorized, Forbidden)) as refused:
        authorize(api_key, scope=scope, path=path)
    assert (refused.value.status, refused.value.reason) == (status, reason)


def test_the_cache_ttl_comes_from_the_environment() -> None:
    assert cache_ttl_from_environment({}) == 5.0
    assert cache_ttl_from_environment({"KONIFER_EDGE_API_KEY_CACHE_TTL": "0.25"}) == 0.25
    assert cache_ttl_from_environment({"KONIFER_EDGE_API_KEY_CACHE_TTL": "0"}) == 0.0
    assert cache_ttl_from_environment({"KONIFER_EDGE_API_KEY_CACHE_TTL": "soon"}) == 5.0
    assert cache_ttl_from_environment({"KONIFER_EDGE_API_KEY_CACHE_TTL": "-1"}) == 5.0


class FakeStore:
    def __init__(self) -> None:
        self.keys: dict[bytes, ApiKey] = {}
        self.lookups = 0
        self.exists_checks = 0

    async def find_by_digest(self, digest: bytes) -> ApiKey | None:
        self.lookups += 1
        return self.keys.get(digest)

    async def any_key_exists(self) -> bool:
        self.exists_checks += 1
        return bool(self.keys)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_lookups_are_reused_until_the_ttl_passes() -> None:
    store, clock = FakeStore(), Clock()
    cache = CachedKeys(store, ttl=5, clock=clock)
    token = new_token()
    store.keys[token_digest(token)] = key(WRITE)
    for _ in range(10):
        assert await cache.find(token) is not None
    assert store.lookups == 1
    store.keys[token_digest(token)] = key(WRITE, revoked=True)
    clock.now += 4.9
    still = await cache.find(token)
    assert still is not None and not still.revoked
    clock.now += 0.2
    found = await cache.find(token)
    assert found is not None and found.revoked
    assert store.lookups == 2


async def test_unknown_and_malformed_tokens() -> None:
    store, clock = FakeStore(), Clock()
    cache = CachedKeys(store, ttl=5, clock=clock)
    assert await cache.find("not-a-key") is None
    assert store.lookups == 0  # refused on its shape, without a lookup
    stranger = new_token()
    assert await cache.find(stranger) is None
    assert await cache.find(stranger) is None
    assert store.lookups == 1  # unknown tokens are cached too


async def test_the_cache_is_bounded() -> None:
    store, clock = FakeStore(), Clock()
    cache = CachedKeys(store, ttl=5, clock=clock, max_entries=8)
    for _ in range(100):
        await cache.find(new_token())
    assert len(cache._keys) <= 8


async def test_whether_any_key_exists_is_cached_too() -> None:
    store, clock = FakeStore(), Clock()
    cache = CachedKeys(store, ttl=5, clock=clock)
    assert await cache.any_exist() is False
    store.keys[b"x" * 32] = key(WRITE)
    assert await cache.any_exist() is False
    clock.now += 6
    assert await cache.any_exist() is True
    assert store.exists_checks == 2


async def test_ttl_zero_reads_every_time() -> None:
    store, clock = FakeStore(), Clock()
    cache = CachedKeys(store, ttl=0, clock=clock)
    token = new_token()
    await cache.find(token)
    await cache.find(token)
    await cache.any_exist()
    await cache.any_exist()
    assert (store.lookups, store.exists_checks) == (2, 2)


# --- configuration ----------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "konifer.toml"
    path.write_text(text)
    return path


def test_access_read_defaults_to_public_and_inherits(tmp_path: Path) -> None:
    text = '[paths."/private/**".access]\nread = "key"\n'
    config = load_config(_write(tmp_path, text), {})
    assert config.paths.resolve("/public/a").access.read == "public"
    assert config.paths.resolve("/private/a/b").access.read == "key"
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, '[paths."/a".access]\nread = "secret"\n'), {})
    assert error.value.key == "paths./a.access.read"


def test_a_key_only_path_cannot_be_cached_publicly(tmp_path: Path) -> None:
    text = """
[paths."/**".cache-control]
enabled = true
visibility = "public"
max-age = 600

[paths."/private/**".access]
read = "key"
"""
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text), {})
    assert error.value.key == "paths./private/**.access.read"
    private = load_config(_write(tmp_path, text + '[paths."/private/**".cache-control]\nvisibility = "private"\n'), {})
    assert private.paths.resolve("/private/a").cache_control.header_value() == "private, max-age=600"
