"""Path patterns and the resolution of an asset path to its settings (spec 05 section 5).

Patterns form a trie by their lower-cased segments, rooted at ``/**``. A path is
resolved by walking its segments from the root, trying at each step the literal
segment, then ``*`` (one segment), then ``**`` (any number, zero included). Of
the configured patterns the walk reaches, the deepest applies; among equally
deep ones the walk's order decides (literal before ``*`` before ``**``, fewer
segments swallowed by ``**`` first). A pattern is reached even when the path goes
on below it, which is how ``/users`` governs ``/users/123``.

Unconfigured intermediate nodes (``/users/*`` when only ``/users/*/profile`` is
written) never win: they would only carry an ancestor's settings, and letting
them win ties would hide a sibling ``/users/**``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Final, Generic, Protocol, TypeVar, cast

import msgspec

from konifer_edge.config.errors import ConfigError

ONE_SEGMENT: Final = "*"
ANY_SEGMENTS: Final = "**"
ROOT_PATTERN: Final = "/**"
RESOLVE_CACHE_SIZE: Final = 65536

Segments = tuple[str, ...]


class _Patterned(Protocol):
    """What the trie needs of the settings it holds: the pattern they were configured at."""

    @property
    def pattern(self) -> str: ...


# The settings per pattern (config.model.PathSettings); the trie itself knows only their pattern.
Settings = TypeVar("Settings", bound=_Patterned)


def parse_pattern(pattern: str, key: str) -> Segments:
    """The lower-cased segments of a pattern; ``()`` is the root (``/`` or ``/**``)."""
    segments = split_path(pattern.strip().lower())
    for segment in segments:
        if "*" in segment and segment not in (ONE_SEGMENT, ANY_SEGMENTS):
            raise ConfigError(key, f"segment {segment!r}: a wildcard must be a whole segment, '*' or '**'")
    return () if segments == (ANY_SEGMENTS,) else segments


def pattern_text(segments: Segments) -> str:
    return "/" + "/".join(segments) if segments else ROOT_PATTERN


def split_path(path: str) -> Segments:
    return tuple(segment for segment in path.split("/") if segment)


def ancestors(segments: Segments) -> Iterator[Segments]:
    """Every pattern above ``segments`` in the trie, nearest first, ending at the root."""
    for length in range(len(segments) - 1, -1, -1):
        parent = segments[:length]
        yield () if parent == (ANY_SEGMENTS,) else parent


class _Node(Generic[Settings]):
    __slots__ = ("children", "depth", "settings")

    def __init__(self, depth: int) -> None:
        self.children: dict[str, _Node[Settings]] = {}
        self.depth = depth
        self.settings: Settings | None = None

    def child(self, segment: str) -> _Node[Settings]:
        node = self.children.get(segment)
        if node is None:
            node = self.children[segment] = _Node[Settings](self.depth + 1)
        return node


class PathConfiguration(Generic[Settings]):
    """Validated settings per pattern, and the walk that picks them for a path.

    Build it from fully merged, validated settings (sections.py does the merging);
    ``resolve`` never raises and returns the same object for every spelling of a
    path, because results are memoised per lower-cased path.
    """

    def __init__(self, patterns: Mapping[str, Settings], default: Settings | None = None) -> None:
        self._by_pattern: dict[str, Settings] = {}
        self._root = _Node[Settings](depth=0)
        for pattern, settings in patterns.items():
            self._insert(parse_pattern(pattern, key=f"paths.{pattern}"), settings)
        if self._root.settings is None:
            if default is None:
                raise ValueError("the root pattern '/**' needs settings, or pass a default")
            self._insert((), default)
        self._resolve_lower = functools.lru_cache(maxsize=RESOLVE_CACHE_SIZE)(self._walk)

    def _insert(self, segments: Segments, settings: Settings) -> None:
        text = pattern_text(segments)
        if settings.pattern != text:
            # The settings are msgspec Structs (PathSettings): a copy carries the normalised pattern.
            settings = cast(Settings, msgspec.structs.replace(cast(msgspec.Struct, settings), pattern=text))
        node = self._root
        for segment in segments:
            node = node.child(segment)
        node.settings = settings
        self._by_pattern[text] = settings

    @property
    def patterns(self) -> tuple[str, ...]:
        """The configured patterns, normalised (lower case, ``/**`` for the root)."""
        return tuple(self._by_pattern)

    @property
    def root(self) -> Settings:
        return self._by_pattern[ROOT_PATTERN]

    def for_pattern(self, pattern: str) -> Settings | None:
        """The settings configured for exactly this pattern, if it is configured."""
        return self._by_pattern.get(pattern_text(parse_pattern(pattern, key="pattern")))

    def resolve(self, path: str) -> Settings:
        """The settings that govern an asset path such as ``/users/123/profile-picture``."""
        return self._resolve_lower(path.lower())

    def _walk(self, lower_path: str) -> Settings:
        segments = split_path(lower_path)
        best = self._root
        visited: set[tuple[int, int]] = set()
        # An explicit stack in the same order as a recursive walk keeps the
        # tie-breaking order while bounding the work: each (node, position)
        # state is expanded once, however many '**' routes lead to it.
        stack: list[tuple[_Node[Settings], int]] = [(self._root, 0)]
        while stack:
            node, position = stack.pop()
            state = (id(node), position)
            if state in visited:
                continue
            visited.add(state)
            if node.settings is not None and node.depth > best.depth:
                best = node
            stack.extend(reversed(list(_next_states(node, segments, position))))
        assert best.settings is not None  # only configured nodes are ever chosen
        return best.settings

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PathConfiguration):
            return NotImplemented
        return self._by_pattern == other._by_pattern

    __hash__ = None  # type: ignore[assignment]  # settings hold dicts; equal configurations must not hash

    def __repr__(self) -> str:
        return f"PathConfiguration(patterns={list(self._by_pattern)!r})"


def _next_states(node: _Node[Settings], segments: Segments, position: int) -> Iterator[tuple[_Node[Settings], int]]:
    """Where the walk may go from ``node``, in preference order."""
    if position < len(segments):
        literal = node.children.get(segments[position])
        if literal is not None:
            yield literal, position + 1
        one = node.children.get(ONE_SEGMENT)
        if one is not None:
            yield one, position + 1
    any_number = node.children.get(ANY_SEGMENTS)
    if any_number is not None:
        for swallowed_to in range(position, len(segments) + 1):
            yield any_number, swallowed_to
