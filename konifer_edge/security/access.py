"""Access control for the asset routes: signed URLs on fetch, API keys on writes and on key-only paths.

Where it runs, and why: each asset handler calls :func:`enforce_access` right after it
has parsed the path, before anything else reads the database, the object store or the
request body. That is the cheapest correct place:

* the rules depend on the asset path's settings (``url-signing`` and ``access.read`` per
  path), and the handler has just parsed and normalised that path; an ASGI middleware
  would have to parse it a second time, and would also run for paths that are not asset
  routes or methods that no route accepts;
* it is ahead of every lookup and every cache the handler consults, so an unsigned or
  unauthorised request never renders, reads or stores anything, and never fills a cache;
* a write is refused before its body is read, however large the body is announced to be.

Order on fetch: the signature first (403, no database), then, on ``access.read = "key"``
paths only, the key (401/403). Public reads ignore any key they carry, so the read path
of a public CDN origin never waits for a key lookup.

The share routes (``http/shares.py``) call :func:`require_api_key` directly: managing shares
follows the write rule (open until the first key exists), and a share link itself needs no
key and no signature, since its token is the credential.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from litestar import Request

from konifer_edge.domain.errors import Forbidden
from konifer_edge.security.api_keys import (
    READ,
    WRITE,
    ApiKey,
    CachedKeys,
    Unauthorized,
    authorize,
    presented_token,
)
from konifer_edge.security.signing import require_signature

AnyRequest = Request[Any, Any, Any]

_READ_METHODS: Final = frozenset({"GET", "HEAD"})


async def enforce_access(request: AnyRequest, path: str) -> None:
    """Refuse the request (raising 401 or 403) unless it may do what its method says at ``path``.

    ``path`` is the normalised asset path (``/users/123``), without the selectors.
    """
    runtime = request.app.state.runtime
    config = runtime.config
    if request.method in _READ_METHODS:
        settings = config.paths.resolve(path)
        require_signature(request.scope, config.signing_for(settings))
        if settings.access.read == "public":
            return
        scope = READ
    else:
        scope = WRITE
    await require_api_key(request, scope, path, open_until_first_key=scope == WRITE)


async def require_api_key(
    request: AnyRequest, scope: str, path: str | None, *, open_until_first_key: bool
) -> ApiKey | None:
    """The key the request presents, when it may use ``scope`` at ``path``; else 401 or 403.

    ``None`` when no key is presented and ``open_until_first_key`` lets that pass because no
    key was ever created. With ``path`` ``None`` (not known before the body is read) the
    key's path prefix is not checked: call :func:`~konifer_edge.security.api_keys.authorize`
    again once the path is known.
    """
    keys: CachedKeys = request.app.state.runtime.keys
    token = presented_token(request.headers)
    if token is None:
        if open_until_first_key and not await keys.any_exist():
            # No key was ever created: the service runs open, as Konifer does.
            return None
        raise Unauthorized(
            "An API key is required (Authorization: Bearer KEY, or X-API-Key: KEY)", reason="missing_api_key"
        )
    return authorize(await keys.find(token), scope=scope, path=path)


async def enforce_collection_access(request: AnyRequest, paths: Iterable[str]) -> None:
    """Refuse a listing, path browse or bundle unless it may read everything at ``paths``.

    Listing enumerates what exists, which one public asset URL does not. So once any API
    key exists, these reads need a key with ``assets:read`` over every path, public or not.
    While no key exists the service is open, and each path's own read rules apply; a
    bundle made by POST carries no URL a signature could cover, so signed paths need a key.
    """
    config = request.app.state.runtime.config
    wanted = list(dict.fromkeys(paths))
    key = await require_api_key(request, READ, None, open_until_first_key=True)
    if key is not None:
        for path in wanted:
            authorize(key, scope=READ, path=path)
        return
    for path in wanted:
        settings = config.paths.resolve(path)
        signing = config.signing_for(settings)
        if request.method not in _READ_METHODS and signing.enabled:
            raise Forbidden(f"{path} requires signed URLs; a bundle of it needs an API key", reason="missing_signature")
        require_signature(request.scope, signing)
        if settings.access.read != "public":
            raise Unauthorized(f"{path} is readable with an API key only", reason="missing_api_key")
