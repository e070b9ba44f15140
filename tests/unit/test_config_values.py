"""Value parsing and derived values: durations, sizes, Cache-Control headers, DSNs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from konifer_edge.config import CacheControlSettings, PostgresSettings, parse_duration
from konifer_edge.config.decode import format_duration, parse_byte_size, parse_pixel_count
from konifer_edge.config.load import build_config


class TestDurations:
    @pytest.mark.parametrize(
        ("written", "expected"),
        [
            ("30s", timedelta(seconds=30)),
            ("10m", timedelta(minutes=10)),
            ("24h", timedelta(hours=24)),
            ("7d", timedelta(days=7)),
            ("500ms", timedelta(milliseconds=500)),
            ("2w", timedelta(weeks=2)),
            (30, timedelta(seconds=30)),
            (1.5, timedelta(seconds=1.5)),
            ("45", timedelta(seconds=45)),
            ("1h 30m", timedelta(hours=1, minutes=30)),
            ("1h30m", timedelta(hours=1, minutes=30)),
            ("1.5h", timedelta(minutes=90)),
            ("30 minutes", timedelta(minutes=30)),
            ("1 hour", timedelta(hours=1)),
            ("2 days", timedelta(days=2)),
            (" 10 S ", timedelta(seconds=10)),
            ("PT30M", timedelta(minutes=30)),
            ("pt1h30m", timedelta(hours=1, minutes=30)),
            ("P1D", timedelta(days=1)),
            ("P1DT2H", timedelta(days=1, hours=2)),
            (timedelta(minutes=3), timedelta(minutes=3)),
        ],
    )
    def test_accepted_spellings(self, written: object, expected: timedelta) -> None:
        assert parse_duration(written) == expected

    @pytest.mark.parametrize(
        "written",
        ["", "abc", "10 parsecs", "1mo", "2 years", "-5s", -1, True, None, "1.5.2s", "P", "10m garbage"],
    )
    def test_refused(self, written: object) -> None:
        with pytest.raises(ValueError):
            parse_duration(written)

    @pytest.mark.parametrize(
        ("duration", "text"),
        [
            (timedelta(days=7), "7d"),
            (timedelta(minutes=90), "1h 30m"),
            (timedelta(milliseconds=1500), "1s 500ms"),
            (timedelta(0), "0s"),
        ],
    )
    def test_format_reads_back(self, duration: timedelta, text: str) -> None:
        assert format_duration(duration) == text
        assert parse_duration(text) == duration


class TestSizes:
    @pytest.mark.parametrize(
        ("written", "expected"),
        [
            (104857600, 104857600),
            ("104857600", 104857600),
            ("100MiB", 100 * 1024**2),
            ("100M", 100 * 1024**2),
            ("100MB", 100 * 1000**2),
            ("1.5 KiB", 1536),
            ("2G", 2 * 1024**3),
        ],
    )
    def test_byte_sizes(self, written: object, expected: int) -> None:
        assert parse_byte_size(written) == expected

    @pytest.mark.parametrize("written", ["lots", "10 parsecs", "1.5B", True, 1.0])
    def test_bad_byte_sizes(self, written: object) -> None:
        with pytest.raises(ValueError):
            parse_byte_size(written)

    @pytest.mark.parametrize(
        ("written", "expected"),
        [(20_000_000, 20_000_000), ("20MP", 20_000_000), ("1.5kp", 1500), ("1gp", 10**9), ("300", 300)],
    )
    def test_pixel_counts(self, written: object, expected: int) -> None:
        assert parse_pixel_count(written) == expected

    def test_sizes_in_the_file(self) -> None:
        config = build_config(
            {"source": {"url": {"max-bytes": "10MiB", "timeout": "2m"}, "multipart": {"max-bytes": 5}}}
        )

        assert config.source.url.max_bytes == 10 * 1024**2
        assert config.source.url.timeout == 120.0
        assert config.source.multipart.max_bytes == 5


class TestCacheControlHeader:
    def test_every_directive_in_a_fixed_order(self) -> None:
        settings = CacheControlSettings(
            enabled=True,
            max_age=60,
            s_maxage=600,
            visibility="public",
            revalidate="must-revalidate",
            stale_while_revalidate=30,
            stale_if_error=86400,
            immutable=True,
        )

        assert settings.header_value() == (
            "public, max-age=60, s-maxage=600, must-revalidate, "
            "stale-while-revalidate=30, stale-if-error=86400, immutable"
        )

    def test_only_the_configured_directives(self) -> None:
        assert CacheControlSettings(enabled=True, immutable=True).header_value() == "immutable"
        assert CacheControlSettings(enabled=True, visibility="private").header_value() == "private"

    def test_nothing_when_disabled_or_empty(self) -> None:
        assert CacheControlSettings(enabled=False, max_age=60).header_value() is None
        assert CacheControlSettings(enabled=True).header_value() is None

    def test_durations_in_the_file_become_seconds(self) -> None:
        config = build_config(
            {
                "paths": {
                    "/a": {
                        "cache-control": {
                            "enabled": "true",
                            "visibility": "PUBLIC",
                            "max-age": "365d",
                            "stale-while-revalidate": "1m",
                        }
                    }
                }
            }
        )

        header = config.paths.resolve("/a").cache_control.header_value()
        assert header == "public, max-age=31536000, stale-while-revalidate=60"


class TestDerivedValues:
    def test_dsn_from_parts_escapes_credentials(self) -> None:
        settings = PostgresSettings(
            host="db", port=6543, database="my db", user="a@b", password="p:w/d", ssl_mode="require"
        )

        assert settings.dsn() == "postgresql://a%40b:p%3Aw%2Fd@db:6543/my%20db?sslmode=require"

    def test_dsn_prefers_the_url_and_is_none_for_the_embedded_server(self) -> None:
        assert PostgresSettings(host="db", url="postgresql://x@y/z").dsn() == "postgresql://x@y/z"
        assert PostgresSettings().dsn() is None
        assert PostgresSettings(host="::1").dsn() == "postgresql://postgres@[::1]:5432/konifer"

    def test_plain_http_endpoints_allow_http_unless_told_otherwise(self) -> None:
        def s3(settings: dict[str, object]) -> tuple[bool, bool]:
            loaded = build_config({"object-store": {"s3": settings}}).object_store.s3
            return loaded.allow_http, loaded.force_path_style

        assert s3({"endpoint-url": "http://127.0.0.1:9000"}) == (True, False)
        assert s3({"endpoint-url": "https://s3.example.com"}) == (False, False)
        assert s3({"endpoint-url": "http://minio:9000", "allow-http": False, "force-path-style": "yes"}) == (
            False,
            True,
        )

    def test_public_url_loses_its_trailing_slash(self) -> None:
        config = build_config({"http": {"public-url": "https://img.example.com/base/"}})

        assert config.http.public_url == "https://img.example.com/base"

    def test_transformation_values_are_text_whichever_way_written(self) -> None:
        config = build_config(
            {
                "variant-profiles": {
                    "a": {"r": 180, "blur": 1.5, "q": 80.0, "pad-c": " #ffffff "},
                    "b": {"r": "180"},
                }
            }
        )

        assert config.variant_profiles["a"] == {"r": "180", "blur": "1.5", "q": "80", "pad-c": "#ffffff"}
        assert config.variant_profiles["b"] == {"r": "180"}


def test_compat_wire_chooses_the_metadata_spellings() -> None:
    assert build_config({}).compat.wire == "current"
    assert build_config({"compat": {"wire": "v0.2"}}).compat.wire == "v0.2"
