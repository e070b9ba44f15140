"""A konifer-edge server under test together with the database and object store it uses.

`snapshot()` reads both back from the outside, so a test can prove that a refused
request left every row and every object exactly as it was.
"""

from __future__ import annotations

import asyncio
import itertools
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from tests.support.server import RunningServer
from tests.support.services import PostgresService, S3Service

_database_numbers = itertools.count()

BUCKETS = ("assets", "other-bucket")


class Snapshot(msgspec.Struct, frozen=True):
    assets: list[tuple[Any, ...]]
    variants: list[tuple[Any, ...]]
    objects: list[tuple[str, str]]


def object_store_section(store: str, s3: S3Service | None) -> str:
    if store == "s3":
        assert s3 is not None
        return textwrap.dedent(
            f"""
            [object-store]
            provider = "s3"
            [object-store.s3]
            endpoint-url = "{s3.endpoint_url}"
            region = "{s3.region}"
            access-key = "{s3.access_key}"
            secret-key = "{s3.secret_key}"
            force-path-style = true
            """
        )
    return f'\n[object-store]\nprovider = "{store}"\n'


class Deployment:
    def __init__(
        self,
        root: Path,
        config_toml: str,
        *,
        store: str,
        postgres: PostgresService,
        s3: S3Service | None = None,
        env: dict[str, str] | None = None,
        config_name: str = "konifer.toml",
        dsn: str | None = None,
        server_args: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        self.s3 = s3
        self.root = root
        self.database = f"konifer_test_{next(_database_numbers)}"
        # Nodes of one cluster share a database: pass the first node's dsn to the others.
        self.dsn = dsn or postgres.create_database(self.database)
        config_path = root / config_name
        root.mkdir(parents=True, exist_ok=True)
        config_path.write_text(
            config_toml + object_store_section(store, s3) if config_name.endswith(".toml") else config_toml
        )
        if s3 is not None and store == "s3":
            for bucket in BUCKETS:
                s3.create_bucket(bucket)
        self.server = RunningServer(
            root / "data", config_path, env={"DATABASE_URL": self.dsn, **(env or {})}, extra_args=server_args
        )
        self.client = httpx.Client(base_url="", timeout=30.0)

    def start(self) -> Deployment:
        self.server.start()
        self.client = httpx.Client(base_url=self.server.base_url, timeout=30.0)
        return self

    def stop(self) -> None:
        self.client.close()
        self.server.stop()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async def run() -> list[tuple[Any, ...]]:
            connection = await asyncpg.connect(self.dsn)
            try:
                return [tuple(row) for row in await connection.fetch(sql, *args)]
            finally:
                await connection.close()

        return asyncio.run(run())

    def stored_objects(self) -> list[tuple[str, str]]:
        """Every object in every bucket; the in-memory store lives in the server and cannot be seen."""
        if self.store == "s3":
            assert self.s3 is not None
            return sorted((bucket, key) for bucket in BUCKETS for key in self.s3.list_keys(bucket))
        if self.store == "filesystem":
            objects_root = self.root / "data" / "objects"
            return sorted(
                (path.relative_to(objects_root).parts[0], "/".join(path.relative_to(objects_root).parts[1:]))
                for path in objects_root.rglob("*")
                if path.is_file()
            )
        return []

    def read_object(self, bucket: str, key: str) -> bytes:
        if self.store == "s3":
            assert self.s3 is not None
            return self.s3.get_object(bucket, key)
        if self.store == "filesystem":
            return (self.root / "data" / "objects" / bucket / key).read_bytes()
        raise LookupError("the in-memory store cannot be read from outside the server")

    def snapshot(self) -> Snapshot:
        return Snapshot(
            assets=self.query("SELECT * FROM asset ORDER BY id"),
            # last_accessed_at moves whenever a background flush records a use; it is not state a request owns.
            variants=self.query(
                "SELECT id, asset_id, transformation_key, bucket, store_key, size_bytes, content_hash"
                " FROM variant ORDER BY id"
            ),
            objects=self.stored_objects(),
        )


def unique_path(prefix: str = "t") -> Iterator[str]:
    for number in itertools.count():
        yield f"{prefix}/case{number}"


@contextmanager
def running(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresService,
    name: str,
    config: str,
    env: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    """A filesystem-store server on `config` for the length of a `with` block (a module's fixture)."""
    deployment = Deployment(
        tmp_path_factory.mktemp(name), config, store="filesystem", postgres=postgres, env=env
    ).start()
    try:
        yield deployment
    finally:
        deployment.stop()
