"""Typed, key-tracking access to one object of the raw configuration tree.

Every accessor remembers the name it was asked for, so once a section has been
read, anything left over is a key nobody knows: :meth:`Section.finish` reports it
by its full dotted name instead of letting a typo silently fall back to a default.
Values are read loosely (``"5432"`` is a port, ``"true"`` a boolean) because
HOCON, Konifer's own format, converts between strings and scalars the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Final, TypeVar

from konifer_edge.config.durations import (
    format_duration,
    parse_duration,
)
from konifer_edge.config.errors import ConfigError

T = TypeVar("T")
Number = TypeVar("Number", int, float)
Choice = TypeVar("Choice", bound=str)

_TRUE_WORDS: Final = frozenset({"true", "yes", "on"})
_FALSE_WORDS: Final = frozenset({"false", "no", "off"})


def join_key(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def describe(value: object) -> str:
    """A value as it should appear in an error message: short and unambiguous."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


class Section:
    """One object of the configuration, read by name."""

    def __init__(self, data: Mapping[str, object], key: str = "") -> None:
        self._data = data
        self.key = key
        self._known: set[str] = set()

    @classmethod
    def of(cls, value: object, key: str) -> Section:
        """A section from a value that must be an object (absent counts as empty)."""
        if value is None:
            return cls({}, key)
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected an object (a table of keys), got {describe(value)}")
        return cls(value, key)

    @property
    def data(self) -> Mapping[str, object]:
        return self._data

    def key_of(self, name: str) -> str:
        return join_key(self.key, name)

    def names(self) -> list[str]:
        """Every key present, all counted as known: for objects whose keys are names (profiles, patterns)."""
        self._known.update(self._data)
        return list(self._data)

    def has(self, name: str) -> bool:
        self._known.add(name)
        return self._data.get(name) is not None

    def raw(self, name: str) -> object:
        """The untyped value; an explicit ``null`` counts as absent."""
        self._known.add(name)
        return self._data.get(name)

    def section(self, name: str) -> Section:
        return Section.of(self.raw(name), self.key_of(name))

    def finish(self) -> None:
        """Fail on the first key that no accessor asked for."""
        for name in self._data:
            if name not in self._known:
                raise ConfigError(self.key_of(name), self._unknown_key_message(name))

    def _unknown_key_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, sorted(self._known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key{hint}"

    def _convert(self, name: str, convert: Callable[[object], T]) -> T | None:
        """The converted value, ``None`` when absent; conversion errors get the key."""
        value = self.raw(name)
        if value is None:
            return None
        try:
            return convert(value)
        except ValueError as error:
            raise ConfigError(self.key_of(name), str(error)) from None

    def string(self, name: str, default: str) -> str:
        value = self._convert(name, _as_string)
        return default if value is None else value

    def optional_string(self, name: str) -> str | None:
        return self._convert(name, _as_string)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._convert(name, _as_boolean)
        return default if value is None else value

    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._convert(name, _as_integer)
        return default if value is None else self._within(name, value, minimum, maximum)

    def optional_integer(self, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self._convert(name, _as_integer)
        return None if value is None else self._within(name, value, minimum, maximum)

    def duration(self, name: str, default: timedelta, *, maximum: timedelta | None = None) -> timedelta:
        """A duration longer than zero (and at most ``maximum``)."""
        value = self.optional_duration(name, maximum=maximum)
        return default if value is None else value

    def optional_duration(self, name: str, *, maximum: timedelta | None = None) -> timedelta | None:
        value = self._convert(name, parse_duration)
        if value is None:
            return None
        if value <= timedelta(0):
            raise ConfigError(self.key_of(name), f"must be longer than zero, got {describe(self.raw(name))}")
        if maximum is not None and value > maximum:
            raise ConfigError(
                self.key_of(name),
                f"must be at most {format_duration(maximum)}, got {describe(self.raw(name))}",
            )
        return value

    def seconds(self, name: str, *, minimum: int) -> int | None:
        """Whole seconds, written as a number or as a duration such as ``'365d'``."""
        value = self._convert(name, _as_whole_seconds)
        return None if value is None else self._within(name, value, minimum, None)

    def choice(self, name: str, options: Sequence[Choice], default: Choice) -> Choice:
        """One of ``options``, matched without regard to case."""
        value = self.optional_choice(name, options)
        return default if value is None else value

    def optional_choice(self, name: str, options: Sequence[Choice]) -> Choice | None:
        return self._convert(name, lambda value: _as_choice(value, options))

    def string_list(self, name: str) -> tuple[str, ...] | None:
        """The list as written; ``None`` when absent (an empty list is a value)."""
        return self._convert(name, _as_string_list)

    def _within(self, name: str, value: Number, minimum: Number | None, maximum: Number | None) -> Number:
        if minimum is not None and value < minimum:
            raise ConfigError(self.key_of(name), f"must be at least {minimum}, got {describe(value)}")
        if maximum is not None and value > maximum:
            raise ConfigError(self.key_of(name), f"must be at most {maximum}, got {describe(value)}")
        return value


def _as_string(value: object) -> str:
    if isinstance(value, str):
        return value
    # HOCON reads an unquoted `bucket = 2024` as a number; the operator meant text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected text, got {describe(value)}")


def _as_boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError(f"expected true or false, got {describe(value)}")


def _as_integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            return int(text)
    raise ValueError(f"expected a whole number, got {describe(value)}")


def _as_whole_seconds(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    seconds = parse_duration(value).total_seconds()
    if not seconds.is_integer():
        raise ValueError(f"expected whole seconds, got {describe(value)}")
    return int(seconds)


def _as_choice(value: object, options: Sequence[Choice]) -> Choice:
    if isinstance(value, str):
        wanted = value.strip().lower()
        for option in options:
            if option == wanted:
                return option
    allowed = ", ".join(f"'{option}'" for option in options)
    raise ValueError(f"expected one of {allowed}, got {describe(value)}")


def _as_list(value: object) -> list[object]:
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(f"expected a list, got {describe(value)}")


def _as_string_list(value: object) -> tuple[str, ...]:
    return tuple(_as_string(item) for item in _as_list(value))
