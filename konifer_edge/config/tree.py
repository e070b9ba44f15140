"""Operations on the raw configuration tree: merging and Konifer's key aliases.

Path settings inherit by merging these raw trees (objects key by key, lists and
scalars replaced) before anything is validated, so a child pattern can override a
single key of an object its parent configured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from konifer_edge.config.errors import ConfigError

log = logging.getLogger(__name__)

RawObject = dict[str, object]
KeyPath = tuple[str, ...]


def deep_merge(base: Mapping[str, object], override: Mapping[str, object]) -> RawObject:
    """``override`` laid over ``base``: objects merge key by key; anything else replaces."""
    merged: RawObject = dict(base)
    for name, value in override.items():
        inherited = merged.get(name)
        if isinstance(inherited, Mapping) and isinstance(value, Mapping):
            merged[name] = deep_merge(inherited, value)
        else:
            merged[name] = value
    return merged


def plain_copy(value: object) -> object:
    """A deep copy with every object as a plain ``dict`` and every list as a ``list``."""
    if isinstance(value, Mapping):
        return {str(name): plain_copy(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_copy(item) for item in value]
    return value


def set_path(tree: RawObject, path: KeyPath, value: object) -> bool:
    """Put ``value`` at ``path``, creating objects on the way; ``False`` if a non-object is in the way."""
    node = tree
    for name in path[:-1]:
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            return False
        node = child
    node[path[-1]] = value
    return True


@dataclass(frozen=True)
class Alias:
    """An older placement of a path key that Konifer still reads."""

    written: KeyPath
    canonical: KeyPath
    deprecated: bool = False
    """Konifer itself no longer reads it: loading it logs a warning."""


PATH_ALIASES: Final = (
    Alias(("bucket",), ("object-store", "bucket")),
    Alias(("lqip",), ("image", "lqip")),
    Alias(("eager-variants",), ("transform", "eager-variants")),
    Alias(("preprocessing",), ("transform", "preprocessing")),
    Alias(("object-store", "redirect"), ("return-format", "redirect")),
    Alias(("transform", "retention", "expire"), ("transform", "expire")),
    # The ruleset list of labelling rules, renamed twice: label-rules (<= v0.7), edit-rules (v0.8-v0.9).
    Alias(("upload-ruleset", "label-rules"), ("upload-ruleset", "modify-rules"), deprecated=True),
    Alias(("upload-ruleset", "edit-rules"), ("upload-ruleset", "modify-rules"), deprecated=True),
    # Konifer's later name for the redirect settings: `delivery.strategy = service | presigned | template`.
    Alias(("delivery",), ("return-format", "redirect")),
)

_MISSING: Final = object()


def apply_path_aliases(settings: RawObject, key: str) -> dict[str, str]:
    """Move aliased keys of one pattern's settings to their canonical place.

    Returns canonical dotted names to the names as written, so that an error
    found later can name the key the operator actually typed.
    """
    renamed: dict[str, str] = {}
    for alias in PATH_ALIASES:
        value = _pop_path(settings, alias.written)
        if value is _MISSING:
            continue
        written, canonical = ".".join(alias.written), ".".join(alias.canonical)
        if alias.deprecated:
            log.warning("%s.%s is an older name of %s; it is read as that, rename it", key, written, canonical)
        _place(settings, alias.canonical, value, f"{key}.{written}", canonical)
        renamed[canonical] = written
    return renamed


def _pop_path(tree: RawObject, path: KeyPath) -> object:
    node: object = tree
    for name in path[:-1]:
        node = node.get(name) if isinstance(node, dict) else None
    if not isinstance(node, dict) or path[-1] not in node:
        return _MISSING
    return node.pop(path[-1])


def _place(tree: RawObject, path: KeyPath, value: object, written_key: str, canonical: str) -> None:
    existing = _get_path(tree, path)
    if existing is _MISSING:
        # A non-object in the way is reported by the reader when it reads that key.
        set_path(tree, path, value)
        return
    if isinstance(existing, Mapping) and isinstance(value, Mapping) and not _overlap(existing, value):
        set_path(tree, path, deep_merge(existing, value))
        return
    raise ConfigError(written_key, f"is also set as '{canonical}'; keep only one of the two")


def _get_path(tree: RawObject, path: KeyPath) -> object:
    node: object = tree
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return _MISSING
        node = node[name]
    return node


def _overlap(first: Mapping[str, object], second: Mapping[str, object]) -> bool:
    for name in first.keys() & second.keys():
        left, right = first[name], second[name]
        if left == right:
            continue  # the same value in both spellings says nothing contradictory
        if not (isinstance(left, Mapping) and isinstance(right, Mapping)) or _overlap(left, right):
            return True
    return False
