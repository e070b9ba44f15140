"""The `logging` and `metrics` sections, and the JSON line every logger writes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import msgspec
import pytest

from konifer_edge.config import ConfigError, load_config
from konifer_edge.observability.logs import JsonFormatter, fields


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
