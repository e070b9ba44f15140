"""Each section read from its decoded file shape into its settings, with the checks its types cannot say.

URLs, host names, bucket names, redirect templates and CORS origins are checked here, and so are
references between sections (a path's eager variants name profiles). The ``paths`` section is
read in steps, all at start-up: collect each pattern's own settings (map form or Konifer's older
list form), move aliased keys to their canonical place, merge each pattern over its nearest
configured ancestor in the pattern trie (parents first), then decode and check every merged result
once into a frozen ``PathSettings``. Errors name the pattern as written, e.g.
``paths./users/**.cache-control.max-age``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import msgspec

from konifer_edge.config.decode import (
    KeyPath,
    RawObject,
    as_object,
    decode_section,
    deep_merge,
    describe,
    join_key,
    plain_copy,
    set_path,
)
from konifer_edge.config.errors import ConfigError
from konifer_edge.config.model import (
    SUPPORTED_CONTENT_TYPES,
    BundleSettings,
    CacheControlDirectives,
    CacheControlSettings,
    CacheSettings,
    CompatSettings,
    CorsSettings,
    DataStoreSettings,
    HttpSettings,
    LoggingSettings,
    MetricsSettings,
    ObjectStoreSettings,
    PathFile,
    PathObjectStore,
    PathSettings,
    PreprocessingFile,
    PreprocessingMaxima,
    PreprocessingSettings,
    RedirectSettings,
    ReturnFormatFile,
    ReturnFormatSettings,
    SourceSettings,
    TransformFile,
    TransformSettings,
    UrlSigningSettings,
    VariantGenerationSettings,
)
from konifer_edge.config.paths import (
    ROOT_PATTERN,
    PathConfiguration,
    Segments,
    ancestors,
    parse_pattern,
    pattern_text,
)
from konifer_edge.config.rules import UPLOAD_RULESET_KEY, read_upload_ruleset
from konifer_edge.config.transformations import read_transformation_params

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- the top-level sections

_HOST_NAME: Final = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def read_http(raw: object) -> HttpSettings:
    settings = decode_section(raw, HttpSettings, "http")
    if settings.public_url is None:
        return settings
    public_url = _checked_url(settings.public_url, "http.public-url", ("http", "https"))
    parts = urlsplit(public_url)
    if parts.query or parts.fragment:
        raise ConfigError("http.public-url", "must be a base URL, without a query or fragment")
    # Stored without a trailing slash so that callers can append "/assets/...".
    return msgspec.structs.replace(settings, public_url=public_url.rstrip("/"))


def read_data_store(raw: object) -> DataStoreSettings:
    settings = decode_section(raw, DataStoreSettings, "data-store")
    url = settings.postgresql.url
    if url is not None:
        _checked_url(url, "data-store.postgresql.url", ("postgres", "postgresql"))
    return settings


def read_object_store(raw: object) -> ObjectStoreSettings:
    settings = decode_section(raw, ObjectStoreSettings, "object-store")
    s3 = settings.s3
    if s3.endpoint_url is None:
        return settings
    _checked_url(s3.endpoint_url, "object-store.s3.endpoint-url", ("http", "https"))
    written = raw.get("s3") if isinstance(raw, Mapping) else None
    if isinstance(written, Mapping) and written.get("allow-http") is not None:
        return settings
    # A plain-HTTP endpoint (MinIO on a private network) is its own permission, unless said otherwise.
    plain_http = s3.endpoint_url.lower().startswith("http://")
    return msgspec.structs.replace(settings, s3=msgspec.structs.replace(s3, allow_http=plain_http))


def read_source(raw: object) -> SourceSettings:
    settings = decode_section(raw, SourceSettings, "source")
    hosts = _host_names(settings.url.allowed_domains, "source.url.allowed-domains")
    return msgspec.structs.replace(settings, url=msgspec.structs.replace(settings.url, allowed_domains=hosts))


def _host_names(written: tuple[str, ...], key: str) -> tuple[str, ...]:
    hosts = tuple(_host_name(key, host.strip().lower()) for host in written)
    return tuple(dict.fromkeys(hosts))


def _host_name(key: str, host: str) -> str:
    """A host name, or an IPv6 literal in the bracketed form a Konifer file carries (``"[::1]"``) or bare."""
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in literal:
        try:
            # One spelling per address (compressed, no brackets), the form URLs are compared in.
            return ipaddress.IPv6Address(literal).compressed
        except ValueError:
            pass
    elif _HOST_NAME.fullmatch(host):
        return host
    raise ConfigError(
        key, f"{host!r} is not a host name or IP address (write 'images.example.com' or '[::1]', no scheme or path)"
    )


def read_url_signing(raw: object, key: str = "url-signing") -> UrlSigningSettings:
    """The top level's signing settings, or (with ``key``) a path's, merged over them."""
    settings = decode_section(raw, UrlSigningSettings, key)
    if any(not key.strip() for key in settings.secret_keys):
        # A blank key would sign anything for anybody.
        raise ConfigError(f"{key}.secret-keys", "must not contain a blank key")
    settings = msgspec.structs.replace(
        settings, secret_key=settings.secret_key or None, secret_keys=tuple(dict.fromkeys(settings.secret_keys))
    )
    if settings.enabled and not settings.signing_keys:
        raise ConfigError(
            f"{key}.secret-key",
            "required when url-signing is enabled (or set secret-keys, or the environment variable"
            " URL_SIGNING_SECRET_KEY)",
        )
    return settings


def read_variant_generation(raw: object) -> VariantGenerationSettings:
    return decode_section(raw, VariantGenerationSettings, "variant-generation")


def read_cache(raw: object) -> CacheSettings:
    settings = decode_section(raw, CacheSettings, "cache")
    if settings.redis_url is not None:
        _checked_url(settings.redis_url, "cache.redis-url", ("redis", "rediss", "unix"))
    if settings.purge_webhook_url is not None:
        _checked_url(settings.purge_webhook_url, "cache.purge-webhook-url", ("http", "https"))
    return settings


def read_bundle(raw: object) -> BundleSettings:
    return decode_section(raw, BundleSettings, "bundle")


def read_logging(raw: object) -> LoggingSettings:
    return decode_section(raw, LoggingSettings, "logging")


def read_compat(raw: object) -> CompatSettings:
    return decode_section(raw, CompatSettings, "compat")


def read_metrics(raw: object) -> MetricsSettings:
    settings = decode_section(raw, MetricsSettings, "metrics")
    if settings.host is not None and settings.port is None:
        raise ConfigError("metrics.host", "needs metrics.port: /metrics has no port of its own without it")
    return settings


def _checked_url(value: str, key: str, schemes: Sequence[str]) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes or not (parts.netloc or parts.path):
        allowed = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigError(key, f"expected a URL starting with {allowed}, got {describe(value)}")
    if parts.scheme.lower() in ("http", "https") and not parts.hostname:
        raise ConfigError(key, f"the URL has no host: {describe(value)}")
    return value


# ---------------------------------------------------------------- a path's settings

# Konifer's reading of the S3 bucket naming rules, so a bucket that loads here
# also exists in S3 (and is a safe directory name for the filesystem store).
_BUCKET_NAME: Final = re.compile(
    r"(?!xn--)(?!sthree-)(?!amzn-s3-demo-)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"
    r"(?<!-s3alias)(?<!--ol-s3)(?<!--x-s3)(?<!--table-s3)"
)
_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")
_TEMPLATE_PLACEHOLDERS: Final = frozenset({"bucket", "key"})
_REFUSED_SCHEMES: Final = ("javascript:", "vbscript:", "data:")
# Browsers drop tabs and newlines inside a URL before reading its scheme, so
# "java\tscript:" must be refused as well.
_URL_WHITESPACE: Final = re.compile(r"[\x00-\x20\x7f]")
_SECRET_NAMES: Final = ("secret-key", "secret-keys")
_PREPROCESSING_MAXIMA: Final = ("max-width", "max-height")


@dataclass(frozen=True)
class PathContext:
    """What path settings are checked against: the top-level profiles and signing rules."""

    profile_names: Set[str]
    url_signing: Mapping[str, object]
    rule_names: Set[str] = frozenset()
    warnings: list[str] = field(default_factory=list)
    """Collects what loads but is not applied, for the start-up log."""


def read_path_settings(merged: RawObject, key: str, context: PathContext) -> PathSettings:
    """One pattern's merged settings, decoded from ``PathFile`` and checked for what its types cannot say."""
    written = decode_section(merged, PathFile, key)
    settings = PathSettings(
        object_store=_object_store(written.object_store, join_key(key, "object-store")),
        allowed_content_types=_content_types(written.allowed_content_types, join_key(key, "allowed-content-types")),
        image=msgspec.structs.replace(written.image, lqip=tuple(dict.fromkeys(written.image.lqip))),
        return_format=_return_format(written.return_format, join_key(key, "return-format")),
        cache_control=_cache_control(written.cache_control, merged.get("cache-control")),
        transform=_transform(written.transform, join_key(key, "transform"), context),
        limits=written.limits,
        url_signing=_url_signing_override(written.url_signing, context.url_signing, join_key(key, "url-signing")),
        access=written.access,
        upload_ruleset=read_upload_ruleset(
            written.upload_ruleset, join_key(key, UPLOAD_RULESET_KEY), context.rule_names
        ),
        cors=_cors(written.cors, join_key(key, "cors")),
    )
    cache_control = settings.cache_control
    if settings.access.read == "key" and cache_control.enabled and cache_control.visibility == "public":
        # A shared cache (the CDN) would hand a key holder's answer to anyone.
        raise ConfigError(
            join_key(key, "access.read"),
            "a path that needs a key to read must not be cached publicly: set cache-control.visibility = 'private'",
        )
    return settings


