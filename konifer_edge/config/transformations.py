"""Transformation parameters as written in variant profiles and preprocessing.

Konifer lets a profile say ``r = 180`` or ``r = "180"``; both become the text
``"180"`` here, the form a query string would carry, so the imaging code parses
one representation whichever way the file was written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import msgspec

from konifer_edge.config.decode import as_object, decode_section, describe, join_key
from konifer_edge.config.errors import ConfigError
from konifer_edge.config.model import TransformationParams
from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.formats import ImageFormat
from konifer_edge.domain.parameters import BY_KEY, PROFILE_KEYS

# The keys a profile or a path's preprocessing may set: every request parameter but `profile` and `dpr`.
TRANSFORMATION_KEYS: Final = PROFILE_KEYS

# Names appear in `?profile=NAME` and in eager-variant lists, so they stay URL-safe
# (Konifer's rule: letters, digits and -._~).
_PROFILE_NAME: Final = re.compile(r"[A-Za-z0-9._~-]+")


def read_transformation_params(
    written: Mapping[str, object], key: str, *, extra_keys: frozenset[str] = frozenset()
) -> TransformationParams:
    """Every transformation key of ``written`` as text; other keys are left for ``extra_keys`` readers."""
    params: TransformationParams = {}
    for name, value in written.items():
        if name in TRANSFORMATION_KEYS:
            params[name] = _as_parameter_text(value, join_key(key, name))
            if name == "format":
                params[name] = _short_format_name(params[name])
        elif name not in extra_keys:
            allowed = ", ".join(sorted(TRANSFORMATION_KEYS | extra_keys))
            raise ConfigError(join_key(key, name), f"not a transformation key; expected one of {allowed}")
    for name, value in params.items():
        _check_value(name, value, join_key(key, name))
    return params


def _short_format_name(value: str) -> str:
    """Konifer's documentation writes ``format = "image/avif"``; a MIME type means its format."""
    named = ImageFormat.from_mime_type(value.strip()) if "/" in value else None
    return value if named is None else named.short_name


def _check_value(name: str, value: str, key: str) -> None:
    """Each value must be one a request could send; combinations are checked where requests merge them."""
    try:
        BY_KEY[name].read(value)
    except BadRequest as error:
        raise ConfigError(key, error.message) from error


class _ListedProfile(msgspec.Struct, frozen=True, kw_only=True):
    """The name of an entry of the list form; its other keys are the profile's parameters."""

    name: str | None = None


def read_variant_profiles(value: object, key: str = "variant-profiles") -> dict[str, TransformationParams]:
    """Profiles from Konifer's map form, or its older list form with a ``name`` in each entry."""
    if isinstance(value, list | tuple):
        return _profiles_from_list(value, key)
    profiles: dict[str, TransformationParams] = {}
    for name, written in as_object(value, key).items():
        profile_key = join_key(key, name)
        params = read_transformation_params(as_object(written, profile_key), profile_key)
        profiles[_profile_name(name, profile_key)] = params
    return profiles


def _profiles_from_list(entries: list[object] | tuple[object, ...], key: str) -> dict[str, TransformationParams]:
    profiles: dict[str, TransformationParams] = {}
    for index, entry in enumerate(entries):
        entry_key = f"{key}[{index}]"
        name_key = join_key(entry_key, "name")
        name = decode_section(entry, _ListedProfile, entry_key).name
        if name is None:
            raise ConfigError(name_key, "every profile in the list form needs a name")
        name = _profile_name(name, name_key)
        if name in profiles:
            raise ConfigError(name_key, f"profile {name!r} is defined twice")
        profiles[name] = read_transformation_params(
            as_object(entry, entry_key), entry_key, extra_keys=frozenset({"name"})
        )
    return profiles


def _profile_name(name: str, key: str) -> str:
    if not _PROFILE_NAME.fullmatch(name):
        raise ConfigError(key, f"profile name {name!r} may only use letters, digits and - . _ ~")
    return name


def _as_parameter_text(value: object, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    # `strip = [exif, xmp]` reads naturally in a file; the query form is a comma list.
    if isinstance(value, list | tuple) and value:
        return ",".join(_as_parameter_text(item, key) for item in value)
    raise ConfigError(key, f"expected a number or text, got {describe(value)}")
