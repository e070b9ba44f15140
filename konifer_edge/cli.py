"""`konifer-edge serve | migrate | check-config`: the operator's entry points."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

from konifer_edge.config import Config, ConfigError, load_config
from konifer_edge.observability.logs import configure_logging

log = logging.getLogger("konifer_edge")


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

    from konifer_edge import app as app_module

    dsn, embedded = _database(config, data_dir)
    asyncio.run(_migrate(dsn))
    os.environ[app_module.ENV_DATA_DIR] = str(data_dir)
    if args.config is not None:
        os.environ[app_module.ENV_CONFIG_FILE] = str(args.config.resolve())
    if embedded is not None:
        os.environ[app_module.ENV_EMBEDDED_DSN] = dsn
    workers = args.workers or 1
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="konifer-edge", description="An image CDN origin for the Konifer asset API")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the HTTP server")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8080)
    serve_parser.add_argument("--data-dir", type=Path, default=Path("data"))
    serve_parser.add_argument("--config", type=Path, default=None, help="konifer.toml or konifer.conf")
    serve_parser.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    serve_parser.set_defaults(handler=serve)

    migrate_parser = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate_parser.add_argument("--data-dir", type=Path, default=Path("data"))
    migrate_parser.add_argument("--config", type=Path, default=None)
    migrate_parser.set_defaults(handler=migrate_command)

    check_parser = commands.add_parser("check-config", help="validate a configuration file")
    check_parser.add_argument("file", type=Path)
    check_parser.set_defaults(handler=check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
