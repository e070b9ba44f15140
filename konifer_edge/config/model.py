"""The validated settings: frozen msgspec Structs with snake_case names.

Each Struct mirrors one object of Konifer's configuration tree (kebab-case keys
in the file, snake_case attributes here). Instances are only built by load.py
after validation, so code that receives them can trust every value.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated, Final, Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import msgspec

from konifer_edge.config.decode import PIXELS, SIZE, Decoded, Duration, NonBlank, Seconds, WholeSeconds
from konifer_edge.config.paths import PathConfiguration
from konifer_edge.config.rules import (
    ApiSettings,
    RuleDefinition,
    RuleInferenceSettings,
    UploadRuleset,
    UploadRulesetFile,
)

DataStoreProvider = Literal["postgresql", "in-memory"]
ObjectStoreProvider = Literal["s3", "filesystem", "in-memory"]
PostgresSslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SigningAlgorithm = Literal["hmac_sha256", "hmac_sha384", "hmac_sha512"]
LqipKind = Literal["blurhash", "thumbhash"]
RedirectStrategy = Literal["none", "presigned", "template"]
DeliveryStrategy = Literal["service", "none", "presigned", "template"]
CacheVisibility = Literal["public", "private"]
CacheRevalidate = Literal["must-revalidate", "proxy-revalidate", "no-cache"]
OnDemandMode = Literal["enabled", "profile_only", "disabled"]
ExpireStrategy = Literal["never", "ttl", "idle"]
ReadAccess = Literal["public", "key"]
LogLevel = Literal["debug", "info", "warning", "error"]

DATA_STORE_PROVIDERS: Final[tuple[DataStoreProvider, ...]] = ("postgresql", "in-memory")
OBJECT_STORE_PROVIDERS: Final[tuple[ObjectStoreProvider, ...]] = ("s3", "filesystem", "in-memory")
POSTGRES_SSL_MODES: Final[tuple[PostgresSslMode, ...]] = (
    "disable", "allow", "prefer", "require", "verify-ca", "verify-full",
)  # fmt: skip
SIGNING_ALGORITHMS: Final[tuple[SigningAlgorithm, ...]] = ("hmac_sha256", "hmac_sha384", "hmac_sha512")
LQIP_KINDS: Final[tuple[LqipKind, ...]] = ("blurhash", "thumbhash")
REDIRECT_STRATEGIES: Final[tuple[RedirectStrategy, ...]] = ("none", "presigned", "template")
DELIVERY_STRATEGIES: Final[tuple[DeliveryStrategy, ...]] = ("service", *REDIRECT_STRATEGIES)
"""``service`` is Konifer's later name for what no strategy means here: 307 to our own content URL."""
CACHE_VISIBILITIES: Final[tuple[CacheVisibility, ...]] = ("public", "private")
CACHE_REVALIDATES: Final[tuple[CacheRevalidate, ...]] = ("must-revalidate", "proxy-revalidate", "no-cache")
ON_DEMAND_MODES: Final[tuple[OnDemandMode, ...]] = ("enabled", "profile_only", "disabled")
EXPIRE_STRATEGIES: Final[tuple[ExpireStrategy, ...]] = ("never", "ttl", "idle")
READ_ACCESS: Final[tuple[ReadAccess, ...]] = ("public", "key")
LOG_LEVELS: Final[tuple[LogLevel, ...]] = ("debug", "info", "warning", "error")

SUPPORTED_CONTENT_TYPES: Final[tuple[str, ...]] = (
    "image/jpeg", "image/png", "image/webp", "image/avif", "image/jxl", "image/heic", "image/gif",
)  # fmt: skip

TransformationParams = dict[str, str]
"""Transformation keys (``w``, ``fit``, ``pad-c``...) to their values as text.

Only the keys are checked here; the imaging code validates the values. Treat the
mapping as read-only: it is shared by every path that inherits it.
"""

DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024


