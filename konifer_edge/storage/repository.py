"""The metadata repository: assets and variants in PostgreSQL through asyncpg.

Every statement is parameterised. Writes that touch several rows run in one
transaction; objects whose rows are deleted are queued in the same transaction so a
crash after commit never forgets an object that must go.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from konifer_edge.domain.listing import ChildrenQuery, ListingCursor, ListingQuery, SortOrder
from konifer_edge.domain.models import Asset, AssetSource, Attributes, Lqip, Variant
from konifer_edge.domain.selectors import ALL, DeleteScope, DeleteSelector, Order

# Pool connections are proxies; both run the same statements.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

_ORDER_BY = {
    Order.CREATED: "created_at DESC, entry_id DESC",
    Order.MODIFIED: "modified_at DESC, entry_id DESC",
}

_VARIANT_COLUMNS = (
    "id, asset_id, transformation_key, transformation, bucket, store_key, width, height, format,"
    " page_count, loop, content_type, size_bytes, content_hash, lqip, color_space, orientation"
)
_VARIANT_VALUES = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18"
_INSERT_VARIANT = (
    f"INSERT INTO variant ({_VARIANT_COLUMNS}, created_at, last_accessed_at) VALUES ({_VARIANT_VALUES})"
    f" RETURNING {_VARIANT_COLUMNS}"
)
# The same insert, committed without waiting for the WAL flush: set_config(..., true) lasts for the
# statement's own transaction, and the FROM makes PostgreSQL evaluate it (an unreferenced CTE is not).
_INSERT_DERIVED_VARIANT = (
    f"INSERT INTO variant ({_VARIANT_COLUMNS}, created_at, last_accessed_at) SELECT {_VARIANT_VALUES}"
    " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS commit_without_flush"
    f" RETURNING {_VARIANT_COLUMNS}"
)
_ASSET_COLUMNS = "id, path, entry_id, alt, labels, tags, source, source_url, created_at, modified_at"


class NewAsset(msgspec.Struct, frozen=True):
    path: str
    alt: str | None
    labels: dict[str, str]
    tags: list[str]
    source: AssetSource
    source_url: str | None
    created_at: datetime


class NewVariant(msgspec.Struct, frozen=True):
    transformation_key: str
    transformation: dict[str, object] | None
    bucket: str
    store_key: str
    attributes: Attributes
    content_type: str
    size: int
    content_hash: str
    lqip: Lqip = Lqip()


class ObjectRef(msgspec.Struct, frozen=True):
    bucket: str
    store_key: str


class DeletedAssets(msgspec.Struct, frozen=True):
    entries: list[tuple[str, int]]
    objects: list[ObjectRef]


class AgingVariant(msgspec.Struct, frozen=True):
    id: uuid.UUID
    created_at: datetime
    last_accessed_at: datetime
    path: str


class ChildPath(msgspec.Struct, frozen=True):
    name: str
    assets_here: int
    assets_below: int


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a returned connection needs beyond asyncpg's own rollback of an open transaction: nothing.

    Queries here set no session variables, listen on nothing (the invalidation listener has a
    connection of its own), hold no advisory lock and leave no cursor past its transaction, so
    the default reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) would be a second
    round trip after every query with nothing to undo.
    """


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb",
        encoder=lambda value: msgspec.json.encode(value).decode(),
        decoder=msgspec.json.decode,
        schema="pg_catalog",
        format="text",
    )


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, purpose: str = "requests", holds_session_state: bool = False
) -> asyncpg.Pool:
    """A pool whose connections name their purpose in ``pg_stat_activity.application_name``
    (unless the DSN names one), so that whoever counts connections against ``max_connections``
    sees who holds them.

    ``holds_session_state``: its users take session-level state (advisory locks), which asyncpg's
    reset query must clear when a connection comes back. Other pools skip that query.
    """
    named = "application_name=" in dsn
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min(min_size, max_size),
        max_size=max_size,
        init=_init_connection,
        reset=None if holds_session_state else _keep_session,
        command_timeout=30,
        server_settings=None if named else {"application_name": f"konifer-edge {purpose}"},
    )
    assert pool is not None
    return pool


