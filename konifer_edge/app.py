"""Builds the Litestar app from a Config: opens pools at start-up and closes them at shutdown."""

from __future__ import annotations

import logging
import os
import typing
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import redis.asyncio as redis
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp
from prometheus_client.metrics import MetricWrapperBase

from konifer_edge.cache.bodies import SmallBodyCache, originals_cache
from konifer_edge.cache.generations import Generations, RedisGenerations, SharedMemoryGenerations
from konifer_edge.cache.postgres_generations import PostgresGenerations
from konifer_edge.cache.resolution import ResolutionCache
from konifer_edge.cache.shared import NodeLocks, PostgresLocks, RedisState, SharedState
from konifer_edge.config import Config, load_config
from konifer_edge.domain.formats import ImageFormat
from konifer_edge.http.answers import STREAMED_ROUTES
from konifer_edge.http.collections import COLLECTION_ROUTES
from konifer_edge.http.cors import cors_for_paths
from konifer_edge.http.errors import EXCEPTION_HANDLERS
from konifer_edge.http.replay import MAX_RECORDED_ANSWERS, Replay, serve_recorded_answers
from konifer_edge.http.routes import ASSET_ROUTES
from konifer_edge.http.rule_evaluations import RULE_EVALUATION_ROUTES
from konifer_edge.http.shares import SHARE_ROUTES, SHARE_SERVE_OUTCOMES
from konifer_edge.imaging.decode_pool import DecodePool
from konifer_edge.imaging.pool import ImagingPool
from konifer_edge.imaging.vips import pyvips
from konifer_edge.observability import metrics
from konifer_edge.observability.health import HEALTH_ROUTES, metrics_endpoint
from konifer_edge.observability.logs import ACCESS_LINES, configure_logging
from konifer_edge.observability.request_log import request_accounting
from konifer_edge.rules.engine import RuleEngine
from konifer_edge.rules.prompt_cache import PromptEmbeddingStore
from konifer_edge.security.api_keys import CachedKeys, cache_ttl_from_environment
from konifer_edge.security.key_store import KeyStore
from konifer_edge.services.cdn import PurgeHook
from konifer_edge.services.object_reaper import ObjectReaper
from konifer_edge.services.runtime import Runtime
from konifer_edge.services.variant_upkeep import start_upkeep, stop_upkeep
from konifer_edge.sources.s3_object import S3ObjectDownloader
from konifer_edge.sources.url import UrlDownloader, UrlFetchPolicy, UrlSourceReason
from konifer_edge.storage.deletions import DeletionQueue
from konifer_edge.storage.migrations import migrate
from konifer_edge.storage.object_store import ObjectStore, S3Params, create_object_store
from konifer_edge.storage.repository import AssetRepository, create_pool
from konifer_edge.storage.shares import ShareRepository

log = logging.getLogger("konifer_edge")

# Set by `konifer-edge serve` for the worker processes Granian starts.
ENV_CONFIG_FILE = "KONIFER_EDGE_CONFIG"
ENV_DATA_DIR = "KONIFER_EDGE_DATA_DIR"
ENV_EMBEDDED_DSN = "KONIFER_EDGE_EMBEDDED_DSN"


REPOSITORY_OPERATIONS = (
    "create",
    "add_variant",
    "find_entry",
    "find_newest",
    "find_variant",
    "variant_keys",
    "update_metadata",
    "delete",
)
OBJECT_STORE_OPERATIONS = ("put", "stream", "read", "delete", "presigned_get_url")


def database_dsn(config: Config) -> str | None:
    return os.environ.get(ENV_EMBEDDED_DSN) or config.data_store.postgresql.dsn()


def object_store_for(config: Config, data_dir: Path) -> ObjectStore:
    settings = config.object_store
    s3 = settings.s3
    return create_object_store(
        settings.provider,
        s3=S3Params(
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            force_path_style=s3.force_path_style,
            allow_http=s3.allow_http,
            connect_timeout=s3.connect_timeout.total_seconds(),
            read_timeout=s3.read_timeout.total_seconds(),
            request_timeout=s3.request_timeout.total_seconds(),
            retry_timeout=s3.retry_timeout.total_seconds(),
            max_retries=s3.max_retries,
        ),
        filesystem_root=Path(settings.filesystem.mount_path or data_dir / "objects"),
    )


