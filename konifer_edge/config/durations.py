"""Durations, byte sizes and pixel counts as operators write them in Konifer's files.

Konifer parses durations with Kotlin's ``Duration.parse`` (``30m``, ``1h 30m``,
``PT30M``) while HOCON itself knows ``30 minutes``; TOML has no duration type at
all. Every one of those spellings is accepted here so that a file written for any
of them loads unchanged.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Final

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
