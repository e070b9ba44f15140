"""From the raw configuration tree to typed values: Konifer's written forms, and msgspec decoding.

The raw tree: both file formats are reduced to plain dicts, lists, text, numbers and booleans;
path settings inherit by merging these trees (objects key by key, lists and scalars replaced)
before anything is validated, so a child pattern can override one key of its parent's object.

Values as written: Konifer parses durations with Kotlin's ``Duration.parse`` (``30m``, ``1h 30m``,
``PT30M``) while HOCON itself knows ``30 minutes``; TOML has no duration type at all. Every one of
those spellings is accepted, as are HOCON's byte sizes and Konifer's pixel counts (``20MP``).

Decoding: the model declares what msgspec can check from the types: kebab-case names
(`rename="kebab"`), bounds (`msgspec.Meta(ge=, le=)`), choices (`Literal`) and the refusal of
unknown keys (`forbid_unknown_fields=True`). Two things are done around `msgspec.convert`:

- before it, values are read as loosely as HOCON writes them (`"5432"` is a port, `"yes"` a
  boolean, `"INFO"` the choice `info`, `30s` a duration), guided by the model's types; a field
  whose `Meta(extra=...)` names a unit (`{"unit": "size"}`) is parsed from Konifer's text forms,
  and one that names a reader (`{"read": function}`) by that function;
- after it fails, msgspec's `ValidationError` (`... - at $.url.max-bytes`) becomes a
  `ConfigError` naming the dotted key, in the wording the rest of the configuration uses.
"""

from __future__ import annotations

import difflib
import math
import re
import typing
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated, Final, Literal, TypeVar

import msgspec
import msgspec.inspect as mi

from konifer_edge.config.errors import ConfigError

# ---------------------------------------------------------------- the raw tree

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


# ---------------------------------------------------------------- values as written

_SECONDS_PER_UNIT: Final[dict[str, float]] = {}


def _register(seconds: float, *names: str) -> None:
    for name in names:
        _SECONDS_PER_UNIT[name] = seconds


_register(1e-9, "ns", "nano", "nanos", "nanosecond", "nanoseconds")
_register(1e-6, "us", "\u00b5s", "micro", "micros", "microsecond", "microseconds")
_register(1e-3, "ms", "milli", "millis", "millisecond", "milliseconds")
_register(1, "s", "sec", "secs", "second", "seconds")
_register(60, "m", "min", "mins", "minute", "minutes")
_register(3600, "h", "hr", "hrs", "hour", "hours")
_register(86400, "d", "day", "days")
_register(604800, "w", "week", "weeks")

# Calendar units have no fixed length, so a TTL written with them would silently
# mean different things on different days; they are refused with a clear reason.
_CALENDAR_UNITS: Final = frozenset({"mo", "month", "months", "y", "year", "years"})

_NUMBER: Final = r"\d+(?:\.\d+)?"
_COMPONENT: Final = re.compile(rf"\s*({_NUMBER})\s*([a-zA-Z\u00b5]+)\s*")
_PLAIN_NUMBER: Final = re.compile(rf"{_NUMBER}")
_ISO_8601: Final = re.compile(
    rf"P(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?",
    re.IGNORECASE,
)


def parse_duration(value: object) -> timedelta:
    """Read a duration: ``30s``, ``10m``, ``24h``, ``7d``, ``500ms``, ``1h 30m``,
    ``30 minutes``, ``PT30M``, a number of seconds, or a ``timedelta``.

    Raises ``ValueError`` naming what was wrong; callers add the key.
    """
    if isinstance(value, timedelta):
        return _not_negative(value)
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '30s' or '10m', got {value!r}")
    if isinstance(value, int | float):
        return _seconds(float(value), value)
    if isinstance(value, str):
        return _parse_duration_text(value)
    raise ValueError(f"expected a duration such as '30s' or '10m', got {value!r}")


def _parse_duration_text(text: str) -> timedelta:
    stripped = text.strip()
    if _PLAIN_NUMBER.fullmatch(stripped):
        return _seconds(float(stripped), text)
    iso = _ISO_8601.fullmatch(stripped)
    if iso and any(iso.groupdict().values()):
        return _from_iso_8601(iso)
    return _from_unit_components(stripped, text)


def _from_iso_8601(match: re.Match[str]) -> timedelta:
    parts = {name: float(amount) for name, amount in match.groupdict().items() if amount}
    return timedelta(**parts)


def _from_unit_components(stripped: str, original: str) -> timedelta:
    position = 0
    total_seconds = 0.0
    while position < len(stripped):
        component = _COMPONENT.match(stripped, position)
        if component is None:
            raise _bad_duration(original)
        amount, unit = component.groups()
        total_seconds += float(amount) * _seconds_per(unit.lower(), original)
        position = component.end()
    if position == 0:
        raise _bad_duration(original)
    return _seconds(total_seconds, original)