def _object_store(settings: PathObjectStore, key: str) -> PathObjectStore:
    if not _BUCKET_NAME.fullmatch(settings.bucket):
        raise ConfigError(
            f"{key}.bucket",
            f"{settings.bucket!r} is not a valid bucket name (3-63 characters: lower-case letters, digits and '-')",
        )
    return settings


def _content_types(written: tuple[str, ...] | None, key: str) -> tuple[str, ...] | None:
    if written is None:
        return None
    content_types = tuple(dict.fromkeys(content_type.strip().lower() for content_type in written))
    for content_type in content_types:
        if content_type not in SUPPORTED_CONTENT_TYPES:
            supported = ", ".join(SUPPORTED_CONTENT_TYPES)
            raise ConfigError(key, f"{content_type!r} is not a supported content type; use any of {supported}")
    return content_types


def _return_format(written: ReturnFormatFile, key: str) -> ReturnFormatSettings:
    redirect = written.redirect
    template_key = f"{key}.redirect.template.string"
    template_string = _checked_template(redirect.template.string, template_key)
    if redirect.strategy == "template" and template_string is None:
        raise ConfigError(template_key, "required when the redirect strategy is 'template'")
    strategy = None if redirect.strategy == "service" else redirect.strategy
    return ReturnFormatSettings(
        redirect=RedirectSettings(
            strategy=strategy, presigned_ttl=redirect.presigned.ttl, template_string=template_string
        )
    )


