"""Signed URLs, exactly as Konifer signs them (spec 05 section 6).

The signature ``s`` is URL-safe Base64 without padding of an HMAC (SHA-256, -384 or
-512) keyed with the UTF-8 bytes of the secret, over this message (UTF-8):

    {path as sent}[?{key}={value}&...]

* the path is the request path exactly as it was sent: percent-escapes are not decoded
  and the ``/-/`` selectors are part of it (Ktor's ``request.path()`` in Konifer);
* the query part lists every parameter but ``s``, once per key with the key's first
  value, sorted by key, as ``key=value`` with both *decoded*, so ``pad-c=%23ff0000``
  is signed as ``pad-c=#ff0000``; the ``?`` is left out when nothing remains.

Two deliberate choices where Ktor's parser and ours differ (neither changes a URL that
Konifer's own clients sign): keys are compared case-sensitively, and a ``+`` in a key
decodes to a space. The message is built from exactly the pairs the asset routes act on
(:func:`query_pairs` is their parser), so no parameter can change the answer without
being covered by the signature: Ktor groups ``W`` with ``w``, which here would let a
``W=`` label filter ride along on a signature made for ``w=``.

Verification compares in constant time (:func:`hmac.compare_digest`) against every
configured key (several at once while one replaces another) without stopping early.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from konifer_edge.config import UrlSigningSettings
from konifer_edge.domain.errors import Forbidden

SIGNATURE_PARAMETER: Final = "s"
ALGORITHMS: Final[Mapping[str, Callable[..., Any]]] = {
    "hmac_sha256": hashlib.sha256,
    "hmac_sha384": hashlib.sha384,
    "hmac_sha512": hashlib.sha512,
}
# Characters a client sends as they are (RFC 3986 pchar and query); '%' keeps existing escapes.
_PATH_SAFE: Final = "/!$&'()*+,;=:@%"
_QUERY_SAFE: Final = _PATH_SAFE + "?"


class SignatureCheck(enum.Enum):
    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"


def query_pairs(query: str) -> list[tuple[str, str]]:
    """The query's (key, value) pairs, decoded, in order: the same parse the asset routes use.

    Raises ``UnicodeDecodeError`` when an escape is not UTF-8 (the routes answer 400 first).
    """
    return parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """``key=value`` for every key but ``s`` (its first value), sorted by key, joined by ``&``."""
    first: dict[str, str] = {}
    for key, value in pairs:
        if key != SIGNATURE_PARAMETER:
            first.setdefault(key, value)
    return "&".join(f"{key}={first[key]}" for key in sorted(first, key=_utf16_order))


def _utf16_order(key: str) -> bytes:
    # Kotlin compares strings by UTF-16 code unit; big-endian UTF-16 bytes sort the same way.
    return key.encode("utf-16-be", "surrogatepass")


def signing_message(path: bytes, pairs: Iterable[tuple[str, str]]) -> bytes:
    """The bytes that are signed: the raw path, then ``?`` and the canonical query when there is one."""
    query = canonical_query(pairs)
    return path + b"?" + query.encode("utf-8") if query else path


def compute_signature(message: bytes, secret: str, algorithm: str = "hmac_sha256") -> str:
    """URL-safe Base64, without padding, of the HMAC of ``message`` keyed by ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), message, _digest(algorithm)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _digest(algorithm: str) -> Callable[..., Any]:
    try:
        return ALGORITHMS[algorithm]
    except KeyError:
        known = ", ".join(ALGORITHMS)
        raise ValueError(f"unknown signing algorithm {algorithm!r}; use one of {known}") from None


def check_signature(path: bytes, query: str, secrets: Sequence[str], algorithm: str) -> SignatureCheck:
    """Whether the request's ``s`` is the signature of ``path`` and ``query`` under any of ``secrets``.

    ``path`` is the raw request path (no query); ``query`` the raw query string. As in
    Konifer, a missing or blank ``s`` is MISSING, and the first ``s`` counts.
    """
    pairs = query_pairs(query)
    presented = next((value for key, value in pairs if key == SIGNATURE_PARAMETER), None)
    if presented is None or not presented.strip():
        return SignatureCheck.MISSING
    message = signing_message(path, pairs)
    given = presented.encode("utf-8")
    matched = False
    for secret in secrets:
        # Every key is tried, so the time taken does not say which one matched.
        matched |= hmac.compare_digest(compute_signature(message, secret, algorithm).encode("ascii"), given)
    return SignatureCheck.VALID if matched else SignatureCheck.INVALID


def require_signature(scope: Mapping[str, Any], signing: UrlSigningSettings) -> None:
    """Refuse (403) a fetch whose signature is missing or wrong, when ``signing`` is enabled.

    Reads the path and query from the raw ASGI scope, as sent, the way the routes do.
    """
    if not signing.enabled:
        return
    raw_path: bytes = scope.get("raw_path") or str(scope["path"]).encode("utf-8")
    path = raw_path.split(b"?", 1)[0]
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    try:
        verdict = check_signature(path, query, signing.signing_keys, signing.algorithm)
    except UnicodeDecodeError:
        # The routes refuse such a query with 400 before asking; nothing valid was signed this way.
        verdict = SignatureCheck.INVALID
    if verdict is SignatureCheck.MISSING:
        raise Forbidden("Missing signature", reason="missing_signature")
    if verdict is SignatureCheck.INVALID:
        raise Forbidden("Invalid signature", reason="invalid_signature")


def sign_url(url_or_path: str, secret: str, algorithm: str = "hmac_sha256") -> str:
    """Return ``url_or_path`` with its signature appended as ``s`` (any earlier ``s`` is replaced).

    Takes an absolute URL (``https://img.example.com/assets/a/-/content?w=200``) or a path
    with its query (``/assets/a/-/content?w=200``). Characters a client would
    percent-encode when sending (spaces, non-ASCII text) are encoded first, so the path
    that is signed is the path the server will see; existing escapes are kept as written.

    ``sign_url("/assets/users/1/-/content?w=200", "secret")`` gives
    ``/assets/users/1/-/content?w=200&s=`` followed by 43 characters (hmac_sha256).
    """
    if not secret:
        raise ValueError("the signing secret must not be empty")
    _digest(algorithm)
    parts = urlsplit(url_or_path)
    path = quote(parts.path, safe=_PATH_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    kept = [quote(piece, safe=_QUERY_SAFE) for piece in parts.query.split("&") if piece and not _names_signature(piece)]
    query = "&".join(kept)
    signature = compute_signature(signing_message(path.encode("ascii"), query_pairs(query)), secret, algorithm)
    signed_query = f"{query}&{SIGNATURE_PARAMETER}={signature}" if query else f"{SIGNATURE_PARAMETER}={signature}"
    return urlunsplit((parts.scheme, parts.netloc, path, signed_query, parts.fragment))


def _names_signature(piece: str) -> bool:
    return any(key == SIGNATURE_PARAMETER for key, _ in parse_qsl(piece, keep_blank_values=True))
