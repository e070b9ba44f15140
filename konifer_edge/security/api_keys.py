"""API keys: tokens, scopes, path prefixes, and the short-lived in-process cache of lookups.

A key is ``ke_`` followed by 43 characters of URL-safe Base64 (256 random bits). Only its
SHA-256 is stored, with a short prefix of the token (``ke_`` and 8 characters, not enough
to guess the rest) so that operators can tell keys apart in ``keys list``. A high-entropy
token needs no slow, salted hash: nothing can be guessed from its digest.

Scopes: ``assets:read`` (fetch on paths whose ``access.read`` is ``key``), ``assets:write``
(store, update, delete) and ``assets:admin`` (both). A key may be limited to a path
prefix, matched by whole segments: ``/users/123`` covers ``/users/123`` and
``/users/123/avatar``, never ``/users/1234``.

Everything here but :class:`CachedKeys` is pure.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Final, Protocol

import msgspec

from konifer_edge.domain.errors import ApiError, BadRequest, Forbidden
from konifer_edge.domain.paths import normalise_asset_path

log = logging.getLogger("konifer_edge.security")

READ: Final = "assets:read"
WRITE: Final = "assets:write"
ADMIN: Final = "assets:admin"
SCOPES: Final = (READ, WRITE, ADMIN)

TOKEN_MARKER: Final = "ke_"
_TOKEN_BYTES: Final = 32
DISPLAY_PREFIX_LENGTH: Final = len(TOKEN_MARKER) + 8
_TOKEN_SHAPE: Final = re.compile(r"ke_[A-Za-z0-9_-]{43}")

CACHE_TTL_VARIABLE: Final = "KONIFER_EDGE_API_KEY_CACHE_TTL"
DEFAULT_CACHE_TTL: Final = 5.0
MAX_CACHED_KEYS: Final = 10_000


class Unauthorized(ApiError):
    """401: no credentials where they are required, or credentials that are not (or no longer) valid."""

    status = 401
    reason = "unauthorized"


class ApiKey(msgspec.Struct, frozen=True):
    id: int
    prefix: str
    """The token's first characters, for telling keys apart; not a secret."""
    scopes: tuple[str, ...]
    path_prefix: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def grants(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes

    def covers(self, path: str) -> bool:
        return path_within(path, self.path_prefix)


def new_token() -> str:
    return TOKEN_MARKER + secrets.token_urlsafe(_TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def display_prefix(token: str) -> str:
    return token[:DISPLAY_PREFIX_LENGTH]


def well_formed(token: str) -> bool:
    """Whether ``token`` could be one of ours; anything else is refused without a lookup."""
    return _TOKEN_SHAPE.fullmatch(token) is not None


def path_within(path: str, prefix: str | None) -> bool:
    """Whether the asset ``path`` is ``prefix`` or below it, by whole segments (case-sensitive, as paths are)."""
    if prefix is None or prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/")


def parse_scopes(written: Iterable[str]) -> tuple[str, ...]:
    """Distinct known scopes in the order written; raises ``ValueError`` naming an unknown one."""
    scopes = tuple(dict.fromkeys(scope.strip().lower() for scope in written))
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; use {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return scopes


def parse_path_prefix(written: str | None) -> str | None:
    """An asset path in its stored spelling (``/users/123``), or ``None`` for every path."""
    if written is None or written.strip() in ("", "/"):
        return None
    try:
        return normalise_asset_path(written.strip())
    except BadRequest as error:
        raise ValueError(error.message) from None


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: ``Authorization: Bearer KEY``, else ``X-API-Key: KEY``.

    ``None`` when neither header is there; an empty string when one is there but empty,
    which no key matches.
    """
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip()
    api_key = headers.get("x-api-key")
    return api_key.strip() if api_key is not None else None


def authorize(key: ApiKey | None, *, scope: str, path: str | None) -> ApiKey:
    """The key, when it may use ``scope`` on ``path``; else 401 (unknown, revoked) or 403 (scope, prefix).

    ``path`` ``None`` checks everything but the prefix, for a request that names its path in its body.
    """
    if key is None:
        raise Unauthorized("The API key is not valid", reason="invalid_api_key")
    if key.revoked:
        raise Unauthorized("The API key has been revoked", reason="revoked_api_key")
    if not key.grants(scope):
        raise Forbidden(f"The API key does not have the {scope} scope", reason="insufficient_scope")
    if path is not None and not key.covers(path):
        raise Forbidden(f"The API key is limited to {key.path_prefix}", reason="outside_key_prefix")
    return key


def cache_ttl_from_environment(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a lookup is reused (``KONIFER_EDGE_API_KEY_CACHE_TTL``, default 5; 0 turns caching off)."""
    written = (os.environ if environ is None else environ).get(CACHE_TTL_VARIABLE, "").strip()
    if not written:
        return DEFAULT_CACHE_TTL
    try:
        ttl = float(written)
    except ValueError:
        ttl = -1.0
    if not 0 <= ttl <= 3600:
        log.warning(
            "%s=%r is not a number of seconds from 0 to 3600; using %s", CACHE_TTL_VARIABLE, written, DEFAULT_CACHE_TTL
        )
        return DEFAULT_CACHE_TTL
    return ttl


class KeyLookup(Protocol):
    async def find_by_digest(self, digest: bytes) -> ApiKey | None: ...

    async def any_key_exists(self) -> bool: ...


class CachedKeys:
    """Key lookups reused for ``ttl`` seconds by this process, so a busy path does not ask PostgreSQL per request.

    How revocation propagates: ``keys revoke`` sets ``revoked_at`` in the database at once.
    Each worker process of each node keeps what it read for at most ``ttl`` seconds
    (default 5), so a revoked key stops working everywhere within ``ttl`` of the revoke,
    with no message between nodes. The same bound applies to a new key (an unknown token
    is cached as unknown too, so guessing cannot hammer the database) and to the switch to
    refusing anonymous writes once the first key exists. ``ttl`` 0 reads every time.

    At most ``max_entries`` digests are kept; past that, expired ones are dropped, and if
    all are fresh the cache starts over: random tokens can cost lookups, never memory.
    """

    def __init__(
        self,
        store: KeyLookup,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_CACHED_KEYS,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._keys: dict[bytes, tuple[float, ApiKey | None]] = {}
        self._any: tuple[float, bool] | None = None

    async def find(self, token: str) -> ApiKey | None:
        if not well_formed(token):
            return None
        digest = token_digest(token)
        now = self._clock()
        cached = self._keys.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await self._store.find_by_digest(digest)
        if self._ttl > 0:
            self._remember(digest, (now + self._ttl, key))
        return key

    async def any_exist(self) -> bool:
        """Whether any key was ever created (revoked ones count: revoking never reopens anonymous writes)."""
        now = self._clock()
        if self._any is not None and self._any[0] > now:
            return self._any[1]
        exists = await self._store.any_key_exists()
        self._any = (now + self._ttl, exists)
        return exists

    def _remember(self, digest: bytes, entry: tuple[float, ApiKey | None]) -> None:
        if len(self._keys) >= self._max_entries and digest not in self._keys:
            now = self._clock()
            self._keys = {kept: value for kept, value in self._keys.items() if value[0] > now}
            if len(self._keys) >= self._max_entries:
                self._keys.clear()
        self._keys[digest] = entry
