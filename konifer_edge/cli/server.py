"""`konifer-edge serve | migrate | check-config`: running the server, and its schema and configuration."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from konifer_edge.cli.common import config_from_env, database, load_or_exit, migrate

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


def serve(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Before anything creates a metric: prometheus-client picks its storage at creation.
    _prepare_metrics_dir(data_dir / "metrics")

    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings

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
