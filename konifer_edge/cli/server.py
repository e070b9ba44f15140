"""`konifer-edge serve | migrate | check-config`: running the server, and its schema and configuration."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from konifer_edge.cli.common import config_from_env, database, load_or_exit, migrate
from konifer_edge.config import Config
from konifer_edge.observability.logs import configure_logging, granian_log_config

log = logging.getLogger("konifer_edge")

MAX_REQUEST_HEAD_BYTES = 64 * 1024


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``, ``migrate`` and ``check-config`` on the main parser's sub-commands."""
    serve_parser = commands.add_parser("serve", help="run the HTTP server")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8080)
    serve_parser.add_argument("--data-dir", type=Path, default=Path("data"))
    serve_parser.add_argument(
        "--config", type=Path, default=config_from_env(), help="konifer.toml or konifer.conf (env KONIFER_EDGE_CONFIG)"
    )
    serve_parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: http.workers, else one per CPU core)"
    )
    serve_parser.set_defaults(handler=serve)

    migrate_parser = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate_parser.add_argument("--data-dir", type=Path, default=Path("data"))
    migrate_parser.add_argument("--config", type=Path, default=config_from_env())
    migrate_parser.set_defaults(handler=migrate_command)

    check_parser = commands.add_parser("check-config", help="validate a configuration file")
    check_parser.add_argument("file", type=Path)
    check_parser.set_defaults(handler=check_config)


def _prepare_metrics_dir(directory: Path) -> None:
    """Workers share their metric samples through files here; stale ones from a last run must go."""
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _check_rules_model(config: Config) -> None:
    """Configured rules without their model or packages stop `serve` before any worker starts."""
    if not config.rules_required:
        return
    from konifer_edge.rules.model import ModelUnavailable, check_model_available

    try:
        check_model_available(config.rule_inference)
    except ModelUnavailable as error:
        print(f"upload rules cannot start: {error}", file=sys.stderr)
        raise SystemExit(2) from error


def _start_metrics_port(config: Config, host: str, port: int) -> None:
    """`/metrics` on `metrics.port`, in this process (the app leaves it off the main port)."""
    metrics_port = config.metrics.port
    if metrics_port is None:
        return
    from konifer_edge.observability.metrics_server import start_metrics_server

    metrics_host = config.metrics.host or host
    if metrics_port == port:
        print(f"configuration error: metrics.port {metrics_port} is the port serve listens on", file=sys.stderr)
        raise SystemExit(2)
    try:
        start_metrics_server(metrics_host, metrics_port)
    except OSError as error:
        print(f"cannot listen for /metrics on {metrics_host}:{metrics_port}: {error}", file=sys.stderr)
        raise SystemExit(2) from error


def serve(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    configure_logging(config.logging.level)
    _check_rules_model(config)
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Before anything creates a metric: prometheus-client picks its storage at creation.
    _prepare_metrics_dir(data_dir / "metrics")
    _start_metrics_port(config, args.host, args.port)

    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    from konifer_edge import app as app_module

    dsn, embedded = database(config, data_dir)
    asyncio.run(migrate(dsn))
    os.environ[app_module.ENV_DATA_DIR] = str(data_dir)
    if args.config is not None:
        os.environ[app_module.ENV_CONFIG_FILE] = str(args.config.resolve())
    if embedded is not None:
        os.environ[app_module.ENV_EMBEDDED_DSN] = dsn
    # One process per core: request handling holds the GIL, so more processes serve more.
    workers = args.workers or config.http.workers or os.cpu_count() or 1
    if config.object_store.provider == "in-memory" and workers > 1:
        # Each worker would hold a store of its own, and a variant one of them stored would be
        # missing in the others.
        log.warning("the in-memory object store lives in one process: serving with 1 worker instead of %d", workers)
        workers = 1
    log.info("serving on http://%s:%d with %d worker(s), data in %s", args.host, args.port, workers, data_dir)
    Granian(
        target="konifer_edge.app:create_app_from_env",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.auto,
        log_access=False,
        log_level=LogLevels(config.logging.level),
        log_dictconfig=granian_log_config(config.logging.level),
        workers_kill_timeout=30,
        respawn_failed_workers=True,
        # Bounds the request line and headers (bodies stream past it): oversized heads are refused.
        http1_settings=HTTP1Settings(max_buffer_size=MAX_REQUEST_HEAD_BYTES),
    ).serve()
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    data_dir: Path = args.data_dir.resolve()
    dsn, _ = database(config, data_dir)
    applied = asyncio.run(migrate(dsn))
    print("applied: " + (", ".join(applied) if applied else "nothing, the schema is current"))
    return 0


def check_config(args: argparse.Namespace) -> int:
    load_or_exit(args.file)
    print(f"{args.file}: ok")
    return 0
