"""`konifer-edge serve | migrate | check-config | sweep`: the operator's entry points."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from konifer_edge.config import Config, ConfigError, load_config
from konifer_edge.observability.logs import configure_logging
from konifer_edge.security.commands import add_commands as add_security_commands

log = logging.getLogger("konifer_edge")

MAX_REQUEST_HEAD_BYTES = 64 * 1024


def _load_or_exit(config_path: Path | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    except OSError as error:
        print(f"cannot read configuration: {error}", file=sys.stderr)
        raise SystemExit(2) from error


def _database(config: Config, data_dir: Path) -> tuple[str, object | None]:
    """The configured database, or an embedded one: under the data directory, or throw-away for `in-memory`."""
    from konifer_edge.app import database_dsn
    from konifer_edge.storage.embedded_postgres import start_embedded_postgres

    dsn = database_dsn(config)
    if dsn is not None:
        return dsn, None
    if config.data_store.provider == "in-memory":
        return start_embedded_postgres(Path(tempfile.mkdtemp(prefix="konifer-edge-")), ephemeral=True)
    return start_embedded_postgres(data_dir)


async def _migrate(dsn: str) -> list[str]:
    import asyncpg

    from konifer_edge.storage.migrations import migrate

    connection = await asyncpg.connect(dsn)
    try:
        return await migrate(connection)
    finally:
        await connection.close()


def _prepare_metrics_dir(directory: Path) -> None:
    """Workers share their metric samples through files here; stale ones from a last run must go."""
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def serve(args: argparse.Namespace) -> int:
    config = _load_or_exit(args.config)
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Before anything creates a metric: prometheus-client picks its storage at creation.
    _prepare_metrics_dir(data_dir / "metrics")

    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings

    from konifer_edge import app as app_module

    dsn, embedded = _database(config, data_dir)
    asyncio.run(_migrate(dsn))
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
        workers_kill_timeout=30,
        respawn_failed_workers=True,
        # Bounds the request line and headers (bodies stream past it): oversized heads are refused.
        http1_settings=HTTP1Settings(max_buffer_size=MAX_REQUEST_HEAD_BYTES),
    ).serve()
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    config = _load_or_exit(args.config)
    data_dir: Path = args.data_dir.resolve()
    dsn, _ = _database(config, data_dir)
    applied = asyncio.run(_migrate(dsn))
    print("applied: " + (", ".join(applied) if applied else "nothing, the schema is current"))
    return 0


def check_config(args: argparse.Namespace) -> int:
    _load_or_exit(args.file)
    print(f"{args.file}: ok")
    return 0


def _min_age(text: str) -> timedelta:
    from konifer_edge.config.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def sweep_command(args: argparse.Namespace) -> int:
    """Remove objects no variant row references; retry queued object removals now."""
    from konifer_edge.app import configured_buckets, object_store_for
    from konifer_edge.services import sweep

    config = _load_or_exit(args.config)
    refused = sweep.refusal(config)
    if refused is not None:
        print(f"sweep: {refused}", file=sys.stderr)
        return 2
    data_dir: Path = args.data_dir.resolve()
    buckets = sorted(set(args.buckets or configured_buckets(config)))
    dsn, _embedded = _database(config, data_dir)  # the embedded server, if any, runs until we return
    objects = object_store_for(config, data_dir)
    return sweep.run(dsn, objects, buckets, min_age=args.min_age, dry_run=args.dry_run)


def _config_from_env() -> Path | None:
    """Containers pass the configuration file by environment as readily as by flag."""
    value = os.environ.get("KONIFER_EDGE_CONFIG")
    return Path(value) if value else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="konifer-edge", description="An image CDN origin for the Konifer asset API")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the HTTP server")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8080)
    serve_parser.add_argument("--data-dir", type=Path, default=Path("data"))
    serve_parser.add_argument(
        "--config", type=Path, default=_config_from_env(), help="konifer.toml or konifer.conf (env KONIFER_EDGE_CONFIG)"
    )
    serve_parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: http.workers, else one per CPU core)"
    )
    serve_parser.set_defaults(handler=serve)

    migrate_parser = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate_parser.add_argument("--data-dir", type=Path, default=Path("data"))
    migrate_parser.add_argument("--config", type=Path, default=_config_from_env())
    migrate_parser.set_defaults(handler=migrate_command)

    check_parser = commands.add_parser("check-config", help="validate a configuration file")
    check_parser.add_argument("file", type=Path)
    check_parser.set_defaults(handler=check_config)

    sweep_parser = commands.add_parser(
        "sweep", help="remove objects no variant references (orphans) and retry queued object removals now"
    )
    sweep_parser.add_argument("--data-dir", type=Path, default=Path("data"))
    sweep_parser.add_argument("--config", type=Path, default=_config_from_env(), help="as serve's")
    sweep_parser.add_argument(
        "--bucket", action="append", dest="buckets", metavar="BUCKET", help="repeatable (default: every configured one)"
    )
    sweep_parser.add_argument(
        "--min-age", type=_min_age, default="1h", help="keep orphans younger than this, e.g. 30m (default 1h)"
    )
    sweep_parser.add_argument("--dry-run", action="store_true", help="report, remove nothing")
    sweep_parser.set_defaults(handler=sweep_command)

    add_security_commands(commands)  # sign, keys create | list | revoke
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
