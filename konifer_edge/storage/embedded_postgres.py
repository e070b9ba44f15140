"""The embedded PostgreSQL used when no database is configured: a real server under the data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_embedded_postgres(data_dir: Path, *, ephemeral: bool = False) -> tuple[str, Any]:
    """Start (or join) the server in `data_dir/postgres`; return its DSN and the server handle.

    pgserver runs the server as its own user when started as root, and shares one
    server between processes that ask for the same directory.
    """
    from pgserver import get_server  # type: ignore[attr-defined]

    pg_dir = data_dir / "postgres"
    pg_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(str(pg_dir), cleanup_mode="delete" if ephemeral else "stop")
    return str(server.get_uri()), server
