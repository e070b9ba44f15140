"""Loading the configuration: a TOML or HOCON file, then the environment.

Both file formats are first reduced to the same plain tree (dicts, lists, text,
numbers, booleans), so every later step, validation included, is shared and a
setting means the same whichever format it was written in.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Final

import msgspec
from pyhocon import ConfigFactory
from pyhocon.exceptions import ConfigException
from pyparsing import ParseBaseException

from konifer_edge.config.decode import KeyPath, RawObject, decode_section, format_duration, plain_copy, set_path
from konifer_edge.config.errors import ConfigError
from konifer_edge.config.model import Config, ConfigFile, PostgresSettings
from konifer_edge.config.rules import (
    RULE_INFERENCE_KEY,
    read_api,
    read_rule_definitions,
    read_rule_inference,
)
from konifer_edge.config.sections import (
    PathContext,
    build_path_configuration,
    read_bundle,
    read_cache,
    read_compat,
    read_data_store,
    read_http,
    read_logging,
    read_metrics,
    read_object_store,
    read_source,
    read_url_signing,
    read_variant_generation,
)
from konifer_edge.config.transformations import read_variant_profiles

TOML_SUFFIXES: Final = frozenset({".toml"})
HOCON_SUFFIXES: Final = frozenset({".conf", ".hocon", ".json"})

# Variables that override one key each. Konifer reads the first five itself;
# the others are conveniences for container deployments.
ENVIRONMENT_OVERRIDES: Final[dict[str, KeyPath]] = {
    "PG_USER": ("data-store", "postgresql", "user"),
    "PG_PASSWORD": ("data-store", "postgresql", "password"),
    "S3_SECRET_KEY": ("object-store", "s3", "secret-key"),
    "URL_SIGNING_SECRET_KEY": ("url-signing", "secret-key"),
    "DATABASE_URL": ("data-store", "postgresql", "url"),
    "S3_ACCESS_KEY": ("object-store", "s3", "access-key"),
    "S3_ENDPOINT_URL": ("object-store", "s3", "endpoint-url"),
    "REDIS_URL": ("cache", "redis-url"),
    "RULE_MODEL_DIRECTORY": (RULE_INFERENCE_KEY, "model-directory"),
    "DATABASE_POOL_SIZE": ("data-store", "postgresql", "pool-size"),
    "LOG_LEVEL": ("logging", "level"),
    "METRICS_PORT": ("metrics", "port"),
}
IN_MEMORY_VARIABLE: Final = "IN_MEMORY"
IN_MEMORY_WARNING: Final = (
    "IN_MEMORY=true: data-store.provider and object-store.provider are forced to in-memory, and no configured"
    " database is used; every asset is lost when the server stops (a throw-away PostgreSQL in a temporary"
    " directory, objects in process memory). Do not use this in production."
)
_IN_MEMORY_KEYS: Final[tuple[KeyPath, ...]] = (("data-store", "provider"), ("object-store", "provider"))


def load_config(path: Path | str | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, merge with the environment, and validate the whole configuration.

    ``path`` ``None`` means built-in defaults. Every problem raises
    :class:`ConfigError` naming the key, so the service refuses to start
    rather than run with a setting it misread.
    """
    tree = read_config_file(Path(path)) if path is not None else {}
    set_by_environment = apply_environment(tree, os.environ if environ is None else environ)
    try:
        config = build_config(tree)
    except ConfigError as error:
        variable = set_by_environment.get(error.key)
        raise (error.with_hint(f"set by the environment variable {variable}") if variable else error) from None
    if IN_MEMORY_VARIABLE in set_by_environment.values():
        config = _throw_away(config)
    return config


def _throw_away(config: Config) -> Config:
    """IN_MEMORY=true: nothing outlives the server, not even with a database configured.

    A configured ``in-memory`` provider still uses a database it names (tests share one that way);
    Konifer's switch means a server that forgets everything, so the connection settings go.
    """
    data_store = msgspec.structs.replace(config.data_store, postgresql=PostgresSettings())
    return msgspec.structs.replace(config, data_store=data_store, warnings=(IN_MEMORY_WARNING, *config.warnings))


def read_config_file(path: Path) -> RawObject:
    suffix = path.suffix.lower()
    if suffix in TOML_SUFFIXES:
        return _read_toml(path)
    if suffix in HOCON_SUFFIXES:
        return _read_hocon(path)
    known = ", ".join(sorted(TOML_SUFFIXES | HOCON_SUFFIXES))
    raise ConfigError(str(path), f"unknown configuration format {suffix or '(no suffix)'!r}; expected one of {known}")


