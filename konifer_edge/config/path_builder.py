"""Building the :class:`PathConfiguration` from the ``paths`` section.

Steps, all at start-up: collect each pattern's own settings (map form or
Konifer's older list form), move aliased keys to their canonical place, merge
each pattern over its nearest configured ancestor in the pattern trie (parents
first), then validate every merged result once into a frozen ``PathSettings``.
Errors name the pattern as written, e.g. ``paths./users/**.cache-control.max-age``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from konifer_edge.config.errors import ConfigError
from konifer_edge.config.model import PathSettings
from konifer_edge.config.path_settings import PathContext, read_path_settings
from konifer_edge.config.paths import (
    ROOT_PATTERN,
    PathConfiguration,
    Segments,
    ancestors,
    parse_pattern,
    pattern_text,
)
from konifer_edge.config.reader import Section, describe
from konifer_edge.config.tree import RawObject, apply_path_aliases, deep_merge, plain_copy

PATHS_KEY = "paths"


@dataclass
class _Pattern:
    written: str
    own: RawObject
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{PATHS_KEY}.{self.written}"


def build_path_configuration(raw_paths: object, context: PathContext) -> PathConfiguration[PathSettings]:
    patterns = _collect_patterns(raw_paths)
    if () not in patterns:
        patterns[()] = _Pattern(written=ROOT_PATTERN, own={})
    merged: dict[Segments, RawObject] = {}
    settings: dict[str, PathSettings] = {}
    # Shorter patterns first: every ancestor is merged before its descendants.
    for segments in sorted(patterns, key=len):
        pattern = patterns[segments]
        parent = next((ancestor for ancestor in ancestors(segments) if ancestor in merged), ())
        merged[segments] = deep_merge(merged.get(parent, {}), pattern.own)
        settings[pattern_text(segments)] = _read(pattern, merged[segments], context)
    return PathConfiguration(settings)


def _read(pattern: _Pattern, merged: RawObject, context: PathContext) -> PathSettings:
    try:
        return read_path_settings(Section(merged, pattern.key), context)
    except ConfigError as error:
        raise _as_written(error, pattern) from None


def _as_written(error: ConfigError, pattern: _Pattern) -> ConfigError:
    """Report an error under an alias's spelling when the value was written that way."""
    for canonical, written in pattern.renamed.items():
        canonical_key = f"{pattern.key}.{canonical}"
        if error.key == canonical_key or error.key.startswith((canonical_key + ".", canonical_key + "[")):
            return error.renamed(f"{pattern.key}.{written}{error.key[len(canonical_key) :]}")
    return error


def _collect_patterns(raw_paths: object) -> dict[Segments, _Pattern]:
    patterns: dict[Segments, _Pattern] = {}
    for written, value in _entries(raw_paths):
        key = f"{PATHS_KEY}.{written}"
        segments = parse_pattern(written, key)
        own = plain_copy(Section.of(value, key).data)
        assert isinstance(own, dict)
        renamed = apply_path_aliases(own, key)
        existing = patterns.get(segments)
        if existing is None:
            patterns[segments] = _Pattern(written=written, own=own, renamed=renamed)
        else:
            # The same pattern written twice (or in two spellings of case) reads
            # like HOCON's own duplicate keys: the later object merges over the earlier.
            existing.own = deep_merge(existing.own, own)
            existing.renamed.update(renamed)
    return patterns


def _entries(raw_paths: object) -> list[tuple[str, object]]:
    if raw_paths is None:
        return []
    if isinstance(raw_paths, Mapping):
        return [(str(pattern), value) for pattern, value in raw_paths.items()]
    if isinstance(raw_paths, list | tuple):
        return [_list_entry(index, entry) for index, entry in enumerate(raw_paths)]
    raise ConfigError(
        PATHS_KEY,
        f"expected an object keyed by path pattern, or a list of {{ path = ... }} entries, got {describe(raw_paths)}",
    )


def _list_entry(index: int, entry: object) -> tuple[str, object]:
    """One entry of Konifer's older ``paths = [ { path = "/users/**", ... } ]`` form."""
    section = Section.of(entry, f"{PATHS_KEY}[{index}]")
    pattern = section.optional_string("path")
    if pattern is None or not pattern.strip():
        raise ConfigError(section.key_of("path"), "every entry of the list form needs a path pattern")
    return pattern.strip(), {name: value for name, value in section.data.items() if name != "path"}
