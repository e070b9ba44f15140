"""Splitting a fetch's query string into transformation parameters, label filters and the limit."""

from __future__ import annotations

import msgspec

TRANSFORMATION_KEYS = frozenset(
    {"w", "h", "fit", "g", "format", "r", "f", "filter", "blur", "q", "pad", "pad-c", "strip", "cs", "profile", "dpr"}
)
LIMIT_KEY = "limit"
SIGNATURE_KEY = "s"
RESERVED_KEYS = TRANSFORMATION_KEYS | {LIMIT_KEY, SIGNATURE_KEY}
LABEL_PREFIX = "label:"


class QueryParts(msgspec.Struct, frozen=True):
    labels: dict[str, str]
    transformation: dict[str, str]
    limit: str | None


def split_query(pairs: list[tuple[str, str]]) -> QueryParts:
    """Any key that is not reserved is a label filter; `label:KEY` forces the label meaning.

    A repeated key keeps its first value, as Konifer's signing rule does.
    """
    labels: dict[str, str] = {}
    transformation: dict[str, str] = {}
    limit: str | None = None
    for key, value in pairs:
        if key.startswith(LABEL_PREFIX):
            labels.setdefault(key[len(LABEL_PREFIX) :], value)
        elif key in TRANSFORMATION_KEYS:
            transformation.setdefault(key, value)
        elif key == LIMIT_KEY:
            limit = value if limit is None else limit
        elif key != SIGNATURE_KEY:
            labels.setdefault(key, value)
    return QueryParts(labels=labels, transformation=transformation, limit=limit)