def _checked_template(written: str | None, key: str) -> str | None:
    if written is None:
        return None
    template = written.strip()
    if not template:
        raise ConfigError(key, "must not be blank")
    if any(character in template for character in "\r\n\x00"):
        raise ConfigError(key, "must not contain line breaks or NUL characters")
    if _URL_WHITESPACE.sub("", template).lower().startswith(_REFUSED_SCHEMES):
        raise ConfigError(key, f"must not use a javascript:, vbscript: or data: URL, got {written!r}")
    unknown = set(_PLACEHOLDER.findall(template)) - _TEMPLATE_PLACEHOLDERS
    if unknown:
        raise ConfigError(key, f"unknown placeholder {{{sorted(unknown)[0]}}}; only {{bucket}} and {{key}} exist")
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        raise ConfigError(key, "has an unbalanced '{' or '}'")
    return template


def _cache_control(directives: CacheControlDirectives, written: object) -> CacheControlSettings:
    explicit = isinstance(written, Mapping) and written.get("enabled") is not None
    return CacheControlSettings(**msgspec.structs.asdict(directives), explicit=explicit)


def _transform(written: TransformFile, key: str, context: PathContext) -> TransformSettings:
    expire = written.expire
    preprocessing = written.preprocessing
    preprocessing_key = join_key(key, "preprocessing")
    settings = TransformSettings(
        eager_variants=_eager_variants(written.eager_variants, join_key(key, "eager-variants"), context.profile_names),
        on_demand_mode=written.on_demand_variant.mode,
        expire_strategy=expire.strategy,
        expire_ttl=expire.ttl,
        preprocessing_enabled=preprocessing.enabled,
        preprocessing=_preprocessing_image(preprocessing.image, join_key(preprocessing_key, "image")),
        limits=written.limits,
        variant_cache=written.retention.cache,
    )
    _ignore_misplaced_maxima(preprocessing, preprocessing_key, context.warnings)
    if expire.strategy != "never" and expire.ttl is None:
        raise ConfigError(join_key(key, "expire.ttl"), f"required when the expire strategy is '{expire.strategy}'")
    return settings