# --- top level ---------------------------------------------------------------


Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Bytes = Annotated[int, msgspec.Meta(ge=1, extra=SIZE)]
Pixels = Annotated[int, msgspec.Meta(ge=1, extra=PIXELS)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class HttpSettings(Decoded, frozen=True, kw_only=True):
    public_url: NonBlank | None = None
    """Base of Location and link URLs, without a trailing slash; ``None`` derives it from the request."""
    workers: Annotated[int, msgspec.Meta(ge=1, le=256)] | None = None
    """Server worker processes; ``None`` means one per CPU core."""


class PostgresSettings(Decoded, frozen=True, kw_only=True):
    host: NonBlank | None = None
    port: Port = 5432
    database: NonBlank = "konifer"
    user: NonBlank = "postgres"
    password: str = ""
    ssl_mode: PostgresSslMode | None = None
    """``None``: not configured; the connection then uses libpq's default, ``prefer`` (as Konifer does),
    and a ``url`` keeps whatever ``sslmode`` it carries."""
    url: NonBlank | None = None
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    """Most connections each server worker process holds for requests (ours); docs/deployment.md
    multiplies it out against the server's ``max_connections``."""

    def dsn(self) -> str | None:
        """The connection string, or ``None`` to run the embedded PostgreSQL."""
        if self.url is not None:
            return self._url_with_ssl_mode(self.url)
        if self.host is None:
            return None
        credentials = quote(self.user, safe="")
        if self.password:
            credentials += ":" + quote(self.password, safe="")
        # Unset, asyncpg's own default applies, which is libpq's and Konifer's: prefer.
        query = f"?{urlencode({'sslmode': self.ssl_mode})}" if self.ssl_mode else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{credentials}@{host}:{self.port}/{quote(self.database, safe='')}{query}"

    def _url_with_ssl_mode(self, url: str) -> str:
        """A configured ``ssl-mode`` joins a URL that names none; one the URL names is kept."""
        parts = urlsplit(url)
        if self.ssl_mode is None or "sslmode" in parse_qs(parts.query):
            return url
        query = "&".join(filter(None, (parts.query, urlencode({"sslmode": self.ssl_mode}))))
        return urlunsplit(parts._replace(query=query))


class DataStoreSettings(Decoded, frozen=True, kw_only=True):
    provider: DataStoreProvider = "postgresql"
    postgresql: PostgresSettings = msgspec.field(default_factory=PostgresSettings)


class S3Settings(Decoded, frozen=True, kw_only=True):
    endpoint_url: NonBlank | None = None
    region: NonBlank = "us-east-1"
    access_key: NonBlank | None = None
    secret_key: NonBlank | None = None
    force_path_style: bool = False
    allow_http: bool = False
    """Whether plain-HTTP endpoints may be used; sections.py sets it for ``http://`` endpoints."""
    connect_timeout: Duration = timedelta(seconds=5)
    read_timeout: Duration = timedelta(seconds=30)
    """Longest wait for the next bytes of an answer."""
    request_timeout: Duration = timedelta(minutes=5)
    """Longest one request may take, its body included (a streamed download is paced by its client)."""
    retry_timeout: Duration = timedelta(seconds=30)
    """Time after which a failing call is not retried again."""
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] = 3


class FilesystemSettings(Decoded, frozen=True, kw_only=True):
    mount_path: NonBlank | None = None
    """Root directory of stored objects; ``None`` means ``<data-dir>/objects``."""


class ObjectStoreSettings(Decoded, frozen=True, kw_only=True):
    provider: ObjectStoreProvider = "filesystem"
    s3: S3Settings = msgspec.field(default_factory=S3Settings)
    filesystem: FilesystemSettings = msgspec.field(default_factory=FilesystemSettings)


class UrlSourceSettings(Decoded, frozen=True, kw_only=True):
    allowed_domains: tuple[str, ...] = ()
    """Host names (lower case) that URL sources may be fetched from; empty refuses every URL source."""
    max_bytes: Bytes = DEFAULT_MAX_BYTES
    allow_private_networks: bool = False
    timeout: Seconds = 30.0
    """Seconds for the whole download."""
    max_redirects: Annotated[int, msgspec.Meta(ge=0)] = 5


class MultipartSettings(Decoded, frozen=True, kw_only=True):
    max_bytes: Bytes = DEFAULT_MAX_BYTES


class SourceSettings(Decoded, frozen=True, kw_only=True):
    url: UrlSourceSettings = msgspec.field(default_factory=UrlSourceSettings)
    multipart: MultipartSettings = msgspec.field(default_factory=MultipartSettings)


class UrlSigningSettings(Decoded, frozen=True, kw_only=True):
    enabled: bool = False
    algorithm: SigningAlgorithm = "hmac_sha256"
    secret_key: str | None = None
    secret_keys: tuple[str, ...] = ()
    """More keys accepted at once, for rotation (konifer-edge's addition to Konifer)."""

    @property
    def signing_keys(self) -> tuple[str, ...]:
        """Every accepted key without repeats, ``secret-key`` first; the first one signs new URLs."""
        written = (self.secret_key, *self.secret_keys) if self.secret_key is not None else self.secret_keys
        return tuple(dict.fromkeys(written))