def _seconds_per(unit: str, original: str) -> float:
    if unit in _CALENDAR_UNITS:
        raise ValueError(f"{original!r}: months and years have no fixed length; write the duration in days")
    seconds = _SECONDS_PER_UNIT.get(unit)
    if seconds is None:
        raise _bad_duration(original)
    return seconds


def _seconds(seconds: float, original: object) -> timedelta:
    if not math.isfinite(seconds):
        raise _bad_duration(original)
    return _not_negative(timedelta(seconds=seconds))


def _not_negative(duration: timedelta) -> timedelta:
    if duration < timedelta(0):
        raise ValueError(f"a duration cannot be negative, got {duration}")
    return duration


def _bad_duration(original: object) -> ValueError:
    return ValueError(f"{original!r} is not a duration; write e.g. '500ms', '30s', '10m', '24h', '7d' or '1h 30m'")


def format_duration(duration: timedelta) -> str:
    """A duration in the shortest unit spelling ``parse_duration`` reads back: ``7d``, ``1h 30m``."""
    remaining_ms = round(duration.total_seconds() * 1000)
    parts: list[str] = []
    for unit, unit_ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        amount, remaining_ms = divmod(remaining_ms, unit_ms)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0s"


# HOCON's size units: one letter (and the "i" forms) are powers of two, the
# two-letter "B" forms are powers of ten.
_BYTES_PER_UNIT: Final[dict[str, int]] = {
    "b": 1, "byte": 1, "bytes": 1,
    "k": 1024, "ki": 1024, "kib": 1024, "kibibyte": 1024, "kibibytes": 1024,
    "kb": 1000, "kilobyte": 1000, "kilobytes": 1000,
    "m": 1024**2, "mi": 1024**2, "mib": 1024**2, "mebibyte": 1024**2, "mebibytes": 1024**2,
    "mb": 1000**2, "megabyte": 1000**2, "megabytes": 1000**2,
    "g": 1024**3, "gi": 1024**3, "gib": 1024**3, "gibibyte": 1024**3, "gibibytes": 1024**3,
    "gb": 1000**3, "gigabyte": 1000**3, "gigabytes": 1000**3,
}  # fmt: skip
_BYTE_SIZE: Final = re.compile(rf"({_NUMBER})\s*([a-zA-Z]*)")


def parse_byte_size(value: object) -> int:
    """Read a size in bytes: an integer, or text such as ``104857600``, ``100MiB`` or ``100MB``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _BYTE_SIZE.fullmatch(value.strip())
        if match:
            amount, unit = match.groups()
            multiplier = _BYTES_PER_UNIT.get(unit.lower() or "b")
            size = float(amount) * multiplier if multiplier else math.nan
            if math.isfinite(size) and size == int(size):
                return int(size)
    raise ValueError(f"expected a size in bytes such as 104857600 or '100MiB', got {value!r}")


_PIXELS_PER_UNIT: Final[dict[str, int]] = {"": 1, "p": 1, "kp": 1000, "mp": 1000**2, "gp": 1000**3}
_PIXEL_COUNT: Final = re.compile(rf"({_NUMBER})\s*([a-zA-Z]*)")


def parse_pixel_count(value: object) -> int:
    """Read a pixel count: an integer, or Konifer's text form such as ``20MP`` or ``1.5kp``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _PIXEL_COUNT.fullmatch(value.strip())
        if match and match.group(2).lower() in _PIXELS_PER_UNIT:
            pixels = float(match.group(1)) * _PIXELS_PER_UNIT[match.group(2).lower()]
            if math.isfinite(pixels) and pixels == int(pixels):
                return int(pixels)
    raise ValueError(f"expected a pixel count such as 20000000 or '20MP', got {value!r}")


# ---------------------------------------------------------------- decoding

S = TypeVar("S", bound=msgspec.Struct)

_TRUE_WORDS: Final = frozenset({"true", "yes", "on"})
_FALSE_WORDS: Final = frozenset({"false", "no", "off"})

# Units a field may declare in `msgspec.Meta(extra={"unit": ...})`: how its text is read.
_UNITS: Final[Mapping[str, Callable[[object], object]]] = {
    "size": parse_byte_size,
    "pixels": parse_pixel_count,
    "duration": parse_duration,
    "seconds": lambda value: parse_duration(value).total_seconds(),
    "whole-seconds": lambda value: int(parse_duration(value).total_seconds()),
    "age": lambda value: _age(value),
}
_DURATIONS: Final = frozenset({"duration", "seconds", "whole-seconds"})

