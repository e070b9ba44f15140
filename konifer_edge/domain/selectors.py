"""The `/-/` query-modifier grammar of fetch and delete, in both of Konifer's spellings.

Tokens after `/-/` may come in any order and are recognised by their word: a return
format, an order, `entry` followed by an id, a bare number (the limit), and for delete
`all` / `recursive`. Everything here is pure: strings in, typed selectors out.
"""

from __future__ import annotations

import enum
import re

import msgspec

from konifer_edge.domain.errors import BadRequest

SELECTOR_SEPARATOR = "/-/"
ALL = -1
MAX_LIMIT = 1000
DEFAULT_ENTRIES_LIMIT = 20


class ReturnFormat(enum.Enum):
    LINK = "link"
    CONTENT = "content"
    DOWNLOAD = "download"
    REDIRECT = "redirect"
    METADATA = "metadata"
    ENTRIES = "entries"
    """Metadata of the newest N, always wrapped as `{"entries": [...]}` (Konifer's current client)."""

    @property
    def allows_many(self) -> bool:
        return self in (ReturnFormat.LINK, ReturnFormat.METADATA, ReturnFormat.ENTRIES)

    @property
    def is_metadata(self) -> bool:
        """Answers made of metadata alone, on which transformation parameters mean nothing."""
        return self in (ReturnFormat.METADATA, ReturnFormat.ENTRIES)


class Order(enum.Enum):
    CREATED = "created"
    MODIFIED = "modified"


class DeleteScope(enum.Enum):
    """How many assets a delete reaches before labels narrow it."""

    NEWEST = "newest"
    ALL = "all"
    RECURSIVE = "recursive"


_RETURN_FORMATS = {f.value: f for f in ReturnFormat} | {"info": ReturnFormat.METADATA}
_ORDERS = {"created": Order.CREATED, "new": Order.CREATED, "modified": Order.MODIFIED}


class FetchSelector(msgspec.Struct, frozen=True):
    return_format: ReturnFormat = ReturnFormat.LINK
    order: Order = Order.CREATED
    limit: int = 1
    entry_id: int | None = None

    @property
    def many(self) -> bool:
        """The answer is a list, even of one asset or none."""
        return self.return_format is ReturnFormat.ENTRIES or (self.entry_id is None and self.limit != 1)


class DeleteSelector(msgspec.Struct, frozen=True):
    scope: DeleteScope = DeleteScope.NEWEST
    order: Order = Order.CREATED
    limit: int = 1
    entry_id: int | None = None


class _Tokens(msgspec.Struct):
    """The modifiers of one request, each said at most once."""

    return_format: ReturnFormat | None = None
    order: Order | None = None
    limit: int | None = None
    entry_id: int | None = None
    scope: DeleteScope | None = None


def split_asset_path(raw: str) -> tuple[str, list[str]]:
    """Split `users/1/-/link/new` into the asset path `/users/1` and its modifier tokens."""
    head, separator, tail = raw.partition(SELECTOR_SEPARATOR)
    if not separator and raw.endswith("/-"):
        head = raw[: -len("/-")]
    path = "/" + head.strip("/")
    tokens = [t for t in tail.split("/") if t] if separator else []
    return path, tokens


def parse_fetch_selector(tokens: list[str], query_limit: str | None) -> FetchSelector:
    parsed = _parse_tokens(tokens, query_limit, allow_delete_scopes=False)
    return_format = parsed.return_format or ReturnFormat.LINK
    if return_format is ReturnFormat.ENTRIES and parsed.entry_id is not None:
        raise BadRequest("Entries cannot be selected by entry ID", reason="invalid_selector")
    default_limit = DEFAULT_ENTRIES_LIMIT if return_format is ReturnFormat.ENTRIES else 1
    limit = default_limit if parsed.limit is None else parsed.limit
    if limit != 1 and not return_format.allows_many:
        raise BadRequest(
            f"A limit other than 1 is only allowed for link and metadata, not {return_format.value}",
            reason="invalid_selector",
        )
    return FetchSelector(
        return_format=return_format,
        order=parsed.order or Order.CREATED,
        limit=limit,
        entry_id=parsed.entry_id,
    )