def default_worker_count() -> int:
    return os.cpu_count() or 1


class VariantGenerationSettings(Decoded, frozen=True, kw_only=True):
    workers: Annotated[int, msgspec.Meta(ge=1)] = msgspec.field(default_factory=default_worker_count)
    queue_size: Annotated[int, msgspec.Meta(ge=0)] = 1000
    synchronous_priority: Annotated[int, msgspec.Meta(ge=1, le=99)] = 80
    """Share (percent) of render-worker picks given to synchronous work (on-demand renders) over
    eager renders while both are waiting; with only one kind waiting, it gets every pick."""
    render_timeout: Seconds = 30.0
    """Seconds a request waits for one render before answering 503 (ours)."""
    vips_concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    """Threads libvips itself uses inside one render (ours). Renders already run in parallel
    in the pool, so 1 avoids oversubscribing the cores; raise it for few, large images."""
    decode_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    """Processes per server worker that make the first full decode of uploads (ours): a decoder
    crash there costs one upload, not the worker. Stores are rarer than renders, and each process
    keeps libvips in memory, so a few suffice."""


class CacheSettings(Decoded, frozen=True, kw_only=True):
    """konifer-edge's own caching and CDN settings (not in Konifer)."""

    redis_url: NonBlank | None = None
    """``None`` keeps the resolution cache in-process only."""
    resolution_entries: Annotated[int, msgspec.Meta(ge=0)] = 50_000
    """Selector and variant resolutions kept in each worker's memory."""
    memory_size: Annotated[int, msgspec.Meta(ge=0, extra=SIZE)] = 64 * 1024 * 1024
    """Byte budget of each worker's cache of small variant bodies."""
    small_object_max_size: Annotated[int, msgspec.Meta(ge=0, extra=SIZE)] = 256 * 1024
    """Variant bodies up to this size are kept in memory; larger ones always stream."""
    originals_memory_size: Annotated[int, msgspec.Meta(ge=0, extra=SIZE)] = 64 * 1024 * 1024
    """Byte budget of each worker's cache of recently rendered-from originals (encoded bytes); 0 turns it off."""
    newest_max_age: WholeSeconds = 60
    """Seconds a CDN may keep a newest-at-path answer when the path configures no cache-control."""
    newest_stale_while_revalidate: WholeSeconds = 600
    purge_webhook_url: NonBlank | None = None
    """Called with the purge tags of every update and delete, for a CDN purge."""


class BundleSettings(Decoded, frozen=True, kw_only=True):
    """Limits of ZIP bundles (``/-/zip`` and ``POST /bundles``), konifer-edge's own."""

    max_entries: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    """Images one bundle may hold."""
    max_bytes: Annotated[int, msgspec.Meta(ge=1, extra=SIZE)] = 2 * 1024 * 1024 * 1024
    """Sum of the image sizes one bundle may hold, checked before the first byte is sent."""


class LoggingSettings(Decoded, frozen=True, kw_only=True):
    """konifer-edge's own: what reaches stderr (every line JSON, observability/logs.py)."""

    level: LogLevel = "info"
    """The least severe level written; ``warning`` and ``error`` also leave out the access lines."""


class MetricsSettings(Decoded, frozen=True, kw_only=True):
    """konifer-edge's own: where Prometheus scrapes ``/metrics``."""

    port: Port | None = None
    """``None`` serves ``/metrics`` on the main port; a port serves it there only, so it need not be public."""
    host: NonBlank | None = None
    """Address the metrics port listens on; ``None`` means the address ``serve --host`` listens on."""


WireSpelling = Literal["current", "v0.2"]
WIRE_SPELLINGS: Final[tuple[WireSpelling, ...]] = ("current", "v0.2")


class CompatSettings(Decoded, frozen=True, kw_only=True):
    """Choices that keep older Konifer clients working."""

    wire: WireSpelling = "current"
    """``current`` writes Konifer's current enum spellings in metadata (``rotate: "90"``,
    ``flip: ""``); ``v0.2`` writes those of Konifer 0.2 (``ninety``, ``none``, ``greyscale``)."""


# --- per path ------------------------------------------------------------------


