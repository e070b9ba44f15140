"""Listing a collection: the query of `/-/list`, `/-/zip` and `/paths`, and their opaque cursors.

A cursor is the sort key of the last row a page returned (keyset pagination), so a page
never depends on row counts: assets added or deleted between two pages cannot shift an
asset from one page to another, which an offset would. The cursor also records the
query it belongs to, so it cannot be replayed against a different sort or path.
"""

from __future__ import annotations

import base64
import binascii
import enum
from datetime import datetime

import msgspec

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.query import LABEL_PREFIX, SIGNATURE_KEY, TRANSFORMATION_KEYS
from konifer_edge.domain.selectors import Order

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 250
DEFAULT_CHILDREN_PAGE_SIZE = 100
MAX_CHILDREN_PAGE_SIZE = 1000
MAX_CURSOR_CHARS = 2048

LISTING_KEYS = frozenset({"limit", "cursor", "sort", "order", "recursive", "include_total"})
BUNDLE_KEYS = frozenset({"limit", "sort", "order", "recursive"})
CHILDREN_KEYS = frozenset({"limit", "cursor"})


class SortOrder(enum.Enum):
    ASC = "asc"
    DESC = "desc"


class ListingCursor(msgspec.Struct, frozen=True, forbid_unknown_fields=True, array_like=True):
    """Where the previous page stopped, and the query it was made for."""

    sort: Order
    order: SortOrder
    path: str
    recursive: bool
    moment: datetime
    row_path: str
    entry_id: int


class ListingQuery(msgspec.Struct, frozen=True):
    path: str
    recursive: bool
    limit: int
    sort: Order
    order: SortOrder
    labels: dict[str, str]
    include_total: bool = False
    after: ListingCursor | None = None


class ChildrenQuery(msgspec.Struct, frozen=True):
    prefix: str
    limit: int
    after: str | None = None


class _ChildrenCursor(msgspec.Struct, frozen=True, array_like=True):
    prefix: str
    child: str


def _encode(value: msgspec.Struct) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).rstrip(b"=").decode("ascii")


def _decode(raw: str, kind: type[msgspec.Struct]) -> object:
    if len(raw) > MAX_CURSOR_CHARS:
        raise BadRequest("The cursor is too long; pass back the one a page returned", reason="invalid_cursor")
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        return msgspec.json.decode(data, type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadRequest("The cursor is not one this service returned", reason="invalid_cursor") from None


def encode_cursor(cursor: ListingCursor) -> str:
    return _encode(cursor)


def encode_children_cursor(prefix: str, child: str) -> str:
    return _encode(_ChildrenCursor(prefix=prefix, child=child))


def _single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in values:
            raise BadRequest(f"The parameter '{key}' is given more than once", reason="invalid_query")
        values[key] = value
    return values


def split_collection_query(
    pairs: list[tuple[str, str]], accepted: frozenset[str], *, transformations: bool
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Split a collection query into its own parameters, label filters and transformation parameters.

    Any other key is a label filter (`label:KEY` forces the label meaning), as on fetch.
    """
    own: list[tuple[str, str]] = []
    labels: dict[str, str] = {}
    transformation: dict[str, str] = {}
    for key, value in pairs:
        if key.startswith(LABEL_PREFIX):
            labels.setdefault(key[len(LABEL_PREFIX) :], value)
        elif key in accepted:
            own.append((key, value))
        elif key in TRANSFORMATION_KEYS:
            if not transformations:
                raise BadRequest(f"The transformation parameter '{key}' has no meaning here", reason="invalid_query")
            transformation.setdefault(key, value)
        elif key in LISTING_KEYS or key == "cursor":
            raise BadRequest(f"The parameter '{key}' has no meaning here", reason="invalid_query")
        elif key != SIGNATURE_KEY:
            labels.setdefault(key, value)
    return _single_values(own), labels, transformation


def parse_boolean(name: str, raw: str | None, default: bool) -> bool:
    """`?recursive`, `?recursive=true` and `?recursive=1` are all true."""
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in ("", "true", "1", "yes"):
        return True
    if word in ("false", "0", "no"):
        return False
    raise BadRequest(f"'{name}' must be true or false, not '{raw[:24]}'", reason="invalid_query")


def parse_page_size(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not 1 <= int(text) <= maximum:
        raise BadRequest(
            f"'limit' must be a whole number from 1 to {maximum}, not '{raw[:24]}'", reason="invalid_limit"
        )
    return int(text)


def _choice(name: str, raw: str | None, kind: type[enum.Enum], default: enum.Enum) -> enum.Enum:
    if raw is None:
        return default
    try:
        return kind(raw.strip().lower())
    except ValueError:
        allowed = " or ".join(member.value for member in kind)
        raise BadRequest(f"'{name}' must be {allowed}, not '{raw[:24]}'", reason="invalid_query") from None


def parse_sort(values: dict[str, str]) -> tuple[Order, SortOrder]:
    sort = _choice("sort", values.get("sort"), Order, Order.CREATED)
    order = _choice("order", values.get("order"), SortOrder, SortOrder.DESC)
    assert isinstance(sort, Order) and isinstance(order, SortOrder)
    return sort, order


def parse_listing_query(
    path: str, recursive_token: bool, values: dict[str, str], labels: dict[str, str]
) -> ListingQuery:
    recursive = parse_boolean("recursive", values.get("recursive"), recursive_token)
    sort, order = parse_sort(values)
    after: ListingCursor | None = None
    raw_cursor = values.get("cursor")
    if raw_cursor:
        decoded = _decode(raw_cursor, ListingCursor)
        assert isinstance(decoded, ListingCursor)
        if (decoded.sort, decoded.order, decoded.path, decoded.recursive) != (sort, order, path, recursive):
            raise BadRequest(
                "The cursor belongs to a different listing (path, recursive, sort or order changed)",
                reason="invalid_cursor",
            )
        after = decoded
    return ListingQuery(
        path=path,
        recursive=recursive,
        limit=parse_page_size(values.get("limit"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        sort=sort,
        order=order,
        labels=labels,
        include_total=parse_boolean("include_total", values.get("include_total"), False),
        after=after,
    )


def parse_children_query(prefix: str, values: dict[str, str]) -> ChildrenQuery:
    after: str | None = None
    raw_cursor = values.get("cursor")
    if raw_cursor:
        decoded = _decode(raw_cursor, _ChildrenCursor)
        assert isinstance(decoded, _ChildrenCursor)
        if decoded.prefix != prefix:
            raise BadRequest("The cursor belongs to a different path", reason="invalid_cursor")
        after = decoded.child
    return ChildrenQuery(
        prefix=prefix,
        limit=parse_page_size(values.get("limit"), DEFAULT_CHILDREN_PAGE_SIZE, MAX_CHILDREN_PAGE_SIZE),
        after=after,
    )