def parse_delete_selector(tokens: list[str], query_limit: str | None) -> DeleteSelector:
    parsed = _parse_tokens(tokens, query_limit, allow_delete_scopes=True)
    if parsed.return_format is not None:
        raise BadRequest(
            f"Return format '{parsed.return_format.value}' has no meaning on delete",
            reason="invalid_selector",
        )
    scope = parsed.scope or DeleteScope.NEWEST
    if scope is not DeleteScope.NEWEST and (parsed.limit is not None or parsed.order is not None):
        raise BadRequest(f"'{scope.value}' cannot be combined with an order or a limit", reason="invalid_selector")
    if scope is not DeleteScope.NEWEST and parsed.entry_id is not None:
        raise BadRequest(f"'{scope.value}' cannot be combined with entry", reason="invalid_selector")
    return DeleteSelector(
        scope=scope,
        order=parsed.order or Order.CREATED,
        limit=1 if parsed.limit is None else parsed.limit,
        entry_id=parsed.entry_id,
    )


def _parse_tokens(tokens: list[str], query_limit: str | None, *, allow_delete_scopes: bool) -> _Tokens:
    parsed = _Tokens()
    position = 0
    while position < len(tokens):
        token = tokens[position]
        word = token.lower()
        if word in _RETURN_FORMATS:
            _once(parsed.return_format, "return format")
            parsed.return_format = _RETURN_FORMATS[word]
        elif word in _ORDERS:
            _once(parsed.order, "order")
            parsed.order = _ORDERS[word]
        elif word == "entry":
            _once(parsed.entry_id, "entry")
            position += 1
            if position >= len(tokens):
                raise BadRequest("'entry' must be followed by an entry id", reason="invalid_selector")
            parsed.entry_id = parse_entry_id(tokens[position])
        elif allow_delete_scopes and word in ("all", "recursive"):
            _once(parsed.scope, "delete mode")
            parsed.scope = DeleteScope(word)
        elif _is_integer(token):
            _once(parsed.limit, "limit")
            parsed.limit = _parse_limit(token)
        else:
            raise BadRequest(f"Unknown query modifier '{token}'", reason="invalid_selector")
        position += 1
    if query_limit is not None:
        _once(parsed.limit, "limit")
        parsed.limit = _parse_limit(query_limit)
    if parsed.entry_id is not None and (parsed.order is not None or parsed.limit is not None):
        raise BadRequest("An order or a limit cannot be combined with entry", reason="invalid_selector")
    return parsed


def _once(existing: object, what: str) -> None:
    if existing is not None:
        raise BadRequest(f"The {what} is given more than once", reason="invalid_selector")


_INTEGER = re.compile(r"-?[0-9]+")


def _is_integer(token: str) -> bool:
    return _INTEGER.fullmatch(token) is not None


def _parse_limit(raw: str) -> int:
    if not _is_integer(raw):
        raise BadRequest(f"Limit '{raw[:24]}' is not a whole number", reason="invalid_limit")
    if len(raw.lstrip("-").lstrip("0")) > len(str(MAX_LIMIT)):
        # Also keeps int() away from digit strings past Python's conversion limit.
        raise BadRequest(
            f"Limit '{raw[:24]}' is out of range: use 1 to {MAX_LIMIT}, or -1 for all", reason="invalid_limit"
        )
    limit = int(raw)
    if limit == ALL:
        return ALL
    if limit < 1 or limit > MAX_LIMIT:
        raise BadRequest(f"Limit {limit} is out of range: use 1 to {MAX_LIMIT}, or -1 for all", reason="invalid_limit")
    return limit


MAX_ENTRY_ID = 2**63 - 1  # the bigint column's range


def parse_entry_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_ENTRY_ID:
        raise BadRequest(
            f"Entry id '{raw[:24]}' is not a whole number from 0 to {MAX_ENTRY_ID}", reason="invalid_entry_id"
        )
    return int(raw)


def parse_update_selector(tokens: list[str], query_limit: str | None = None) -> int:
    """An update names exactly one entry: `/-/entry/{id}`, with no order, limit or return format."""
    parsed = _parse_tokens(tokens, query_limit, allow_delete_scopes=False)
    if parsed.return_format is not None:
        raise BadRequest(
            f"A return format ('{parsed.return_format.value}') is not allowed on an update", reason="invalid_selector"
        )
    if parsed.order is not None or parsed.limit is not None:
        raise BadRequest("An order or a limit is not allowed on an update", reason="invalid_selector")
    if parsed.entry_id is None:
        raise BadRequest("Entry id must be specified on an update request: /-/entry/{id}", reason="invalid_selector")
    return parsed.entry_id
