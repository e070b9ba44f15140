"""Readers for the top-level sections: ``http``, ``data-store``, ``object-store``...

Each reader takes the section as written (environment overrides already applied),
validates every key and finishes the section so that unknown keys fail loudly.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import urlsplit

import msgspec

from konifer_edge.config.decode import decode_section, describe
from konifer_edge.config.errors import ConfigError
from konifer_edge.config.model import (
    BundleSettings,
    CacheSettings,
    CompatSettings,
    DataStoreSettings,
    HttpSettings,
    LoggingSettings,
    MetricsSettings,
    ObjectStoreSettings,
    SourceSettings,
    UrlSigningSettings,
    VariantGenerationSettings,
)

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
