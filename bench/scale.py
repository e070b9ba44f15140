"""The scale scenario: newest metadata as the asset table grows, with rows seeded straight into the
server's PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from konifer import Konifer
from load import series, url_file
from processes import http_request
from settings import SCALE_DURATION, SCALE_LEVELS, log


async def _seed(dsn: str, low: int, high: int) -> dict[str, float]:
    """Add entries [low, high - 1) at /scale/one (the last one of the level is stored through the API, so the
    server's own write path invalidates its caches), and assets [low, high) ten to a path under /scale/many
    (new paths only: no path already read changes)."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    timings = {}
    try:
        original = await connection.fetchrow(
            "SELECT v.bucket, v.store_key, v.size_bytes, v.content_hash"
            " FROM variant v JOIN asset a ON a.id = v.asset_id"
            " WHERE a.path = '/bench/photo' AND a.entry_id = 0 AND v.transformation_key = ''"
        )
        assert original is not None
        for layout, path_sql, entry_sql, last in (
            ("one_path", "'/scale/one'", "g", high - 2),
            ("across_paths", "'/scale/many/' || (g / 10)", "g % 10", high - 1),
        ):
            started = time.monotonic()
            if last < low:
                timings[layout] = 0.0
                continue
            async with connection.transaction():
                # Each seeded asset gets one variant row: its original, pointing at the real stored photo.
                await connection.execute(
                    "WITH seeded AS ("
                    " INSERT INTO asset (id, path, entry_id, alt, source, created_at, modified_at)"
                    f" SELECT gen_random_uuid(), {path_sql}, {entry_sql}, 'seeded', 'upload',"
                    "  timestamptz '2020-01-01' + g * interval '1 millisecond',"
                    "  timestamptz '2020-01-01' + g * interval '1 millisecond'"
                    " FROM generate_series($1::bigint, $2::bigint) AS g RETURNING id, created_at)"
                    " INSERT INTO variant (id, asset_id, transformation_key, bucket, store_key, width, height, format,"
                    " page_count, loop, content_type, size_bytes, content_hash, created_at, last_accessed_at)"
                    " SELECT gen_random_uuid(), id, '', $3, $4, 3000, 2000, 'jpg', 1, 0, 'image/jpeg', $5, $6,"
                    "  created_at, created_at FROM seeded",
                    low,
                    last,
                    original["bucket"],
                    original["store_key"],
                    original["size_bytes"],
                    original["content_hash"],
                )
                await connection.execute(
                    "INSERT INTO asset_path (path, last_entry_id)"
                    f" SELECT {path_sql}, max({entry_sql}) FROM generate_series($1::bigint, $2::bigint) AS g GROUP BY 1"
                    " ON CONFLICT (path) DO UPDATE SET last_entry_id = GREATEST(asset_path.last_entry_id,"
                    " EXCLUDED.last_entry_id)",
                    low,
                    last,
                )
            timings[layout] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        await connection.execute("ANALYZE asset")
        await connection.execute("ANALYZE variant")
        timings["analyze"] = round(time.monotonic() - started, 2)
        counts = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM asset WHERE path = '/scale/one') AS one,"
            " (SELECT count(*) FROM asset WHERE path LIKE '/scale/many/%') AS many"
        )
        assert counts is not None
        timings["rows_one_path"] = counts["one"]
        timings["rows_across_paths"] = counts["many"]
    finally:
        await connection.close()
    return timings


def scale_scenario(konifer: Konifer, tmp: Path, photo_bytes: bytes) -> dict[str, Any]:
    """Newest metadata as the table grows, on the server as configured (its resolution cache answers repeated
    reads) and on a second server over the same database with `cache.resolution-entries = 0`, so that every
    request runs the PostgreSQL queries: the cost of a cache miss, or of a path written often."""
    config = tmp / "uncached.toml"
    config.write_text(
        "[cache]\nresolution-entries = 0\n"
        f"[object-store.filesystem]\nmount-path = {json.dumps(str(konifer.data / 'objects'))}\n"
    )
    # It joins the first server's PostgreSQL as an external database, so stopping it stops nothing else.
    uncached = Konifer(
        tmp, name="konifer-uncached", config=config, data=tmp / "uncached-data", database_url=konifer.dsn
    )
    servers = {"cached": konifer, "uncached": uncached}
    out: dict[str, Any] = {
        "levels": list(SCALE_LEVELS),
        "seeding_s": {},
        "servers": {name: {"one_path": {}, "across_paths": {}, "control": {}} for name in servers},
        "uncached_config": "cache.resolution-entries = 0 (same database and objects, same workers)",
    }
    one_urls = url_file(tmp, "scale-one", ["/assets/scale/one/-/metadata"])
    # The control: the newest metadata of a path that never grows, measured at every level right before the
    # others. If it moves as much as they do, the machine moved (other load), not the table.
    control_urls = url_file(tmp, "scale-control", ["/assets/bench/photo/-/metadata"])
    previous = 0
    try:
        for level in SCALE_LEVELS:
            log(f"scale: seeding to {level:,} assets per layout")
            out["seeding_s"][str(level)] = asyncio.run(_seed(konifer.dsn, previous, level))
            stored = konifer.store("scale/one", photo_bytes)
            if stored["entryId"] != level - 1:
                raise RuntimeError(f"scale: the store at /scale/one got entry {stored['entryId']}, not {level - 1}")
            previous = level
            for name, server in servers.items():
                status, _, body = http_request(server.port, "GET", "/assets/scale/one/-/metadata")
                newest = json.loads(body).get("entryId") if status == 200 else None
                if newest != level - 1:
                    raise RuntimeError(f"scale: {name} says the newest at /scale/one is {newest} ({status})")
            paths = max(1, level // 10)
            picks = sorted({(i * paths) // 50 for i in range(50)})
            many_urls = url_file(tmp, f"scale-many-{level}", [f"/assets/scale/many/{k}/-/metadata" for k in picks])
            for name, server in servers.items():
                block = out["servers"][name]
                for key, urls, connections in (
                    ("control", control_urls, (1,)),
                    ("one_path", one_urls, (1, 8)),
                    ("across_paths", many_urls, (1, 8)),
                ):
                    block[key][str(level)] = series(
                        server.port,
                        ["urls", str(urls)],
                        label=f"scale {name} {key} {level:,}",
                        duration=SCALE_DURATION,
                        connections=connections,
                        warmup=True,
                        warmup_duration=1,
                    )
    finally:
        uncached.stop()
    return out
