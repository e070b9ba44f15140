"""Decoding a section of the configuration tree straight into its msgspec model.

The model declares what msgspec can check from the types: kebab-case names (`rename="kebab"`),
bounds (`msgspec.Meta(ge=, le=)`), choices (`Literal`) and the refusal of unknown keys
(`forbid_unknown_fields=True`). Two things are done around `msgspec.convert`:

- before it, values are read as loosely as HOCON writes them (`"5432"` is a port, `"yes"` a
  boolean, `"INFO"` the choice `info`, `30s` a duration), guided by the model's types; a field
  whose `Meta(extra=...)` names a unit (`{"unit": "size"}`) is parsed from Konifer's text forms;
- after it fails, msgspec's `ValidationError` (`... - at $.url.max-bytes`) becomes a
  `ConfigError` naming the dotted key, in the wording the rest of the configuration uses.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated, Final, Literal, TypeVar

import msgspec
import msgspec.inspect as mi

from konifer_edge.config.durations import format_duration, parse_byte_size, parse_duration, parse_pixel_count
from konifer_edge.config.errors import ConfigError

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
