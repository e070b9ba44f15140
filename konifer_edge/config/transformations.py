"""Transformation parameters as written in variant profiles and preprocessing.

Konifer lets a profile say ``r = 180`` or ``r = "180"``; both become the text
``"180"`` here, the form a query string would carry, so the imaging code parses
one representation whichever way the file was written.
"""

from __future__ import annotations

import re
from typing import Final

from konifer_edge.config.errors import ConfigError
from konifer_edge.config.model import TransformationParams
from konifer_edge.config.reader import Section, describe
from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.formats import ImageFormat
from konifer_edge.domain.parameters import BY_KEY, PROFILE_KEYS

# The keys a profile or a path's preprocessing may set: every request parameter but `profile` and `dpr`.
TRANSFORMATION_KEYS: Final = PROFILE_KEYS

# Names appear in `?profile=NAME` and in eager-variant lists, so they stay URL-safe
# (Konifer's rule: letters, digits and -._~).
_PROFILE_NAME: Final = re.compile(r"[A-Za-z0-9._~-]+")


def read_transformation_params(section: Section, *, extra_keys: frozenset[str] = frozenset()) -> TransformationParams:
    """Every transformation key of ``section`` as text; other keys are left for ``extra_keys`` readers."""
    params: TransformationParams = {}
    for name in section.names():
        if name in TRANSFORMATION_KEYS:
            params[name] = _as_parameter_text(section.raw(name), section.key_of(name))
            if name == "format":
                params[name] = _short_format_name(params[name])
        elif name not in extra_keys:
            allowed = ", ".join(sorted(TRANSFORMATION_KEYS | extra_keys))
            raise ConfigError(section.key_of(name), f"not a transformation key; expected one of {allowed}")
    for name, value in params.items():
        _check_value(name, value, section.key_of(name))
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


def read_variant_profiles(value: object, key: str = "variant-profiles") -> dict[str, TransformationParams]:
    """Profiles from Konifer's map form, or its older list form with a ``name`` in each entry."""
    if isinstance(value, list | tuple):
        return _profiles_from_list(value, key)
    root = Section.of(value, key)
    profiles: dict[str, TransformationParams] = {}
    for name in root.names():
        profile = root.section(name)
        profiles[_profile_name(name, profile.key)] = read_transformation_params(profile)
    return profiles


def _profiles_from_list(entries: list[object] | tuple[object, ...], key: str) -> dict[str, TransformationParams]:
    profiles: dict[str, TransformationParams] = {}
    for index, entry in enumerate(entries):
        profile = Section.of(entry, f"{key}[{index}]")
        name = profile.optional_string("name")
        if name is None:
            raise ConfigError(profile.key_of("name"), "every profile in the list form needs a name")
        name = _profile_name(name, profile.key_of("name"))
        if name in profiles:
            raise ConfigError(profile.key_of("name"), f"profile {name!r} is defined twice")
        profiles[name] = read_transformation_params(profile, extra_keys=frozenset({"name"}))
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
