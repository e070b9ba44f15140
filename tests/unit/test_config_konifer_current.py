"""Configuration that Konifer v0.10 and its documentation write (spec 06 sections 8 and 9)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from konifer_edge.config import ConfigError, load_config
from konifer_edge.config.load import IN_MEMORY_WARNING, build_config


def error_for(tree: dict[str, object]) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        build_config(tree)
    return raised.value


# --- IN_MEMORY ---------------------------------------------------------------------------------


def test_in_memory_forces_both_providers_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "konifer.toml"
    path.write_text('[data-store]\nprovider = "postgresql"\n[object-store]\nprovider = "s3"\n')
    config = load_config(path, {"IN_MEMORY": "true"})
    assert config.data_store.provider == "in-memory"
    assert config.object_store.provider == "in-memory"
    assert config.warnings[0] == IN_MEMORY_WARNING
    assert "IN_MEMORY" in IN_MEMORY_WARNING


def test_in_memory_uses_no_configured_database(tmp_path: Path) -> None:
    path = tmp_path / "konifer.toml"
    path.write_text('[data-store.postgresql]\nhost = "db.internal"\n')
    config = load_config(path, {"IN_MEMORY": "true", "DATABASE_URL": "postgresql://u@db/k"})
    assert config.data_store.postgresql.dsn() is None  # the throw-away embedded PostgreSQL


def test_without_in_memory_nothing_is_forced_or_warned(tmp_path: Path) -> None:
    config = load_config(None, {"IN_MEMORY": "false"})
    assert config.data_store.provider == "postgresql"
    assert config.object_store.provider == "filesystem"
    assert config.warnings == ()


# --- data-store.postgresql.ssl-mode --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"])
def test_every_libpq_ssl_mode_reaches_the_connection_string(mode: str) -> None:
    config = build_config({"data-store": {"postgresql": {"host": "db", "ssl-mode": mode}}})
    assert config.data_store.postgresql.dsn() == f"postgresql://postgres@db:5432/konifer?sslmode={mode}"


def test_ssl_mode_defaults_to_libpq_prefer() -> None:
    # Nothing written: asyncpg applies libpq's default, prefer, which is Konifer's default too.
    dsn = build_config({"data-store": {"postgresql": {"host": "db"}}}).data_store.postgresql.dsn()
    assert dsn is not None and "sslmode" not in dsn


def test_ssl_mode_joins_a_url_but_never_overrides_the_urls_own() -> None:
    joined = build_config(
        {"data-store": {"postgresql": {"url": "postgresql://u@db/k?application_name=x", "ssl-mode": "require"}}}
    )
    assert joined.data_store.postgresql.dsn() == "postgresql://u@db/k?application_name=x&sslmode=require"
    kept = build_config(
        {"data-store": {"postgresql": {"url": "postgresql://u@db/k?sslmode=disable", "ssl-mode": "require"}}}
    )
    assert kept.data_store.postgresql.dsn() == "postgresql://u@db/k?sslmode=disable"


def test_an_unknown_ssl_mode_is_refused_by_key() -> None:
    error = error_for({"data-store": {"postgresql": {"ssl-mode": "always"}}})
    assert error.key == "data-store.postgresql.ssl-mode"
    assert "verify-full" in error.message


# --- variant-generation.synchronous-priority -----------------------------------------------------


def test_synchronous_priority_defaults_to_80_and_takes_1_to_99() -> None:
    assert build_config({}).variant_generation.synchronous_priority == 80
    for value in (1, 99):
        settings = build_config({"variant-generation": {"synchronous-priority": value}}).variant_generation
        assert settings.synchronous_priority == value
    for value in (0, 100):
        error = error_for({"variant-generation": {"synchronous-priority": value}})
        assert error.key == "variant-generation.synchronous-priority"


# --- delivery.strategy -----------------------------------------------------------------------------


def test_delivery_strategy_is_the_redirect_strategy() -> None:
    config = build_config(
        {
            "paths": {
                "/p/**": {"delivery": {"strategy": "presigned", "presigned": {"ttl": "5m"}}},
                "/t/**": {"delivery": {"strategy": "template", "template": {"string": "https://{bucket}.x/{key}"}}},
                "/s/**": {"delivery": {"strategy": "service"}},
            }
        }
    )
    presigned = config.paths.resolve("/p/a").return_format.redirect
    assert presigned.strategy == "presigned" and presigned.presigned_ttl == timedelta(minutes=5)
    template = config.paths.resolve("/t/a").return_format.redirect
    assert template.strategy == "template" and template.template_string == "https://{bucket}.x/{key}"
    assert config.paths.resolve("/s/a").return_format.redirect.strategy is None


def test_delivery_service_overrides_an_inherited_strategy() -> None:
    config = build_config(
        {
            "paths": {
                "/a/**": {"return-format": {"redirect": {"strategy": "presigned"}}},
                "/a/b/**": {"delivery": {"strategy": "service"}},
            }
        }
    )
    assert config.paths.resolve("/a/x").return_format.redirect.strategy == "presigned"
    assert config.paths.resolve("/a/b/x").return_format.redirect.strategy is None


def test_delivery_and_redirect_strategy_that_disagree_are_refused_naming_both() -> None:
    error = error_for(
        {
            "paths": {
                "/**": {
                    "delivery": {"strategy": "presigned"},
                    "return-format": {"redirect": {"strategy": "template", "template": {"string": "https://x/{key}"}}},
                }
            }
        }
    )
    assert error.key == "paths./**.delivery"
    assert "return-format.redirect" in error.message


def test_delivery_and_redirect_strategy_that_agree_load() -> None:
    config = build_config(
        {
            "paths": {
                "/**": {
                    "delivery": {"strategy": "presigned"},
                    "return-format": {"redirect": {"strategy": "presigned"}},
                }
            }
        }
    )
    assert config.paths.resolve("/x").return_format.redirect.strategy == "presigned"


def test_an_unknown_delivery_strategy_is_refused_under_its_own_key() -> None:
    error = error_for({"paths": {"/**": {"delivery": {"strategy": "cdn"}}}})
    assert error.key == "paths./**.delivery.strategy"
    assert "service" in error.message


# --- the documentation's quirks ----------------------------------------------------------------------


def test_mime_types_name_formats_in_profiles_and_preprocessing() -> None:
    config = build_config(
        {
            "variant-profiles": {"small": {"w": 100, "format": "image/webp"}},
            "paths": {
                "/**": {
                    "transform": {"preprocessing": {"enabled": True, "image": {"format": "image/avif"}}},
                }
            },
        }
    )
    assert config.variant_profiles["small"]["format"] == "webp"
    assert config.paths.resolve("/x").transform.preprocessing.params["format"] == "avif"


def test_an_unsupported_mime_type_is_still_refused_by_key() -> None:
    error = error_for({"variant-profiles": {"small": {"format": "image/bmp"}}})
    assert error.key == "variant-profiles.small.format"
    assert "image/bmp" in error.message


@pytest.mark.parametrize("spelling", ["transform", "top-level"])
def test_max_height_outside_image_loads_with_a_warning_and_is_not_applied(spelling: str) -> None:
    preprocessing = {"enabled": True, "max-height": 300, "image": {"format": "png"}}
    settings = (
        {"transform": {"preprocessing": preprocessing}} if spelling == "transform" else {"preprocessing": preprocessing}
    )
    config = build_config({"paths": {"/docs/**": settings}})
    applied = config.paths.resolve("/docs/x").transform.preprocessing
    assert applied.max_height is None and applied.params == {"format": "png"}
    assert len(config.warnings) == 1
    assert "paths./docs/**.transform.preprocessing.max-height" in config.warnings[0]
    assert "image.max-height" in config.warnings[0]


def test_max_height_inside_image_applies_without_a_warning() -> None:
    config = build_config(
        {"paths": {"/**": {"transform": {"preprocessing": {"enabled": True, "image": {"max-height": 300}}}}}}
    )
    assert config.paths.resolve("/x").transform.preprocessing.max_height == 300
    assert config.warnings == ()


def test_fit_cover_is_refused_naming_cover() -> None:
    error = error_for({"variant-profiles": {"hero": {"w": 100, "h": 100, "fit": "cover"}}})
    assert error.key == "variant-profiles.hero.fit"
    assert "'cover'" in error.message


def test_the_region_auto_of_cloudflare_r2_is_valid() -> None:
    config = build_config(
        {
            "object-store": {
                "provider": "s3",
                "s3": {"endpoint-url": "https://acct.r2.cloudflarestorage.com", "region": "auto"},
            }
        }
    )
    assert config.object_store.s3.region == "auto"


# --- container paths -----------------------------------------------------------------------------


def test_a_config_file_where_konifers_image_mounts_it_is_used_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from konifer_edge import cli
    from konifer_edge.cli import common

    mounted = tmp_path / "app" / "config" / "konifer.conf"
    monkeypatch.delenv("KONIFER_EDGE_CONFIG", raising=False)
    monkeypatch.setattr(common, "CONTAINER_CONFIG_FILES", (mounted,))
    assert cli.build_parser().parse_args(["serve"]).config is None
    mounted.parent.mkdir(parents=True)
    mounted.write_text("http { }\n")
    assert cli.build_parser().parse_args(["serve"]).config == mounted
    monkeypatch.setenv("KONIFER_EDGE_CONFIG", str(tmp_path / "other.toml"))
    assert cli.build_parser().parse_args(["serve"]).config == tmp_path / "other.toml"


def test_the_image_reads_app_config_and_keeps_temporary_files_in_app_tmp() -> None:
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    assert "TMPDIR=/app/tmp" in dockerfile
    assert "/app/tmp" in dockerfile.split("install -d -o 10001 -g 10001 -m 0700", 1)[1].split("\n", 1)[0]
    assert "/app/config" in dockerfile
    from konifer_edge.cli.common import CONTAINER_CONFIG_FILES

    assert Path("/app/config/konifer.conf") in CONTAINER_CONFIG_FILES


# --- allowed-domains with IPv6 literals ------------------------------------------------------------


def test_ipv6_literals_are_allowed_domains_bracketed_or_bare() -> None:
    config = build_config({"source": {"url": {"allowed-domains": ["[::1]", "0:0:0:0:0:0:0:2", "Images.Example.com"]}}})
    assert config.source.url.allowed_domains == ("::1", "::2", "images.example.com")


@pytest.mark.parametrize("written", ["[::1", "[images.example.com]", "::g", "http://[::1]/"])
def test_a_broken_ipv6_literal_is_refused_by_key(written: str) -> None:
    error = error_for({"source": {"url": {"allowed-domains": [written]}}})
    assert error.key == "source.url.allowed-domains"
