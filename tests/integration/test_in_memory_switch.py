"""`IN_MEMORY=true`, Konifer's switch for a throw-away server (spec 06 section 8).

It forces both stores to in-memory whatever the file says. konifer-edge's in-memory data store is
a throw-away embedded PostgreSQL in a temporary directory (under TMPDIR, `/app/tmp` in the image),
and its in-memory object store lives in the server process.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import stop_leftover_postgres
from tests.support.images import make_image
from tests.support.server import RunningServer


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Outside pytest's basetemp: as root, pgserver makes every parent of its directory traversable
    # by its own user, and pytest keeps basetemp at 0700.
    root = Path(tempfile.mkdtemp(prefix="konifer-in-memory-"))
    (root / "tmp").mkdir()
    root.chmod(0o755)
    (root / "tmp").chmod(0o1777)
    try:
        yield root
    finally:
        for pgdata in (root / "tmp").glob("konifer-edge-*/postgres"):
            stop_leftover_postgres(pgdata)
        shutil.rmtree(root, ignore_errors=True)


def test_in_memory_overrides_the_file_warns_and_serves(scratch: Path) -> None:
    config = scratch / "konifer.toml"
    # The file asks for a PostgreSQL server that does not exist and an S3 store: IN_MEMORY wins over both.
    config.write_text(
        '[data-store]\nprovider = "postgresql"\n'
        '[object-store]\nprovider = "s3"\n[object-store.s3]\nendpoint-url = "http://127.0.0.1:9"\n'
    )
    server = RunningServer(
        scratch / "data",
        config,
        # A database named by the environment is not used either: nothing may outlive the server.
        env={
            "IN_MEMORY": "true",
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
            "TMPDIR": str(scratch / "tmp"),
        },
        startup_timeout=120,
    )
    image = make_image("png", 30, 20)
    with server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        stored = client.post(
            "/assets/in-memory/one",
            files={"metadata": (None, b"{}", "application/json"), "asset": ("a.png", image, "image/png")},
        )
        assert stored.status_code == 201, stored.text
        fetched = client.get("/assets/in-memory/one/-/content")
        assert fetched.status_code == 200
        assert fetched.content == image
        # The throw-away database lives under TMPDIR, not in the data directory.
        assert list((scratch / "tmp").glob("konifer-edge-*/postgres"))
        assert not (scratch / "data" / "postgres").exists()
        logs = server.logs()
    assert "IN_MEMORY=true" in logs
    assert "lost when the server stops" in logs
