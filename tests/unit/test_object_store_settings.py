"""The S3 timeouts and retries of the configuration reach the obstore client that talks to S3."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from obstore.store import S3Store

from konifer_edge.app import object_store_for
from konifer_edge.config import load_config, parse_duration
from konifer_edge.storage.object_store import S3ObjectStore

S3_SECTION = """
[object-store]
provider = "s3"
[object-store.s3]
endpoint-url = "http://127.0.0.1:9000"
force-path-style = true
"""


def built_client(tmp_path: Path, extra: str = "") -> S3Store:
    path = tmp_path / "konifer.toml"
    path.write_text(S3_SECTION + extra)
    objects = object_store_for(load_config(path, {}), tmp_path)
    assert isinstance(objects, S3ObjectStore)
    # The obstore store made for a bucket: the client that every call to that bucket goes through.
    client = objects._store("assets")
    assert isinstance(client, S3Store)
    return client


def timeouts(client: S3Store) -> dict[str, timedelta]:
    options = client.client_options or {}
    return {name: parse_duration(options[name]) for name in ("connect_timeout", "read_timeout", "timeout")}


def test_configured_timeouts_and_retries_are_the_clients(tmp_path: Path) -> None:
    client = built_client(
        tmp_path,
        'connect-timeout = "2s"\nread-timeout = "750ms"\nrequest-timeout = "90s"\n'
        'retry-timeout = "4s"\nmax-retries = 1\n',
    )

    assert timeouts(client) == {
        "connect_timeout": timedelta(seconds=2),
        "read_timeout": timedelta(milliseconds=750),
        "timeout": timedelta(seconds=90),
    }
    retry = client.retry_config or {}
    assert retry.get("retry_timeout") == timedelta(seconds=4)
    assert retry.get("max_retries") == 1


def test_without_settings_the_client_keeps_the_documented_defaults(tmp_path: Path) -> None:
    client = built_client(tmp_path)

    assert timeouts(client) == {
        "connect_timeout": timedelta(seconds=5),
        "read_timeout": timedelta(seconds=30),
        "timeout": timedelta(minutes=5),
    }
    retry = client.retry_config or {}
    assert retry.get("retry_timeout") == timedelta(seconds=30)
    assert retry.get("max_retries") == 3