def _redis_client(url: str | None) -> redis.Redis | None:
    # Short timeouts: a Redis outage must degrade to the database, not stall requests.
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5) if url else None


def configured_buckets(config: Config) -> set[str]:
    paths = config.paths
    settings = [paths.root, *(paths.for_pattern(pattern) for pattern in paths.patterns)]
    return {s.object_store.bucket for s in settings if s is not None}


def _known_label_values() -> dict[MetricWrapperBase, tuple[str, ...]]:
    formats = tuple(image_format.short_name for image_format in ImageFormat)
    return {
        metrics.RENDERS: formats,
        metrics.RENDER_DURATION: formats,
        metrics.VARIANT_LOOKUPS: ("hit", "miss"),
        metrics.OBJECT_STORE_DURATION: OBJECT_STORE_OPERATIONS,
        metrics.DATABASE_DURATION: REPOSITORY_OPERATIONS,
        metrics.IMAGING_IN_USE: ("render", "decode"),
        metrics.DECODE_FAILURES: ("crash", "timeout"),
        metrics.URL_DOWNLOADS: ("ok", *typing.get_args(UrlSourceReason)),
        # Refusal reasons are open-ended; "other" gives the family its series from the start.
        metrics.REJECTED_INPUTS: ("other",),
        metrics.SHARE_SERVES: SHARE_SERVE_OUTCOMES,
        metrics.RESPONSES_CUT: STREAMED_ROUTES,
    }


