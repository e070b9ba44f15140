"""Splitting a fetch's query string into transformation parameters, label filters and the limit."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.parameters import TRANSFORMATION_KEYS

__all__ = [
    "LABEL_PREFIX",
    "LIMIT_KEY",
    "PIXEL_LAYOUT_KEY",
    "RESERVED_KEYS",
    "SIGNATURE_KEY",
    "TRANSFORMATION_KEYS",
    "QueryParts",
    "split_query",
    "transformation_from_json",
]

LIMIT_KEY = "limit"
SIGNATURE_KEY = "s"
# Konifer's raw `pixels` output takes its band layout here; we do not produce that format, but
# the name stays reserved so a request written for it never filters by a label of that name.
PIXEL_LAYOUT_KEY = "pixel-layout"
RESERVED_KEYS = TRANSFORMATION_KEYS | {LIMIT_KEY, SIGNATURE_KEY, PIXEL_LAYOUT_KEY}
LABEL_PREFIX = "label:"


class QueryParts(msgspec.Struct, frozen=True):
    labels: dict[str, str]
    transformation: dict[str, str]
    limit: str | None


def split_query(pairs: list[tuple[str, str]]) -> QueryParts:
    """Any key that is not reserved is a label filter; `label:KEY` forces the label meaning.

    A parameter with an empty value filters nothing, as in Konifer (`?a=` or `?label:a=` is not
    "label a is empty"). A repeated key keeps its first value, as Konifer's signing rule does.
    """
    labels: dict[str, str] = {}
    transformation: dict[str, str] = {}
    limit: str | None = None
    for key, value in pairs:
        if key.startswith(LABEL_PREFIX):
            if value:
                labels.setdefault(key[len(LABEL_PREFIX) :], value)
        elif key in TRANSFORMATION_KEYS:
            transformation.setdefault(key, value)
        elif key == LIMIT_KEY:
            limit = value if limit is None else limit
        elif key not in RESERVED_KEYS and value:
            labels.setdefault(key, value)
    return QueryParts(labels=labels, transformation=transformation, limit=limit)


def transformation_from_json(raw: Mapping[str, str | int | float]) -> dict[str, str]:
    """Transformation parameters as a query string would carry them, sorted by key.

    Numbers are accepted as well as strings (`{"w": 200}`), as profiles in the configuration
    accept them; anything but a transformation key is refused (a JSON body has no place for
    labels, a limit or a signature).
    """
    parameters: dict[str, str] = {}
    for key in sorted(raw):
        if key not in TRANSFORMATION_KEYS:
            raise BadRequest(
                f"'{key[:64]}' is not a transformation parameter; use {', '.join(sorted(TRANSFORMATION_KEYS))}",
                reason="invalid_transformation",
            )
        value = raw[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        parameters[key] = str(value)
    return parameters
