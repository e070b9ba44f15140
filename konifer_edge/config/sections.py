"""Readers for the top-level sections: ``http``, ``data-store``, ``object-store``...

Each reader takes the section as written (environment overrides already applied),
validates every key and finishes the section so that unknown keys fail loudly.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit

import msgspec

from konifer_edge.config.decode import decode_section
from konifer_edge.config.errors import ConfigError
from konifer_edge.config.model import (
    DATA_STORE_PROVIDERS,
    DEFAULT_MAX_BYTES,
    OBJECT_STORE_PROVIDERS,
    POSTGRES_SSL_MODES,
    SIGNING_ALGORITHMS,
    BundleSettings,
    CacheSettings,
    CompatSettings,
    DataStoreSettings,
    FilesystemSettings,
    HttpSettings,
    LoggingSettings,
    MetricsSettings,
    MultipartSettings,
    ObjectStoreSettings,
    PostgresSettings,
    S3Settings,
    SourceSettings,
    UrlSigningSettings,
    UrlSourceSettings,
    VariantGenerationSettings,
    default_worker_count,
)
from konifer_edge.config.reader import Section, describe

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


def read_data_store(section: Section) -> DataStoreSettings:
    provider = section.choice("provider", DATA_STORE_PROVIDERS, "postgresql")
    postgresql = _read_postgresql(section.section("postgresql"))
    section.finish()
    return DataStoreSettings(provider=provider, postgresql=postgresql)


def _read_postgresql(section: Section) -> PostgresSettings:
    defaults = PostgresSettings()
    settings = PostgresSettings(
        host=_non_blank(section, "host"),
        port=section.integer("port", defaults.port, minimum=1, maximum=65535),
        database=_non_blank(section, "database") or defaults.database,
        user=_non_blank(section, "user") or defaults.user,
        password=section.string("password", defaults.password),
        ssl_mode=section.optional_choice("ssl-mode", POSTGRES_SSL_MODES),
        url=_url(section, "url", ("postgres", "postgresql")),
        pool_size=section.integer("pool-size", defaults.pool_size, minimum=1, maximum=1000),
    )
    section.finish()
    return settings


def read_object_store(section: Section) -> ObjectStoreSettings:
    provider = section.choice("provider", OBJECT_STORE_PROVIDERS, "filesystem")
    s3 = _read_s3(section.section("s3"))
    filesystem_section = section.section("filesystem")
    filesystem = FilesystemSettings(mount_path=_non_blank(filesystem_section, "mount-path"))
    filesystem_section.finish()
    section.finish()
    return ObjectStoreSettings(provider=provider, s3=s3, filesystem=filesystem)


def _read_s3(section: Section) -> S3Settings:
    defaults = S3Settings()
    endpoint_url = _url(section, "endpoint-url", ("http", "https"))
    plain_http = endpoint_url is not None and endpoint_url.lower().startswith("http://")
    settings = S3Settings(
        endpoint_url=endpoint_url,
        region=_non_blank(section, "region") or defaults.region,
        access_key=_non_blank(section, "access-key"),
        secret_key=_non_blank(section, "secret-key"),
        force_path_style=section.boolean("force-path-style", False),
        allow_http=section.boolean("allow-http", plain_http),
        connect_timeout=section.duration("connect-timeout", defaults.connect_timeout),
        read_timeout=section.duration("read-timeout", defaults.read_timeout),
        request_timeout=section.duration("request-timeout", defaults.request_timeout),
        retry_timeout=section.duration("retry-timeout", defaults.retry_timeout),
        max_retries=section.integer("max-retries", defaults.max_retries, minimum=0, maximum=20),
    )
    section.finish()
    return settings


def read_source(section: Section) -> SourceSettings:
    url = _read_url_source(section.section("url"))
    multipart_section = section.section("multipart")
    multipart = MultipartSettings(max_bytes=multipart_section.byte_size("max-bytes", DEFAULT_MAX_BYTES, minimum=1))
    multipart_section.finish()
    section.finish()
    return SourceSettings(url=url, multipart=multipart)


def _read_url_source(section: Section) -> UrlSourceSettings:
    defaults = UrlSourceSettings()
    settings = UrlSourceSettings(
        allowed_domains=_host_names(section, "allowed-domains"),
        max_bytes=section.byte_size("max-bytes", defaults.max_bytes, minimum=1),
        allow_private_networks=section.boolean("allow-private-networks", defaults.allow_private_networks),
        timeout=section.duration("timeout", timedelta(seconds=defaults.timeout)).total_seconds(),
        max_redirects=section.integer("max-redirects", defaults.max_redirects, minimum=0),
    )
    section.finish()
    return settings


def _host_names(section: Section, name: str) -> tuple[str, ...]:
    hosts = tuple(host.strip().lower() for host in section.string_list(name) or ())
    for host in hosts:
        if not _HOST_NAME.fullmatch(host) and not _is_ip_literal(host):
            raise ConfigError(
                section.key_of(name),
                f"{host!r} is not a host name (write 'images.example.com', no scheme or path)",
            )
    return tuple(dict.fromkeys(hosts))


def _is_ip_literal(host: str) -> bool:
    """An IPv4 address, or an IPv6 one bare or in brackets ("[::1]", as a Konifer configuration has it)."""
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        return False
    return address.version == 6 or not bracketed


def read_url_signing(section: Section) -> UrlSigningSettings:
    settings = UrlSigningSettings(
        enabled=section.boolean("enabled", False),
        algorithm=section.choice("algorithm", SIGNING_ALGORITHMS, "hmac_sha256"),
        secret_key=section.optional_string("secret-key") or None,
        secret_keys=_secret_keys(section, "secret-keys"),
    )
    section.finish()
    if settings.enabled and not settings.signing_keys:
        raise ConfigError(
            section.key_of("secret-key"),
            "required when url-signing is enabled (or set secret-keys, or the environment variable"
            " URL_SIGNING_SECRET_KEY)",
        )
    return settings


def _secret_keys(section: Section, name: str) -> tuple[str, ...]:
    """Keys accepted together while one replaces another; a blank one would sign anything for anybody."""
    keys = section.string_list(name) or ()
    if any(not key.strip() for key in keys):
        raise ConfigError(section.key_of(name), "must not contain a blank key")
    return tuple(dict.fromkeys(keys))


def read_variant_generation(section: Section) -> VariantGenerationSettings:
    settings = VariantGenerationSettings(
        workers=section.integer("workers", default_worker_count(), minimum=1),
        queue_size=section.integer("queue-size", 1000, minimum=0),
        synchronous_priority=section.integer("synchronous-priority", 80, minimum=1, maximum=99),
        render_timeout=section.duration("render-timeout", timedelta(seconds=30)).total_seconds(),
        vips_concurrency=section.integer("vips-concurrency", 1, minimum=1, maximum=64),
        decode_workers=section.integer("decode-workers", 2, minimum=1, maximum=64),
    )
    section.finish()
    return settings


def read_cache(section: Section) -> CacheSettings:
    defaults = CacheSettings()
    settings = CacheSettings(
        redis_url=_url(section, "redis-url", ("redis", "rediss", "unix")),
        resolution_entries=section.integer("resolution-entries", defaults.resolution_entries, minimum=0),
        memory_size=section.byte_size("memory-size", defaults.memory_size, minimum=0),
        small_object_max_size=section.byte_size("small-object-max-size", defaults.small_object_max_size, minimum=0),
        newest_max_age=_seconds(section, "newest-max-age", defaults.newest_max_age),
        newest_stale_while_revalidate=_seconds(
            section, "newest-stale-while-revalidate", defaults.newest_stale_while_revalidate
        ),
        purge_webhook_url=_url(section, "purge-webhook-url", ("http", "https")),
    )
    section.finish()
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


def _seconds(section: Section, name: str, default: int) -> int:
    return int(section.duration(name, timedelta(seconds=default)).total_seconds())


def _non_blank(section: Section, name: str) -> str | None:
    value = section.optional_string(name)
    if value is not None and not value.strip():
        raise ConfigError(section.key_of(name), "must not be blank; leave the key out to use the default")
    return value.strip() if value is not None else None


def _url(section: Section, name: str, schemes: Sequence[str]) -> str | None:
    value = _non_blank(section, name)
    return None if value is None else _checked_url(value, section.key_of(name), schemes)


def _checked_url(value: str, key: str, schemes: Sequence[str]) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes or not (parts.netloc or parts.path):
        allowed = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigError(key, f"expected a URL starting with {allowed}, got {describe(value)}")
    if parts.scheme.lower() in ("http", "https") and not parts.hostname:
        raise ConfigError(key, f"the URL has no host: {describe(value)}")
    return value
