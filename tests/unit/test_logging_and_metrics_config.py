"""The `logging` and `metrics` sections, and the JSON line every logger writes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from konifer_edge.config import ConfigError, load_config
from konifer_edge.observability.logs import (
    ACCESS_FLUSH_SECONDS,
    ACCESS_LOGGER,
    JsonFormatter,
    LineBatch,
    fields,
    utc_time,
)
from konifer_edge.observability.request_log import AccessLine, record_fields


def test_defaults_are_info_and_metrics_on_the_main_port() -> None:
    config = load_config(None, {})
    assert config.logging.level == "info"
    assert (config.metrics.port, config.metrics.host) == (None, None)


def test_the_environment_overrides_both(tmp_path: Path) -> None:
    path = tmp_path / "konifer.toml"
    path.write_text('[logging]\nlevel = "debug"\n[metrics]\nport = 9000\n')
    config = load_config(path, {"LOG_LEVEL": "ERROR", "METRICS_PORT": "9464"})
    assert (config.logging.level, config.metrics.port) == ("error", 9464)


@pytest.mark.parametrize(
    ("text", "environ", "said"),
    [
        ('[logging]\nlevel = "verbose"\n', {}, "logging.level"),
        ("", {"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ("[metrics]\nport = 0\n", {}, "metrics.port"),
        ('[metrics]\nhost = "127.0.0.1"\n', {}, "needs metrics.port"),
        ("[metrics]\nunknown = 1\n", {}, "metrics.unknown"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, text: str, environ: dict[str, str], said: str) -> None:
    path = tmp_path / "konifer.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=said):
        load_config(path, environ)


class Extra(msgspec.Struct):
    status: int
    path: str


def record(message: str, *, extra: dict[str, object] | None = None, error: bool = False) -> logging.LogRecord:
    logger = logging.getLogger("konifer_edge.test")
    exc_info = None
    if error:
        try:
            raise ValueError("boom")
        except ValueError as caught:
            exc_info = (type(caught), caught, caught.__traceback__)
    made = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, (), exc_info, extra=extra)
    return made


def test_the_json_line_has_the_common_fields_first_then_the_records_own() -> None:
    line = JsonFormatter().format(record('say "hi"\n', extra=fields(Extra(status=200, path="/a"))))
    value = json.loads(line)
    assert list(value) == ["time", "level", "logger", "message", "status", "path"]
    assert value["message"] == 'say "hi"\n' and value["level"] == "warning" and value["status"] == 200
    assert "\n" not in line, "one line per record, whatever the message holds"


def test_a_traceback_is_a_field_of_the_same_line() -> None:
    line = JsonFormatter().format(record("failed", error=True))
    value = json.loads(line)
    assert "ValueError: boom" in value["exception"] and "\n" not in line


class Numbered(msgspec.Struct):
    n: int
    pad: str


def _written_by(batch_work: Callable[[LineBatch], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    with (tmp_path / "stderr").open("w") as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        batch_work(LineBatch())
    return (tmp_path / "stderr").read_bytes()


@pytest.mark.parametrize("timestamp", [0.0, 1_765_000_000.0, 1_765_000_000.0004, 1_765_000_000.9991, 1_765_000_059.5])
def test_the_cached_clock_writes_what_datetime_writes(timestamp: float) -> None:
    expected = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
    assert utc_time(timestamp) == expected
    assert utc_time(timestamp + 1) == datetime.fromtimestamp(timestamp + 1, UTC).isoformat(timespec="milliseconds")


def test_an_access_line_is_the_line_the_formatter_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = AccessLine(
        time=utc_time(1_765_000_000.25),
        level="info",
        logger=ACCESS_LOGGER,
        message='GET /a "b"\n 200',
        method="GET",
        path='/a "b"\n',
        route="fetch_content",
        status=200,
        duration_ms=1.5,
        cache="memory",
        bytes=10,
        request_id="abc",
    )
    logger = logging.getLogger(ACCESS_LOGGER)
    made = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "%s", (line.message,), None, extra=fields(record_fields(line))
    )
    made.created = 1_765_000_000.25
    written = _written_by(lambda batch: batch.add(line), tmp_path, monkeypatch)
    assert written == (JsonFormatter().format(made) + "\n").encode()
    assert written.count(b"\n") == 1


def test_lines_are_written_whole_in_batches_no_larger_than_a_pipe_takes_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[bytes] = []
    real_write = os.write

    def counting_write(descriptor: int, data: bytes | memoryview) -> int:
        writes.append(bytes(data))
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", counting_write)
    lines = [Numbered(n=n, pad="x" * (n % 300)) for n in range(600)]
    expected = b"".join(msgspec.json.encode(line) + b"\n" for line in lines)

    def one_at_a_time(batch: LineBatch) -> None:  # no event loop here: each line is written at once
        for line in lines:
            batch.add(line)

    assert _written_by(one_at_a_time, tmp_path, monkeypatch) == expected
    assert len(writes) == len(lines)
    writes.clear()

    def batched(batch: LineBatch) -> None:
        async def add_all() -> None:
            for line in lines:
                batch.add(line)
            await asyncio.sleep(ACCESS_FLUSH_SECONDS * 3)

        asyncio.run(add_all())

    assert _written_by(batched, tmp_path, monkeypatch) == expected
    assert 1 < len(writes) < len(lines) / 4
    assert max(len(piece) for piece in writes) <= select.PIPE_BUF
    assert all(piece.endswith(b"\n") for piece in writes)