def _read_toml(path: Path) -> RawObject:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ConfigError(str(path), f"cannot read the file: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"not valid TOML: {error}") from None


def _read_hocon(path: Path) -> RawObject:
    if not path.is_file():
        raise ConfigError(str(path), "cannot read the file: no such file")
    try:
        parsed = ConfigFactory.parse_file(str(path))
    except OSError as error:
        raise ConfigError(str(path), f"cannot read the file: {error.strerror or error}") from None
    except ParseBaseException as error:
        # pyparsing's own message spells out its whole grammar; the position is what helps.
        raise ConfigError(str(path), f"not valid HOCON at line {error.lineno}, column {error.col}") from None
    except ConfigException as error:
        raise ConfigError(str(path), f"not valid HOCON: {error}") from None
    tree = _plain_hocon(parsed.as_plain_ordered_dict())
    if not isinstance(tree, dict):
        raise ConfigError(str(path), "the file must hold an object at its root")
    return tree


def _plain_hocon(value: object) -> object:
    """pyhocon's tree as plain values; its duration objects back to duration text."""
    return _durations_as_text(plain_copy(value))


def _durations_as_text(value: object) -> object:
    if isinstance(value, dict):
        return {name: _durations_as_text(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_durations_as_text(item) for item in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    # Matched by name: dateutil ships no type information, and pyhocon only
    # produces it when dateutil happens to be installed.
    if type(value).__name__ == "relativedelta":
        return _relativedelta_text(value)
    return value


def _relativedelta_text(value: object) -> str:
    """pyhocon reads unquoted ``30m`` or ``7 days`` as a dateutil ``relativedelta``."""
    units = (
        ("years", "y"),
        ("months", "mo"),
        ("days", "d"),
        ("hours", "h"),
        ("minutes", "m"),
        ("seconds", "s"),
    )
    parts = [f"{getattr(value, name)}{unit}" for name, unit in units if getattr(value, name, 0)]
    microseconds = getattr(value, "microseconds", 0)
    if microseconds:
        parts.append(f"{microseconds}us")
    # Calendar units are kept so that the duration reader can refuse them by name.
    return " ".join(parts) or "0s"


def apply_environment(tree: RawObject, environ: Mapping[str, str]) -> dict[str, str]:
    """Write environment overrides into ``tree``; returns each overridden dotted key's variable.

    An empty variable counts as unset, so ``FOO=`` in a compose file does not
    blank out a value from the file.
    """
    set_by: dict[str, str] = {}
    for variable, key_path in ENVIRONMENT_OVERRIDES.items():
        value = environ.get(variable)
        if value and set_path(tree, key_path, value):
            set_by[".".join(key_path)] = variable
    if _in_memory_requested(environ.get(IN_MEMORY_VARIABLE, "")):
        for key_path in _IN_MEMORY_KEYS:
            set_path(tree, key_path, "in-memory")
            set_by[".".join(key_path)] = IN_MEMORY_VARIABLE
    return set_by


def _in_memory_requested(value: str) -> bool:
    word = value.strip().lower()
    if word in ("", "false", "0", "no", "off"):
        return False
    if word in ("true", "1", "yes", "on"):
        return True
    raise ConfigError(IN_MEMORY_VARIABLE, f"expected true or false, got {value!r}")


def build_config(tree: Mapping[str, object]) -> Config:
    """Validate a plain configuration tree (file and environment already merged)."""
    # Unknown top-level keys first: a misspelt section would otherwise surface
    # only as a puzzling default somewhere else.
    raw = decode_section(tree, ConfigFile, "")
    url_signing = read_url_signing(raw.url_signing)
    profiles = read_variant_profiles(raw.variant_profiles)
    rule_definitions = read_rule_definitions(raw.rule_definitions)
    context = PathContext(
        profile_names=frozenset(profiles),
        url_signing=raw.url_signing if isinstance(raw.url_signing, Mapping) else {},
        rule_names=frozenset(rule_definitions),
    )
    paths = build_path_configuration(raw.paths, context)
    return Config(
        http=read_http(raw.http),
        data_store=read_data_store(raw.data_store),
        object_store=read_object_store(raw.object_store),
        source=read_source(raw.source),
        url_signing=url_signing,
        variant_generation=read_variant_generation(raw.variant_generation),
        variant_profiles=profiles,
        cache=read_cache(raw.cache),
        bundle=read_bundle(raw.bundle),
        logging=read_logging(raw.logging),
        metrics=read_metrics(raw.metrics),
        compat=read_compat(raw.compat),
        paths=paths,
        warnings=tuple(dict.fromkeys(context.warnings)),
        rule_definitions=rule_definitions,
        api=read_api(raw.api),
        rule_inference=read_rule_inference(raw.rule_inference),
    )