class PathObjectStore(Decoded, frozen=True, kw_only=True):
    bucket: str = "assets"


class ImageSettings(Decoded, frozen=True, kw_only=True):
    lqip: tuple[LqipKind, ...] = ()


class RedirectSettings(msgspec.Struct, frozen=True, kw_only=True):
    strategy: RedirectStrategy | None = None
    """``None`` (not configured): 307 to our own entry-pinned content URL; see spec 05 section 2."""
    presigned_ttl: timedelta = timedelta(minutes=30)
    template_string: str | None = None


MAX_PRESIGNED_TTL: Final = timedelta(days=7)


class PresignedFile(Decoded, frozen=True, kw_only=True):
    ttl: Annotated[timedelta, msgspec.Meta(extra={"unit": "duration", "at-most": MAX_PRESIGNED_TTL})] = timedelta(
        minutes=30
    )
    enabled: bool = False
    """In Konifer's documented defaults, read by nothing."""


class TemplateFile(Decoded, frozen=True, kw_only=True):
    string: str | None = None


class RedirectFile(Decoded, frozen=True, kw_only=True):
    strategy: DeliveryStrategy | None = None
    presigned: PresignedFile = msgspec.field(default_factory=PresignedFile)
    template: TemplateFile = msgspec.field(default_factory=TemplateFile)


class ReturnFormatFile(Decoded, frozen=True, kw_only=True):
    """A path's ``return-format`` as the file writes it; read into the flatter ``ReturnFormatSettings``."""

    redirect: RedirectFile = msgspec.field(default_factory=RedirectFile)


class ReturnFormatSettings(msgspec.Struct, frozen=True, kw_only=True):
    redirect: RedirectSettings = msgspec.field(default_factory=RedirectSettings)


# Whole seconds, written as a number (0 and up) or as a duration such as '365d'.
Age = Annotated[int, msgspec.Meta(ge=0, extra={"unit": "age"})]


class CacheControlDirectives(Decoded, frozen=True, kw_only=True):
    """A path's ``cache-control`` as the file writes it."""

    enabled: bool = False
    max_age: Age | None = None
    s_maxage: Age | None = None
    visibility: CacheVisibility | None = None
    revalidate: CacheRevalidate | None = None
    stale_while_revalidate: Age | None = None
    stale_if_error: Age | None = None
    immutable: bool = False


class CacheControlSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = False
    max_age: int | None = None
    s_maxage: int | None = None
    visibility: CacheVisibility | None = None
    revalidate: CacheRevalidate | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    immutable: bool = False
    explicit: bool = False
    """`enabled` is written, true or false, at the path or a pattern it inherits from. Then the path's
    own answer (possibly no header at all) stands; only where nobody said anything do defaults apply."""

    def header_value(self) -> str | None:
        """The ``Cache-Control`` value with exactly the configured directives.

        ``None`` when disabled, or when enabled with nothing configured: an
        empty header would say nothing and only override a CDN's defaults.
        """
        if not self.enabled:
            return None
        directives = [
            self.visibility,
            _directive("max-age", self.max_age),
            _directive("s-maxage", self.s_maxage),
            self.revalidate,
            _directive("stale-while-revalidate", self.stale_while_revalidate),
            _directive("stale-if-error", self.stale_if_error),
            "immutable" if self.immutable else None,
        ]
        present = [directive for directive in directives if directive is not None]
        return ", ".join(present) or None


def _directive(name: str, seconds: int | None) -> str | None:
    return None if seconds is None else f"{name}={seconds}"


class PreprocessingSettings(msgspec.Struct, frozen=True, kw_only=True):
    params: TransformationParams = msgspec.field(default_factory=dict)
    max_width: int | None = None
    max_height: int | None = None


class TransformLimits(Decoded, frozen=True, kw_only=True):
    """Largest output a render may produce (Konifer's ``transform.limits``)."""

    max_width: Positive = 8192
    max_height: Positive = 8192
    max_pixels: Pixels = 20_000_000


class VariantCacheSettings(Decoded, frozen=True, kw_only=True):
    """Konifer's ``transform.retention.cache``: how many variants an asset keeps."""

    max_variants: Positive = 16
    access_score_half_life: Duration = timedelta(hours=1)


class OnDemandFile(Decoded, frozen=True, kw_only=True):
    mode: OnDemandMode = "enabled"