# Text that must say something: surrounding blanks are dropped, and nothing left is refused.
NonBlank = Annotated[str, msgspec.Meta(min_length=1, extra={"trim": True})]
_BLANK: Final = "must not be blank; leave the key out to use the default"

SIZE: Final = {"unit": "size"}
PIXELS: Final = {"unit": "pixels"}

# Durations longer than zero, written as Konifer writes them (`30s`, `PT5M`, a number of seconds).
Duration = Annotated[timedelta, msgspec.Meta(extra={"unit": "duration"})]
Seconds = Annotated[float, msgspec.Meta(extra={"unit": "seconds"})]
WholeSeconds = Annotated[int, msgspec.Meta(extra={"unit": "whole-seconds"})]

_AT: Final = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN: Final = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`")
_STEP: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


class Decoded(msgspec.Struct, frozen=True, kw_only=True, rename="kebab", forbid_unknown_fields=True):
    """A section decoded straight from the tree: its names, bounds and known keys are its types'."""


def join_key(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def describe(value: object) -> str:
    """A value as it should appear in an error message: short and unambiguous."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def as_object(raw: object, key: str) -> Mapping[str, object]:
    """An object whose keys are names (profiles, rules, patterns); absent counts as empty."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"expected an object (a table of keys), got {describe(raw)}")
    return raw


def decode_section(raw: object, model: type[S], key: str) -> S:
    """``raw`` (``None`` counts as empty) as ``model``; every problem a ConfigError naming its key."""
    info = mi.type_info(model)
    tree = _loosened(raw if raw is not None else {}, info, key)
    try:
        return msgspec.convert(tree, model, strict=True)
    except msgspec.ValidationError as error:
        raise _config_error(str(error), raw, tree, info, key) from None


# ---------------------------------------------------------------- loose reading


def _loosened(value: object, info: mi.Type, key: str) -> object:
    if isinstance(info, mi.Metadata):
        if (info.extra or {}).get("trim") and isinstance(value, str):
            value = value.strip()
        read = (info.extra or {}).get("read")
        if callable(read) and value is not None:
            # A reader of the field's own, for values whose wording msgspec's bounds cannot give.
            try:
                value = read(value)
            except ValueError as error:
                raise ConfigError(key, str(error)) from None
        unit = (info.extra or {}).get("unit")
        if isinstance(unit, str) and unit in _UNITS and value is not None:
            written = value
            try:
                value = _UNITS[unit](value)
            except ValueError as error:
                raise ConfigError(key, str(error)) from None
            if unit in _DURATIONS:
                _check_duration(parse_duration(written), written, info.extra or {}, key)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
        return _loosened(value, info.type, key)
    if isinstance(info, mi.UnionType):
        others = [member for member in info.types if not isinstance(member, mi.NoneType)]
        return _loosened(value, others[0], key) if len(others) == 1 else value
    if isinstance(info, mi.StructType):
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected an object (a table of keys), got {describe(value)}")
        fields = {field.encode_name: field.type for field in info.fields}
        # An explicit null counts as absent, as HOCON's `key = null` means.
        return {
            name: _loosened(item, fields[name], join_key(key, name)) if name in fields else item
            for name, item in value.items()
            if item is not None
        }
    if isinstance(info, mi.BoolType) and isinstance(value, str):
        word = value.strip().lower()
        return True if word in _TRUE_WORDS else False if word in _FALSE_WORDS else value
    if isinstance(info, mi.IntType):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value.strip())
        return value
    if isinstance(info, mi.StrType) and isinstance(value, int | float) and not isinstance(value, bool):
        # HOCON reads an unquoted `bucket = 2024` as a number; the operator meant text.
        return str(value)
    if isinstance(info, mi.LiteralType) and isinstance(value, str):
        return value.strip().lower()
    if isinstance(info, mi.ListType | mi.VarTupleType) and isinstance(value, list | tuple):
        return [_loosened(item, info.item_type, f"{key}[{index}]") for index, item in enumerate(value)]
    if isinstance(info, mi.DictType) and isinstance(value, Mapping):
        return {name: _loosened(item, info.value_type, join_key(key, str(name))) for name, item in value.items()}
    return value


def _age(value: object) -> int:
    """A number is taken as it is (its bound is checked later); a duration must come to whole seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    seconds = parse_duration(value).total_seconds()
    if not seconds.is_integer():
        raise ValueError(f"expected whole seconds, got {describe(value)}")
    return int(seconds)


def _check_duration(duration: timedelta, written: object, extra: Mapping[str, object], key: str) -> None:
    if duration <= timedelta(0):
        raise ConfigError(key, f"must be longer than zero, got {describe(written)}")
    longest = extra.get("at-most")
    if isinstance(longest, timedelta) and duration > longest:
        raise ConfigError(key, f"must be at most {format_duration(longest)}, got {describe(written)}")


# ---------------------------------------------------------------- msgspec's errors, our words


def _config_error(message: str, raw: object, tree: object, info: mi.Type, key: str) -> ConfigError:
    """The key msgspec's path names; the value as written, except in a bound (which the parsed value meets or not)."""
    at = _AT.search(message)
    steps: list[str | int] = []
    for name, index in _STEP.findall(at.group("path") if at else ""):
        steps.append(name if name else int(index))
    value, written, where = tree, raw, info
    full_key = key
    declared: object = None
    unknown = _UNKNOWN.match(message)
    for position, step in enumerate(steps):
        value, written = _item(value, step), _item(written, step)
        declared = _declared(where, step) if isinstance(step, str) else declared
        where = _inner(where, step)
        if isinstance(step, str):
            full_key = join_key(full_key, step)
        elif position + 1 < len(steps) or unknown:
            # An object in a list is named by its place: `reject-rules[0].rule`.
            full_key = f"{full_key}[{step}]"
        # A value in a list is named with the list, as the operator wrote it: `image.lqip`, not `image.lqip[1]`.
    if unknown:
        name = unknown.group("name")
        known = [field.encode_name for field in _fields(where)]
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return ConfigError(join_key(full_key, name), f"unknown key{hint}")
    plain = message.removesuffix(at.group(0) if at else "")
    wanted = where.extra.get("expected") if isinstance(where, mi.Metadata) and where.extra else None
    if isinstance(wanted, str):
        # The field names what it holds in the operator's words: `a list of { rule = ... } objects`.
        return ConfigError(full_key, f"expected {wanted}, got {describe(written)}")
    return ConfigError(full_key, _expected(where, value, written, declared) or plain)


def _item(value: object, step: str | int) -> object:
    if isinstance(step, str):
        return value.get(step) if isinstance(value, Mapping) else None
    return value[step] if isinstance(value, list | tuple) and step < len(value) else None


def _inner(info: mi.Type, step: str | int) -> mi.Type:
    info = _bare(info)
    if isinstance(step, str):
        for field in _fields(info):
            if field.encode_name == step:
                return field.type
    elif isinstance(info, mi.ListType | mi.VarTupleType):
        return info.item_type
    return mi.AnyType()


def _fields(info: mi.Type) -> tuple[mi.Field, ...]:
    info = _bare(info)
    return info.fields if isinstance(info, mi.StructType) else ()


def _bare(info: mi.Type) -> mi.Type:
    if isinstance(info, mi.Metadata):
        return _bare(info.type)
    if isinstance(info, mi.UnionType):
        others = [member for member in info.types if not isinstance(member, mi.NoneType)]
        return _bare(others[0]) if len(others) == 1 else info
    return info


def _declared(info: mi.Type, step: str | int) -> object:
    """The field's annotation as written, whose `Literal` keeps its choices in their order."""
    info = _bare(info)
    if isinstance(info, mi.StructType) and isinstance(step, str):
        for field in info.fields:
            if field.encode_name == step:
                return typing.get_type_hints(info.cls, include_extras=True).get(field.name)
    return None


def _choices(declared: object) -> tuple[object, ...]:
    if typing.get_origin(declared) is Literal:
        return typing.get_args(declared)
    for inner in typing.get_args(declared):
        found = _choices(inner)
        if found:
            return found
    return ()


def _expected(info: mi.Type, value: object, written: object, declared: object) -> str | None:
    info = _bare(info)
    if isinstance(info, mi.IntType | mi.FloatType):
        number = isinstance(value, int if isinstance(info, mi.IntType) else int | float) and not isinstance(value, bool)
        if not number:
            return f"expected a {'whole ' if isinstance(info, mi.IntType) else ''}number, got {describe(written)}"
        low = info.ge if info.ge is not None else info.gt
        high = info.le if info.le is not None else info.lt
        if low is not None and value < low:  # type: ignore[operator]
            return f"must be at least {low}, got {describe(value)}"
        if high is not None and value > high:  # type: ignore[operator]
            return f"must be at most {high}, got {describe(value)}"
        return None
    if isinstance(info, mi.BoolType):
        return f"expected true or false, got {describe(written)}"
    if isinstance(info, mi.StrType):
        if isinstance(value, str) and info.min_length and not value:
            return _BLANK
        return f"expected text, got {describe(written)}"
    if isinstance(info, mi.LiteralType):
        allowed = ", ".join(f"'{option}'" for option in _choices(declared) or info.values)
        return f"expected one of {allowed}, got {describe(written)}"
    if isinstance(info, mi.ListType | mi.VarTupleType):
        return f"expected a list, got {describe(written)}"
    if isinstance(info, mi.DictType):
        return f"expected an object (a table of keys), got {describe(written)}"
    return None