def _ignore_misplaced_maxima(preprocessing: PreprocessingFile, key: str, warnings: list[str]) -> None:
    """``preprocessing { max-height = 300 }``, as one of Konifer's documentation examples writes it.

    Konifer reads the maxima only inside ``preprocessing.image`` and ignores them here, so a file
    written after that example loads, with a warning, and the setting stays unapplied as in Konifer.
    """
    for name, value in (("max-width", preprocessing.max_width), ("max-height", preprocessing.max_height)):
        if value is not None:
            warnings.append(
                f"{join_key(key, name)}: ignored, as Konifer ignores it; to apply it,"
                f" move it to {join_key(key, 'image.' + name)}"
            )


def _eager_variants(written: tuple[str, ...], key: str, profile_names: Set[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip() for name in written))
    for name in names:
        if name not in profile_names:
            defined = ", ".join(sorted(profile_names)) or "none"
            raise ConfigError(key, f"{name!r} is not a profile in variant-profiles (defined: {defined})")
    return names


def _preprocessing_image(written: Mapping[str, object], key: str) -> PreprocessingSettings:
    params = read_transformation_params(written, key, extra_keys=frozenset(_PREPROCESSING_MAXIMA))
    maxima = {name: value for name, value in written.items() if name in _PREPROCESSING_MAXIMA}
    decoded = decode_section(maxima, PreprocessingMaxima, key)
    return PreprocessingSettings(params=params, max_width=decoded.max_width, max_height=decoded.max_height)


def _url_signing_override(
    written: Mapping[str, object] | None, top_level: Mapping[str, object], key: str
) -> UrlSigningSettings | None:
    if written is None:
        return None
    # Keys the path leaves out (typically the shared secret) come from the top level; a path
    # that names its own secret(s) replaces the top level's, never adds to them.
    if any(name in written for name in _SECRET_NAMES):
        top_level = {name: value for name, value in top_level.items() if name not in _SECRET_NAMES}
    return read_url_signing(deep_merge(top_level, written), key)


_ORIGIN: Final = re.compile(
    r"https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?"
)
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _cors(settings: CorsSettings, key: str) -> CorsSettings:
    settings = msgspec.structs.replace(
        settings,
        allowed_origins=_cors_origins(settings.allowed_origins, f"{key}.allowed-origins"),
        allowed_methods=_cors_tokens(settings.allowed_methods, f"{key}.allowed-methods", upper=True),
        allowed_headers=_cors_tokens(settings.allowed_headers, f"{key}.allowed-headers"),
        exposed_headers=_cors_tokens(settings.exposed_headers, f"{key}.exposed-headers"),
    )
    if settings.allow_credentials and settings.any_origin:
        # Browsers refuse `*` on a credentialed answer, and echoing every origin would hand any
        # site the user's credentials.
        raise ConfigError(f"{key}.allowed-origins", "'*' cannot be used with allow-credentials = true")
    return settings


def _cors_origins(written: tuple[str, ...], key: str) -> tuple[str, ...]:
    origins = tuple(dict.fromkeys(origin.strip().lower().rstrip("/") for origin in written))
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                key,
                f"{origin!r} is not an origin: write scheme://host[:port], such as 'https://app.example.com', or '*'",
            )
    return origins


def _cors_tokens(written: tuple[str, ...], key: str, *, upper: bool = False) -> tuple[str, ...]:
    tokens = tuple(dict.fromkeys(token.strip().upper() if upper else token.strip() for token in written))
    for token in tokens:
        if not _TOKEN.fullmatch(token):
            raise ConfigError(key, f"{token!r} is not an HTTP method or header name")
    return tokens


# ---------------------------------------------------------------- the whole section

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
        return read_path_settings(merged, pattern.key, context)
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
        own = plain_copy(as_object(value, key))
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


class _ListedPattern(msgspec.Struct, frozen=True, kw_only=True):
    """The pattern of an entry of the list form; its other keys are the pattern's settings."""

    path: str | None = None


def _list_entry(index: int, entry: object) -> tuple[str, object]:
    """One entry of Konifer's older ``paths = [ { path = "/users/**", ... } ]`` form."""
    key = f"{PATHS_KEY}[{index}]"
    pattern = decode_section(entry, _ListedPattern, key).path
    if pattern is None or not pattern.strip():
        raise ConfigError(join_key(key, "path"), "every entry of the list form needs a path pattern")
    return pattern.strip(), {name: value for name, value in as_object(entry, key).items() if name != "path"}


# ---------------------------------------------------------------- Konifer's older placements of path keys


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
        # A non-object in the way is reported when the pattern's settings are decoded.
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