class ExpireFile(Decoded, frozen=True, kw_only=True):
    strategy: ExpireStrategy = "never"
    ttl: Duration | None = None


class PreprocessingFile(Decoded, frozen=True, kw_only=True):
    enabled: bool = False
    image: dict[str, object] = msgspec.field(default_factory=dict)
    """Transformation keys, and the ``max-width`` and ``max-height`` read as ``PreprocessingMaxima``."""
    max_width: object = None
    max_height: object = None
    """Where one of Konifer's documentation examples writes them and Konifer ignores them: warned about."""


class PreprocessingMaxima(Decoded, frozen=True, kw_only=True):
    max_width: Positive | None = None
    max_height: Positive | None = None


class RetentionFile(Decoded, frozen=True, kw_only=True):
    cache: VariantCacheSettings = msgspec.field(default_factory=VariantCacheSettings)


class TransformFile(Decoded, frozen=True, kw_only=True):
    """A path's ``transform`` as the file writes it; read into the flatter ``TransformSettings``."""

    eager_variants: tuple[str, ...] = ()
    on_demand_variant: OnDemandFile = msgspec.field(default_factory=OnDemandFile)
    expire: ExpireFile = msgspec.field(default_factory=ExpireFile)
    preprocessing: PreprocessingFile = msgspec.field(default_factory=PreprocessingFile)
    retention: RetentionFile = msgspec.field(default_factory=RetentionFile)
    limits: TransformLimits = msgspec.field(default_factory=TransformLimits)


class TransformSettings(msgspec.Struct, frozen=True, kw_only=True):
    eager_variants: tuple[str, ...] = ()
    on_demand_mode: OnDemandMode = "enabled"
    expire_strategy: ExpireStrategy = "never"
    expire_ttl: timedelta | None = None
    preprocessing_enabled: bool = False
    preprocessing: PreprocessingSettings = msgspec.field(default_factory=PreprocessingSettings)
    limits: TransformLimits = msgspec.field(default_factory=TransformLimits)
    variant_cache: VariantCacheSettings = msgspec.field(default_factory=VariantCacheSettings)


class AssetLimits(Decoded, frozen=True, kw_only=True):
    """Largest original accepted at store time (Konifer's per-path ``limits``)."""

    max_width: Positive = 16384
    max_height: Positive = 16384
    max_pixels: Pixels = 100_000_000
    """Width x height x frames: what decoding the whole image costs."""
    max_pages: Positive = 1000
    max_pixels_per_page: Pixels = 100_000_000
    """Width x height of one frame, for paths that want animations smaller than stills."""


class AccessSettings(Decoded, frozen=True, kw_only=True):
    """Who may read a path (konifer-edge's addition): anyone, or holders of an API key with ``assets:read``."""

    read: ReadAccess = "public"


CORS_DEFAULT_METHODS: Final = ("GET", "HEAD")
CORS_DEFAULT_HEADERS: Final = ("Authorization", "Content-Type", "If-None-Match", "Range", "X-Api-Key", "X-Request-ID")
CORS_DEFAULT_EXPOSED: Final = (
    "Content-Disposition", "Content-Length", "ETag", "K-Alt", "Konifer-Alt", "Link", "Location", "X-Request-ID",
)  # fmt: skip


MAX_CORS_MAX_AGE: Final = timedelta(days=1)


class CorsSettings(Decoded, frozen=True, kw_only=True):
    """Which web origins a browser lets read this path's answers (konifer-edge's addition)."""

    allowed_origins: tuple[str, ...] = ()
    """``scheme://host[:port]`` origins in lower case, or ``*`` for any; empty sends no CORS headers."""
    allowed_methods: tuple[str, ...] = CORS_DEFAULT_METHODS
    allowed_headers: tuple[str, ...] = CORS_DEFAULT_HEADERS
    exposed_headers: tuple[str, ...] = CORS_DEFAULT_EXPOSED
    max_age: Annotated[int, msgspec.Meta(extra={"unit": "whole-seconds", "at-most": MAX_CORS_MAX_AGE})] = 600
    """Seconds a browser may reuse a preflight answer."""
    allow_credentials: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.allowed_origins)

    @property
    def any_origin(self) -> bool:
        return "*" in self.allowed_origins


