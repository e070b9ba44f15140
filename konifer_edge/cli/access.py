"""`konifer-edge sign` and `konifer-edge keys create | list | revoke`: the operator's access-control commands.

``sign`` needs no database. The ``keys`` commands use the database the configuration
names (``DATABASE_URL`` overrides it), or the embedded one under ``--data-dir``, and apply
pending migrations first, so they work before the server has ever started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlsplit

from konifer_edge.cli.common import database, load_or_exit
from konifer_edge.config import Config, UrlSigningSettings
from konifer_edge.config.model import SIGNING_ALGORITHMS
from konifer_edge.security.api_keys import (
    SCOPES,
    ApiKey,
    display_prefix,
    new_token,
    parse_path_prefix,
    parse_scopes,
    token_digest,
)
from konifer_edge.security.signing import sign_url

if TYPE_CHECKING:
    from konifer_edge.security.key_store import KeyStore

T = TypeVar("T")

_ASSETS_PREFIX = "/assets/"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sign`` and ``keys`` on the main parser's sub-commands."""
    sign_parser = commands.add_parser("sign", help="print a URL with its signature (url-signing)")
    sign_parser.add_argument("url", help="an absolute URL or a path, with its query: /assets/a/-/content?w=200")
    sign_parser.add_argument("--config", type=Path, default=None, help="take the secret and algorithm from here")
    sign_parser.add_argument("--secret", default=None, help="the secret (default: the configuration's first key)")
    sign_parser.add_argument("--algorithm", choices=SIGNING_ALGORITHMS, default=None)
    sign_parser.set_defaults(handler=sign_command)

    keys_parser = commands.add_parser("keys", help="create, list and revoke API keys")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    create_parser = keys_commands.add_parser("create", help="create a key and print it (only this once)")
    create_parser.add_argument(
        "--scope", action="append", required=True, choices=SCOPES, help="repeat for several scopes"
    )
    create_parser.add_argument("--prefix", default=None, help="limit the key to this asset path and below")
    create_parser.add_argument("--name", default=None, help="a note for `keys list`")
    create_parser.set_defaults(handler=create_key_command)
    list_parser = keys_commands.add_parser("list", help="list every key (never the keys themselves)")
    list_parser.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    list_parser.set_defaults(handler=list_keys_command)
    revoke_parser = keys_commands.add_parser("revoke", help="revoke a key by its id")
    revoke_parser.add_argument("id", type=int)
    revoke_parser.set_defaults(handler=revoke_key_command)
    for parser in (create_parser, list_parser, revoke_parser):
        parser.add_argument("--config", type=Path, default=None)
        parser.add_argument("--data-dir", type=Path, default=Path("data"))


# --- sign ---------------------------------------------------------------------------


def sign_command(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    signing = signing_for_url(config, args.url)
    secret: str | None = args.secret or next(iter(signing.signing_keys), None)
    if not secret:
        print(
            "no signing secret: pass --secret, or a --config with url-signing.secret-key,"
            " or set URL_SIGNING_SECRET_KEY",
            file=sys.stderr,
        )
        return 2
    print(sign_url(args.url, secret, args.algorithm or signing.algorithm))
    return 0


def signing_for_url(config: Config, url: str) -> UrlSigningSettings:
    """The signing rules of the asset path in ``url`` (a path may override the top level)."""
    from konifer_edge.domain.errors import BadRequest
    from konifer_edge.domain.paths import normalise_asset_path
    from konifer_edge.domain.selectors import split_asset_path

    raw_path = urlsplit(url).path
    if not raw_path.startswith(_ASSETS_PREFIX):
        return config.url_signing
    path_part, _ = split_asset_path(raw_path[len(_ASSETS_PREFIX) :])
    try:
        path = normalise_asset_path(unquote(path_part))
    except BadRequest:
        return config.url_signing
    return config.signing_for(config.paths.resolve(path))


# --- keys -----------------------------------------------------------------------------


def create_key_command(args: argparse.Namespace) -> int:
    try:
        scopes = parse_scopes(args.scope)
        path_prefix = parse_path_prefix(args.prefix)
    except ValueError as error:
        print(f"cannot create the key: {error}", file=sys.stderr)
        return 2
    name = args.name.strip() if args.name and args.name.strip() else None
    token = new_token()

    async def create(store: KeyStore) -> ApiKey:
        return await store.create(
            digest=token_digest(token), prefix=display_prefix(token), scopes=scopes, path_prefix=path_prefix, name=name
        )

    key = _run_with_store(args, create)
    # The key alone on stdout, for KEY=$(konifer-edge keys create ...); the rest is for the operator.
    print(token)
    print(
        f"created API key {key.id} ({key.prefix}...) with {', '.join(key.scopes)}"
        f" on {key.path_prefix or 'every path'}; it is shown only now",
        file=sys.stderr,
    )
    return 0


def list_keys_command(args: argparse.Namespace) -> int:
    async def list_keys(store: KeyStore) -> list[ApiKey]:
        return await store.list_keys()

    keys = _run_with_store(args, list_keys)
    if args.json:
        print(json.dumps([_key_json(key) for key in keys], indent=2))
        return 0
    rows = [("ID", "PREFIX", "STATUS", "SCOPES", "PATH PREFIX", "NAME", "CREATED")]
    rows += [
        (
            str(key.id),
            key.prefix,
            "revoked" if key.revoked else "active",
            ",".join(key.scopes),
            key.path_prefix or "*",
            key.name or "",
            key.created_at.isoformat(timespec="seconds"),
        )
        for key in keys
    ]
    print(_table(rows))
    return 0


def revoke_key_command(args: argparse.Namespace) -> int:
    key_id: int = args.id

    async def revoke(store: KeyStore) -> ApiKey | None:
        return await store.revoke(key_id)

    key = _run_with_store(args, revoke)
    if key is None:
        print(f"no API key with id {key_id}", file=sys.stderr)
        return 1
    assert key.revoked_at is not None
    print(f"revoked API key {key.id} ({key.prefix}...) at {key.revoked_at.isoformat(timespec='seconds')}")
    return 0


def _key_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "pathPrefix": key.path_prefix,
        "name": key.name,
        "createdAt": key.created_at.isoformat(),
        "revokedAt": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _run_with_store(args: argparse.Namespace, work: Callable[[KeyStore], Awaitable[T]]) -> T:
    import asyncpg

    from konifer_edge.security.key_store import KeyStore
    from konifer_edge.storage.migrations import migrate

    config = load_or_exit(args.config)
    if config.data_store.provider == "in-memory" and config.data_store.postgresql.dsn() is None:
        print("API keys need a lasting database; the in-memory data store forgets them", file=sys.stderr)
        raise SystemExit(2)
    # The embedded server's handle (if any) must stay referenced while the work runs.
    dsn, _embedded = database(config, args.data_dir.resolve())

    async def run() -> T:
        connection = await asyncpg.connect(dsn)
        try:
            await migrate(connection)
            return await work(KeyStore(connection))
        finally:
            await connection.close()

    return asyncio.run(run())
