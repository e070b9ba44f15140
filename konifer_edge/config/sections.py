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

from konifer_edge.config.errors import ConfigError
from konifer_edge.config.model import (
    DATA_STORE_PROVIDERS,
    DEFAULT_MAX_BYTES,
    LOG_LEVELS,
    OBJECT_STORE_PROVIDERS,
    POSTGRES_SSL_MODES,
    SIGNING_ALGORITHMS,
    WIRE_SPELLINGS,
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


def read_http(section: Section) -> HttpSettings:
    public_url = _url(section, "public-url", ("http", "https"))
    workers = section.optional_integer("workers", minimum=1, maximum=256)
    section.finish()
    parts = urlsplit(public_url or "")
    if parts.query or parts.fragment:
        raise ConfigError(section.key_of("public-url"), "must be a base URL, without a query or fragment")
    # Stored without a trailing slash so that callers can append "/assets/...".
    return HttpSettings(public_url=public_url.rstrip("/") if public_url else None, workers=workers)


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
    hosts = tuple(_host_name(section, name, host.strip().lower()) for host in section.string_list(name) or ())
    return tuple(dict.fromkeys(hosts))


def _host_name(section: Section, name: str, host: str) -> str:
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
        section.key_of(name),
        f"{host!r} is not a host name or IP address (write 'images.example.com' or '[::1]', no scheme or path)",
    )


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


def read_bundle(section: Section) -> BundleSettings:
    defaults = BundleSettings()
    settings = BundleSettings(
        max_entries=section.integer("max-entries", defaults.max_entries, minimum=1, maximum=100_000),
        max_bytes=section.byte_size("max-bytes", defaults.max_bytes, minimum=1),
    )
    section.finish()
    return settings


def read_logging(section: Section) -> LoggingSettings:
    settings = LoggingSettings(level=section.choice("level", LOG_LEVELS, "info"))
    section.finish()
    return settings


def read_compat(section: Section) -> CompatSettings:
    settings = CompatSettings(wire=section.choice("wire", WIRE_SPELLINGS, CompatSettings().wire))
    section.finish()
    return settings


def read_metrics(section: Section) -> MetricsSettings:
    settings = MetricsSettings(
        port=section.optional_integer("port", minimum=1, maximum=65535),
        host=_non_blank(section, "host"),
    )
    section.finish()
    if settings.host is not None and settings.port is None:
        raise ConfigError(section.key_of("host"), "needs metrics.port: /metrics has no port of its own without it")
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
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes or not (parts.netloc or parts.path):
        allowed = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigError(section.key_of(name), f"expected a URL starting with {allowed}, got {describe(value)}")
    if parts.scheme.lower() in ("http", "https") and not parts.hostname:
        raise ConfigError(section.key_of(name), f"the URL has no host: {describe(value)}")
    return value