class PathFile(Decoded, frozen=True, kw_only=True):
    """One pattern's settings as the file writes them (aliases moved, ancestors merged in)."""

    object_store: PathObjectStore = msgspec.field(default_factory=PathObjectStore)
    allowed_content_types: tuple[str, ...] | None = None
    image: ImageSettings = msgspec.field(default_factory=ImageSettings)
    return_format: ReturnFormatFile = msgspec.field(default_factory=ReturnFormatFile)
    cache_control: CacheControlDirectives = msgspec.field(default_factory=CacheControlDirectives)
    transform: TransformFile = msgspec.field(default_factory=TransformFile)
    limits: AssetLimits = msgspec.field(default_factory=AssetLimits)
    url_signing: dict[str, object] | None = None
    """Laid over the top level's ``url-signing`` as written, then read as ``UrlSigningSettings``."""
    access: AccessSettings = msgspec.field(default_factory=AccessSettings)
    upload_ruleset: UploadRulesetFile = msgspec.field(default_factory=UploadRulesetFile)
    cors: CorsSettings = msgspec.field(default_factory=CorsSettings)


class PathSettings(msgspec.Struct, frozen=True, kw_only=True):
    pattern: str = "/**"
    """The configured pattern these settings belong to (lower case), for logs and debugging."""
    object_store: PathObjectStore = msgspec.field(default_factory=PathObjectStore)
    allowed_content_types: tuple[str, ...] | None = None
    """``None`` allows all seven supported formats; an empty tuple allows none."""
    image: ImageSettings = msgspec.field(default_factory=ImageSettings)
    return_format: ReturnFormatSettings = msgspec.field(default_factory=ReturnFormatSettings)
    cache_control: CacheControlSettings = msgspec.field(default_factory=CacheControlSettings)
    transform: TransformSettings = msgspec.field(default_factory=TransformSettings)
    limits: AssetLimits = msgspec.field(default_factory=AssetLimits)
    url_signing: UrlSigningSettings | None = None
    """A per-path override of the top-level ``url-signing``; ``None`` means the top level applies."""
    access: AccessSettings = msgspec.field(default_factory=AccessSettings)
    upload_ruleset: UploadRuleset = msgspec.field(default_factory=UploadRuleset)
    cors: CorsSettings = msgspec.field(default_factory=CorsSettings)


class ConfigFile(Decoded, frozen=True, kw_only=True):
    """The top level as written: which sections exist. Each is read on its own, in the order they depend on."""

    http: object = None
    data_store: object = None
    object_store: object = None
    source: object = None
    url_signing: object = None
    variant_generation: object = None
    variant_profiles: object = None
    cache: object = None
    bundle: object = None
    rule_definitions: object = None
    api: object = None
    rule_inference: object = None
    logging: object = None
    metrics: object = None
    compat: object = None
    paths: object = None


class Config(msgspec.Struct, frozen=True, kw_only=True):
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    data_store: DataStoreSettings = msgspec.field(default_factory=DataStoreSettings)
    object_store: ObjectStoreSettings = msgspec.field(default_factory=ObjectStoreSettings)
    source: SourceSettings = msgspec.field(default_factory=SourceSettings)
    url_signing: UrlSigningSettings = msgspec.field(default_factory=UrlSigningSettings)
    variant_generation: VariantGenerationSettings = msgspec.field(default_factory=VariantGenerationSettings)
    variant_profiles: dict[str, TransformationParams] = msgspec.field(default_factory=dict)
    cache: CacheSettings = msgspec.field(default_factory=CacheSettings)
    bundle: BundleSettings = msgspec.field(default_factory=BundleSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    compat: CompatSettings = msgspec.field(default_factory=CompatSettings)
    paths: PathConfiguration[PathSettings] = msgspec.field(
        default_factory=lambda: PathConfiguration({}, default=PathSettings())
    )
    rule_definitions: dict[str, RuleDefinition] = msgspec.field(default_factory=dict)
    api: ApiSettings = msgspec.field(default_factory=ApiSettings)
    rule_inference: RuleInferenceSettings = msgspec.field(default_factory=RuleInferenceSettings)

    @property
    def rules_required(self) -> bool:
        """Whether the model must be loaded: rules are defined, or the evaluation API is on."""
        return bool(self.rule_definitions) or self.api.rule_evaluation.enabled

    warnings: tuple[str, ...] = ()
    """Settings that loaded but do not act as written (each names its key); logged at start-up."""

    def signing_for(self, settings: PathSettings) -> UrlSigningSettings:
        """The URL-signing rules that govern a path: its override, else the top level."""
        return settings.url_signing if settings.url_signing is not None else self.url_signing