def create_app(config: Config, data_dir: Path, dsn: str, *, alone: bool = False) -> Litestar:
    """The app of one worker; ``alone``: the database is this node's own embedded one."""

    async def start(app: Litestar, stack: AsyncExitStack) -> None:
        """Open everything a worker needs; each resource goes on `stack`, which releases it."""
        metrics.export_at_zero(_known_label_values())
        # Entered first, so left last: the last requests' counts and access lines are not lost.
        await stack.enter_async_context(metrics.folding())
        stack.callback(ACCESS_LINES.flush)
        pool = await create_pool(dsn, max_size=config.data_store.postgresql.pool_size)
        stack.push_async_callback(pool.close)
        async with pool.acquire() as connection:
            applied = await migrate(connection)
        if applied:
            log.info("applied migrations %s", applied)
        repository = AssetRepository(pool)
        metrics.instrument(repository, metrics.DATABASE_DURATION, REPOSITORY_OPERATIONS)
        objects = object_store_for(config, data_dir)
        metrics.instrument(objects, metrics.OBJECT_STORE_DURATION, OBJECT_STORE_OPERATIONS)
        for bucket in configured_buckets(config):
            await objects.ensure_bucket(bucket)
        url_settings = config.source.url
        downloader = UrlDownloader(
            UrlFetchPolicy(
                allowed_domains=tuple(url_settings.allowed_domains),
                max_bytes=url_settings.max_bytes,
                allow_private_networks=url_settings.allow_private_networks,
                timeout_seconds=url_settings.timeout,
                max_redirects=url_settings.max_redirects,
            )
        )
        stack.push_async_callback(downloader.aclose)
        generation = config.variant_generation
        workers = generation.workers
        pyvips.concurrency_set(generation.vips_concurrency)
        imaging = ImagingPool(
            workers, generation.queue_size, generation.render_timeout, generation.synchronous_priority
        )
        stack.callback(imaging.shutdown)
        decoding = DecodePool(
            generation.decode_workers, generation.queue_size, generation.render_timeout, generation.vips_concurrency
        )
        stack.callback(decoding.shutdown)
        await decoding.start()
        redis_client = _redis_client(config.cache.redis_url)
        if redis_client is not None:
            stack.push_async_callback(redis_client.aclose)
        shared: SharedState
        if redis_client:
            shared = RedisState(redis_client)
        elif alone:
            # Its workers' file locks keep renders single here; another node pointed at an embedded database
            # could still render the same variant once more, which the row insert settles.
            shared = NodeLocks(data_dir / "render-locks")
        else:
            # Locks are held for a render: at most as many as renders can run, plus one.
            shared = PostgresLocks(
                await create_pool(dsn, min_size=1, max_size=workers + 1, purpose="locks", holds_session_state=True)
            )
        stack.push_async_callback(shared.close)
        generations: Generations
        postgres_generations: PostgresGenerations | None = None
        if redis_client:
            generations = RedisGenerations(redis_client)
        else:
            # Without Redis, other nodes on the same database hear of this node's writes through it; an
            # embedded database too, since another node may be pointed at it (the bench's second server is).
            local_generations = SharedMemoryGenerations(data_dir / "generations.bin")
            postgres_generations = PostgresGenerations(pool, dsn, local_generations)
            await postgres_generations.start()
            stack.push_async_callback(postgres_generations.close)
            generations = postgres_generations
        rules = (
            await RuleEngine.start(config.rule_inference, config.rule_definitions, PromptEmbeddingStore(pool))
            if config.rules_required
            else None
        )
        if rules is not None:
            stack.callback(rules.shutdown)
        purge = PurgeHook(config.cache.purge_webhook_url)
        stack.push_async_callback(purge.aclose)
        reaper = ObjectReaper(DeletionQueue(pool), objects)
        reaper.start()
        stack.push_async_callback(reaper.stop)
        app.state.runtime = Runtime(
            config=config,
            repository=repository,
            objects=objects,
            imaging=imaging,
            decoding=decoding,
            url_downloader=downloader,
            # ARN sources share the URL sources' size cap and timeout (spec 06 section 9).
            s3_objects=S3ObjectDownloader(max_bytes=url_settings.max_bytes, timeout_seconds=url_settings.timeout),
            reaper=reaper,
            shared=shared,
            resolutions=ResolutionCache(generations, redis_client, config.cache.resolution_entries),
            bodies=SmallBodyCache(config.cache.memory_size, config.cache.small_object_max_size),
            originals=originals_cache(config.cache.originals_memory_size),
            purge=purge,
            shares=ShareRepository(pool),
            keys=CachedKeys(KeyStore(pool), cache_ttl_from_environment()),
            rules=rules,
        )
        # Recorded answers are resolutions too: `cache.resolution-entries = 0` sends every request to the database.
        app.state.replay = Replay(app.state.runtime, min(MAX_RECORDED_ANSWERS, config.cache.resolution_entries))
        start_upkeep(app.state.runtime)
        stack.push_async_callback(stop_upkeep, app.state.runtime)
        # First at shutdown: /ready answers 503 while the rest is released.
        stack.callback(setattr, app.state, "shutting_down", True)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # What start-up opened is released in reverse order at shutdown, and also when start-up fails.
        async with AsyncExitStack() as stack:
            await start(app, stack)
            yield

    # With a metrics port of its own, /metrics is served there only (observability/metrics_server.py).
    health_routes = [route for route in HEALTH_ROUTES if config.metrics.port is None or route is not metrics_endpoint]
    return Litestar(
        route_handlers=[
            *ASSET_ROUTES,
            *COLLECTION_ROUTES,
            *SHARE_ROUTES,
            *health_routes,
            *(RULE_EVALUATION_ROUTES if config.api.rule_evaluation.enabled else []),
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[lifespan],
        request_max_body_size=None,
        # Logging is set up once for the process (observability/logs.py), not replaced by Litestar's own.
        logging_config=None,
        openapi_config=OpenAPIConfig(title="konifer-edge", version="0.1.0", path="/schema"),
        debug=False,
    )


def create_app_from_env() -> ASGIApp:
    """Granian's factory target: each worker reads what `serve` decided from the environment.

    The accounting wraps the whole app, not just its routes, so that even a request no route
    matches is counted, logged and answered with the common headers.
    """
    configure_logging()
    config_file = os.environ.get(ENV_CONFIG_FILE)
    config = load_config(Path(config_file) if config_file else None)
    configure_logging(config.logging.level)
    data_dir = Path(os.environ.get(ENV_DATA_DIR, "data"))
    dsn = database_dsn(config)
    if dsn is None:
        raise RuntimeError("no database: `konifer-edge serve` starts the embedded one before the workers")
    app = create_app(config, data_dir, dsn, alone=os.environ.get(ENV_EMBEDDED_DSN) is not None)
    # CORS outside the fast path, so that replayed answers get headers for their own request's Origin.
    return request_accounting(
        cors_for_paths(serve_recorded_answers(app, lambda: app.state.get("replay")), config.paths)
    )
