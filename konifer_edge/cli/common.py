"""What every command needs before its own work: the configuration, and the database it names."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

from konifer_edge.config import Config, ConfigError, load_config

log = logging.getLogger("konifer_edge")

# Where Konifer's container image expects its configuration to be mounted.
CONTAINER_CONFIG_FILES = (Path("/app/config/konifer.conf"), Path("/app/config/konifer.toml"))


def load_or_exit(config_path: Path | None) -> Config:
    """The configuration, or exit 2 with the reason on stderr; what loads but is not applied is logged."""
    try:
        config = load_config(config_path)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    except OSError as error:
        print(f"cannot read configuration: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    for warning in config.warnings:
        log.warning("configuration: %s", warning)
    return config


def database(config: Config, data_dir: Path) -> tuple[str, object | None]:
    """The configured database, or an embedded one: under the data directory, or throw-away for `in-memory`.

    The second value is the embedded server's handle: it must stay referenced while the database is used.
    """
    from konifer_edge.app import database_dsn
    from konifer_edge.storage.embedded_postgres import start_embedded_postgres

    dsn = database_dsn(config)
    if dsn is not None:
        return dsn, None
    if config.data_store.provider == "in-memory":
        return start_embedded_postgres(Path(tempfile.mkdtemp(prefix="konifer-edge-")), ephemeral=True)
    return start_embedded_postgres(data_dir)


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; the names of those applied."""
    import asyncpg

    from konifer_edge.storage.migrations import migrate as apply

    connection = await asyncpg.connect(dsn)
    try:
        return await apply(connection)
    finally:
        await connection.close()


def config_from_env() -> Path | None:
    """Containers pass the configuration file by environment as readily as by flag.

    Without either, a file mounted where Konifer's image reads it is used, so a Konifer
    deployment's volume works unchanged.
    """
    value = os.environ.get("KONIFER_EDGE_CONFIG")
    if value:
        return Path(value)
    return next((path for path in CONTAINER_CONFIG_FILES if path.is_file()), None)