async def _with_variants(connection: Connection, rows: Sequence[asyncpg.Record]) -> list[Asset]:
    if not rows:
        return []
    variant_rows = await connection.fetch(
        f"SELECT {_VARIANT_COLUMNS} FROM variant WHERE asset_id = ANY($1::uuid[]) ORDER BY created_at, id",
        [row["id"] for row in rows],
    )
    by_asset: dict[uuid.UUID, list[Variant]] = {row["id"]: [] for row in rows}
    for variant_row in variant_rows:
        by_asset[variant_row["asset_id"]].append(_variant_from_row(variant_row))
    return [_asset_from_row(row, by_asset[row["id"]]) for row in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _variant_from_row(row: asyncpg.Record) -> Variant:
    return Variant(
        id=row["id"],
        asset_id=row["asset_id"],
        transformation_key=row["transformation_key"],
        transformation=row["transformation"],
        bucket=row["bucket"],
        store_key=row["store_key"],
        attributes=Attributes(
            width=row["width"],
            height=row["height"],
            format=row["format"],
            page_count=row["page_count"],
            loop=row["loop"],
            color_space=row["color_space"],
            orientation=row["orientation"],
        ),
        content_type=row["content_type"],
        size=row["size_bytes"],
        content_hash=row["content_hash"],
        lqip=msgspec.convert(row["lqip"], Lqip),
    )


def _asset_from_row(row: asyncpg.Record, variants: Sequence[Variant]) -> Asset:
    return Asset(
        id=row["id"],
        path=row["path"],
        entry_id=row["entry_id"],
        alt=row["alt"],
        labels=row["labels"],
        tags=list(row["tags"]),
        source=AssetSource(row["source"]),
        source_url=row["source_url"],
        created_at=row["created_at"],
        modified_at=row["modified_at"],
        variants=tuple(variants),
    )


_SORT_COLUMNS = {Order.CREATED: "created_at", Order.MODIFIED: "modified_at"}


def _collection_filter(path: str, recursive: bool, labels: dict[str, str]) -> tuple[str, list[Any]]:
    """The WHERE clause of the assets at ``path`` (and below it when recursive), narrowed by labels."""
    args: list[Any] = []
    if not recursive:
        args.append(path)
        where = "path = $1"
    elif path == "/":
        where = "TRUE"
    else:
        args.extend([path, _escape_like(path) + "/%"])
        where = "(path = $1 OR path LIKE $2)"
    if labels:
        args.append(labels)
        where += f" AND labels @> ${len(args)}"
    return where, args


class AssetRepository:
    """Reads and writes asset metadata. One instance per process, over a connection pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1")

    async def create(self, asset: NewAsset, original: NewVariant) -> Asset:
        """Insert an asset with its original variant, taking the path's next entry id."""
        asset_id = uuid.uuid4()
        async with self._pool.acquire() as connection, connection.transaction():
            # The upsert serialises concurrent stores to one path on the counter row.
            entry_id = await connection.fetchval(
                "INSERT INTO asset_path (path, last_entry_id) VALUES ($1, 0)"
                " ON CONFLICT (path) DO UPDATE SET last_entry_id = asset_path.last_entry_id + 1"
                " RETURNING last_entry_id",
                asset.path,
            )
            row = await connection.fetchrow(
                f"INSERT INTO asset ({_ASSET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
                f" RETURNING {_ASSET_COLUMNS}",
                asset_id,
                asset.path,
                entry_id,
                asset.alt,
                asset.labels,
                asset.tags,
                asset.source.value,
                asset.source_url,
                asset.created_at,
            )
            variant = await self._insert_variant(connection, asset_id, original, asset.created_at)
        assert row is not None
        return _asset_from_row(row, [variant])

    async def add_variant(self, asset_id: uuid.UUID, variant: NewVariant, now: datetime) -> Variant | None:
        """Record a generated variant; None when the asset is gone or the variant already exists.

        The commit does not wait for its WAL flush: a generated variant is derived data, and a
        database crash in the fraction of a second before the flush only forgets the row, so the
        next request renders the variant again (and `sweep` collects the orphaned object). On a
        first request, that wait was the largest cost after the render itself.
        """
        async with self._pool.acquire() as connection:
            try:
                return await self._insert_variant(connection, asset_id, variant, now, _INSERT_DERIVED_VARIANT)
            except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError):
                return None

    async def _insert_variant(
        self,
        connection: Connection,
        asset_id: uuid.UUID,
        variant: NewVariant,
        now: datetime,
        statement: str = _INSERT_VARIANT,
    ) -> Variant:
        row = await connection.fetchrow(
            statement,
            uuid.uuid4(),
            asset_id,
            variant.transformation_key,
            variant.transformation,
            variant.bucket,
            variant.store_key,
            variant.attributes.width,
            variant.attributes.height,
            variant.attributes.format,
            variant.attributes.page_count,
            variant.attributes.loop,
            variant.content_type,
            variant.size,
            variant.content_hash,
            msgspec.to_builtins(variant.lqip),
            variant.attributes.color_space,
            variant.attributes.orientation,
            now,
        )
        assert row is not None
        return _variant_from_row(row)

    async def find_entry(self, path: str, entry_id: int) -> Asset | None:
        async with self._snapshot() as connection:
            row = await connection.fetchrow(
                f"SELECT {_ASSET_COLUMNS} FROM asset WHERE path = $1 AND entry_id = $2", path, entry_id
            )
            if row is None:
                return None
            return (await _with_variants(connection, [row]))[0]

    async def find_newest(self, path: str, order: Order, limit: int, labels: dict[str, str]) -> list[Asset]:
        """The newest assets at one path (by creation or modification), narrowed by labels."""
        sql = f"SELECT {_ASSET_COLUMNS} FROM asset WHERE path = $1"
        args: list[Any] = [path]
        if labels:
            args.append(labels)
            sql += f" AND labels @> ${len(args)}"
        sql += f" ORDER BY {_ORDER_BY[order]}"
        if limit != ALL:
            args.append(limit)
            sql += f" LIMIT ${len(args)}"
        async with self._snapshot() as connection:
            return await _with_variants(connection, await connection.fetch(sql, *args))

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[Connection]:
        """One connection in one read-only snapshot.

        Assets and their variants are two statements; each would otherwise see the database as
        of its own start, and a delete committing between them would leave an asset without
        variants (read as an asset with no original).
        """
        async with (
            self._pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield connection

    async def list_page(self, query: ListingQuery) -> tuple[list[Asset], ListingCursor | None]:
        """One page of a listing, and the cursor of the next page when there may be one.

        Keyset pagination over (moment, path, entry id), which is unique per asset: a row
        added or deleted elsewhere in the order never moves the rows after the cursor.
        """
        where, args = _collection_filter(query.path, query.recursive, query.labels)
        column = _SORT_COLUMNS[query.sort]
        descending = query.order is SortOrder.DESC
        if query.after is not None:
            args.extend([query.after.moment, query.after.row_path, query.after.entry_id])
            comparison = "<" if descending else ">"
            where += f" AND ({column}, path, entry_id) {comparison} (${len(args) - 2}, ${len(args) - 1}, ${len(args)})"
        direction = "DESC" if descending else "ASC"
        args.append(query.limit + 1)
        async with self._snapshot() as connection:
            rows = await connection.fetch(
                f"SELECT {_ASSET_COLUMNS} FROM asset WHERE {where}"
                f" ORDER BY {column} {direction}, path {direction}, entry_id {direction} LIMIT ${len(args)}",
                *args,
            )
            page = await _with_variants(connection, rows[: query.limit])
        following = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            following = ListingCursor(
                sort=query.sort,
                order=query.order,
                path=query.path,
                recursive=query.recursive,
                moment=last[column],
                row_path=last["path"],
                entry_id=last["entry_id"],
            )
        return page, following

    async def count(self, path: str, recursive: bool, labels: dict[str, str]) -> int:
        where, args = _collection_filter(path, recursive, labels)
        return int(await self._pool.fetchval(f"SELECT count(*) FROM asset WHERE {where}", *args))

    async def child_paths(self, query: ChildrenQuery) -> tuple[int, list[ChildPath]]:
        """Assets exactly at the prefix, and a page of the next path segments below it with their counts."""
        prefix = query.prefix
        below_pattern = "/%" if prefix == "/" else _escape_like(prefix) + "/%"
        # 1-based position of the first character after "prefix/".
        start = 2 if prefix == "/" else len(prefix) + 2
        here = await self._pool.fetchval("SELECT count(*) FROM asset WHERE path = $1", prefix)
        args: list[Any] = [below_pattern, start, query.limit]
        after = ""
        if query.after is not None:
            args.append(query.after)
            after = f" WHERE name > ${len(args)}"
        rows = await self._pool.fetch(
            "SELECT name, count(*) FILTER (WHERE rest = name) AS here, count(*) AS below FROM ("
            " SELECT substr(path, $2) AS rest, split_part(substr(path, $2), '/', 1) AS name"
            " FROM asset WHERE path LIKE $1"
            f") AS children{after} GROUP BY name ORDER BY name LIMIT $3",
            *args,
        )
        children = [ChildPath(name=row["name"], assets_here=row["here"], assets_below=row["below"]) for row in rows]
        return int(here), children

    async def label_keys(self, path: str, limit: int) -> list[str]:
        """Label keys in use at a path or below it, for building filter UIs."""
        where, args = _collection_filter(path, True, {})
        args.append(limit)
        rows = await self._pool.fetch(
            f"SELECT DISTINCT jsonb_object_keys(labels) AS key FROM asset WHERE {where}"
            f" ORDER BY key LIMIT ${len(args)}",
            *args,
        )
        return [row["key"] for row in rows]

    async def find_entries(self, entries: Sequence[tuple[str, int]]) -> list[Asset]:
        """The assets at these (path, entry id) pairs that exist, in no particular order."""
        if not entries:
            return []
        async with self._snapshot() as connection:
            rows = await connection.fetch(
                f"SELECT {_ASSET_COLUMNS} FROM asset WHERE (path, entry_id) IN"
                " (SELECT * FROM unnest($1::text[], $2::bigint[]))",
                [path for path, _ in entries],
                [entry_id for _, entry_id in entries],
            )
            return await _with_variants(connection, rows)

    async def find_variant(self, asset_id: uuid.UUID, transformation_key: str) -> Variant | None:
        row = await self._pool.fetchrow(
            f"SELECT {_VARIANT_COLUMNS} FROM variant WHERE asset_id = $1 AND transformation_key = $2",
            asset_id,
            transformation_key,
        )
        return None if row is None else _variant_from_row(row)

    async def variant_keys(self, asset_id: uuid.UUID, limit: int) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT transformation_key FROM variant WHERE asset_id = $1 LIMIT $2", asset_id, limit
        )
        return [row["transformation_key"] for row in rows]

    async def update_metadata(
        self, path: str, entry_id: int, alt: str | None, labels: dict[str, str], tags: list[str], now: datetime
    ) -> Asset | None:
        # One transaction: the updated row stays locked while its variants are read, so a delete
        # cannot commit in between.
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "UPDATE asset SET alt = $3, labels = $4, tags = $5,"
                # modifiedAt must move forward even when two updates land within one clock tick.
                " modified_at = GREATEST($6, modified_at + interval '1 microsecond')"
                f" WHERE path = $1 AND entry_id = $2 RETURNING {_ASSET_COLUMNS}",
                path,
                entry_id,
                alt,
                labels,
                tags,
                now,
            )
            if row is None:
                return None
            return (await _with_variants(connection, [row]))[0]

    async def delete(self, path: str, selector: DeleteSelector, labels: dict[str, str]) -> DeletedAssets:
        """Delete the selected assets and queue their objects."""
        where, args = self._delete_filter(path, selector, labels)
        async with self._pool.acquire() as connection, connection.transaction():
            doomed = await connection.fetch(f"SELECT id, path, entry_id FROM asset WHERE {where} FOR UPDATE", *args)
            if not doomed:
                return DeletedAssets(entries=[], objects=[])
            ids = [row["id"] for row in doomed]
            objects = await connection.fetch(
                "INSERT INTO pending_object_deletion (bucket, store_key)"
                " SELECT bucket, store_key FROM variant WHERE asset_id = ANY($1::uuid[])"
                " RETURNING bucket, store_key",
                ids,
            )
            await connection.execute("DELETE FROM asset WHERE id = ANY($1::uuid[])", ids)
        return DeletedAssets(
            entries=[(row["path"], row["entry_id"]) for row in doomed],
            objects=[ObjectRef(bucket=row["bucket"], store_key=row["store_key"]) for row in objects],
        )

    @staticmethod
    def _delete_filter(path: str, selector: DeleteSelector, labels: dict[str, str]) -> tuple[str, list[Any]]:
        where, args = _collection_filter(path, selector.scope is DeleteScope.RECURSIVE, labels)
        if selector.entry_id is not None:
            args.append(selector.entry_id)
            return f"{where} AND entry_id = ${len(args)}", args
        if selector.scope is not DeleteScope.NEWEST or selector.limit == ALL:
            return where, args
        args.append(selector.limit)
        newest = f"SELECT id FROM asset WHERE {where} ORDER BY {_ORDER_BY[selector.order]} LIMIT ${len(args)}"
        return f"id IN ({newest})", args

    async def touch_variants(self, variant_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self._pool.execute(
            "UPDATE variant SET last_accessed_at = GREATEST(last_accessed_at, $2) WHERE id = ANY($1::uuid[])",
            list(variant_ids),
            now,
        )

    async def aging_variants(self, older_than: datetime, batch: int) -> list[AgingVariant]:
        """Generated variants created or last used before a moment, with their asset's path."""
        rows = await self._pool.fetch(
            "SELECT v.id, v.created_at, v.last_accessed_at, a.path FROM variant v JOIN asset a ON a.id = v.asset_id"
            " WHERE v.transformation_key <> '' AND LEAST(v.created_at, v.last_accessed_at) < $1"
            " ORDER BY v.created_at LIMIT $2",
            older_than,
            batch,
        )
        return [AgingVariant(**dict(row)) for row in rows]

    async def delete_variants(self, variant_ids: Sequence[uuid.UUID]) -> list[ObjectRef]:
        """Remove generated variants (never an original) and queue their objects."""
        async with self._pool.acquire() as connection, connection.transaction():
            objects = await connection.fetch(
                "WITH gone AS (DELETE FROM variant WHERE id = ANY($1::uuid[]) AND transformation_key <> ''"
                " RETURNING bucket, store_key)"
                " INSERT INTO pending_object_deletion (bucket, store_key) SELECT bucket, store_key FROM gone"
                " RETURNING bucket, store_key",
                list(variant_ids),
            )
        return [ObjectRef(bucket=row["bucket"], store_key=row["store_key"]) for row in objects]
