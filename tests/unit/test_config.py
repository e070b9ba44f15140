"""Loading configuration files: TOML and both HOCON forms, aliases, environment overrides."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from konifer_edge.config import Config, ConfigError, load_config

TOML = """
[http]
public-url = "https://img.example.com/"

[data-store.postgresql]
host = "db.internal"
user = "konifer"

[object-store]
provider = "s3"
[object-store.s3]
endpoint-url = "http://127.0.0.1:9000"
region = "auto"
force-path-style = true
read-timeout = "10s"

[source.url]
allowed-domains = ["Images.Example.com"]

[variant-generation]
workers = 2

[variant-profiles.thumbnail]
w = 128
fit = "fill"
r = 180
strip = ["exif", "xmp"]

[paths."/**"]
allowed-content-types = ["image/jpeg", "image/png"]
image.lqip = ["blurhash", "thumbhash"]

[paths."/users/*/profile-picture".transform]
eager-variants = ["thumbnail"]
expire.strategy = "ttl"
expire.ttl = "7d"

[paths."/users/**".cache-control]
enabled = true
visibility = "public"
max-age = 31536000
immutable = true

[paths."/private/**".return-format.redirect]
strategy = "presigned"
presigned.ttl = "10m"

[paths."/public/**".return-format.redirect]
strategy = "template"
template.string = "https://{bucket}.cdn.example.com/{key}"
"""

HOCON_MAP = """
http { public-url = "https://img.example.com/" }
data-store {
  postgresql { host = db.internal, user = konifer }
}
object-store {
  provider = s3
  s3 {
    endpoint-url = "http://127.0.0.1:9000"
    region = auto
    force-path-style = true
    read-timeout = 10 seconds
  }
}
source.url.allowed-domains = [Images.Example.com]
variant-generation { workers = 2 }
variant-profiles {
  thumbnail { w = 128, fit = fill, r = "180", strip = "exif,xmp" }
}
paths {
  "/**" {
    allowed-content-types = ["image/jpeg", "image/png"]
    image { lqip = [blurhash, thumbhash] }
  }
  "/users/*/profile-picture" {
    transform {
      eager-variants = [thumbnail]
      expire { strategy = ttl, ttl = 7d }
    }
  }
  "/users/**" {
    cache-control { enabled = true, visibility = public, max-age = 31536000, immutable = true }
  }
  "/private/**" { return-format.redirect { strategy = presigned, presigned.ttl = 10 minutes } }
  "/public/**" {
    return-format.redirect {
      strategy = template
      template.string = "https://{bucket}.cdn.example.com/{key}"
    }
  }
}
"""

# Konifer's older layout: a list of entries, and the older key placements.
HOCON_LIST = """
http.public-url = "https://img.example.com/"
data-store.postgresql { host = db.internal, user = konifer }
object-store {
  provider = s3
  s3 { endpoint-url = "http://127.0.0.1:9000", region = auto, force-path-style = true, read-timeout = 10s }
}
source { url { allowed-domains = [images.example.com] } }
variant-generation.workers = 2
variant-profiles = [
  { name = thumbnail, w = 128, fit = fill, r = 180, strip = [exif, xmp] }
]
paths = [
  {
    path = "/**"
    allowed-content-types = ["image/jpeg", "image/png"]
    lqip = [blurhash, thumbhash]
  }
  {
    path = "/users/*/profile-picture"
    eager-variants = [thumbnail]
    transform.expire { strategy = ttl, ttl = "168h" }
  }
  {
    path = "/users/**"
    cache-control { enabled = true, visibility = public, max-age = 365d, immutable = true }
  }
  {
    path = "/private/**"
    object-store.redirect { strategy = PRESIGNED, presigned { ttl = "PT10M" } }
  }
  {
    path = "/public/**"
    return-format.redirect { strategy = template, template.string = "https://{bucket}.cdn.example.com/{key}" }
  }
]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_text(tmp_path: Path, name: str, text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, name, text), environ or {})


class TestFormats:
    def test_toml_and_both_hocon_forms_give_equal_settings(self, tmp_path: Path) -> None:
        from_toml = load_text(tmp_path, "konifer.toml", TOML)
        from_map = load_text(tmp_path, "konifer.conf", HOCON_MAP)
        from_list = load_text(tmp_path, "old.hocon", HOCON_LIST)

        assert from_toml == from_map
        assert from_toml == from_list
        for path in ("/users/1/profile-picture", "/users/1/avatar", "/private/x", "/public/y", "/other"):
            assert from_toml.paths.resolve(path) == from_list.paths.resolve(path)

    def test_loaded_values(self, tmp_path: Path) -> None:
        config = load_text(tmp_path, "konifer.toml", TOML)

        assert config.http.public_url == "https://img.example.com"
        assert config.data_store.postgresql.dsn() == "postgresql://konifer@db.internal:5432/konifer"
        assert config.object_store.s3.allow_http is True
        assert config.object_store.s3.read_timeout == timedelta(seconds=10)
        assert config.source.url.allowed_domains == ("images.example.com",)
        assert config.variant_profiles == {"thumbnail": {"w": "128", "fit": "fill", "r": "180", "strip": "exif,xmp"}}

        profile_picture = config.paths.resolve("/users/7/profile-picture")
        assert profile_picture.transform.eager_variants == ("thumbnail",)
        assert profile_picture.transform.expire_strategy == "ttl"
        assert profile_picture.transform.expire_ttl == timedelta(days=7)
        assert profile_picture.image.lqip == ("blurhash", "thumbhash")
        # /users/** is a sibling branch of /users/*/profile-picture, not its parent.
        assert profile_picture.cache_control.enabled is False

        avatar = config.paths.resolve("/users/7/avatar")
        assert avatar.cache_control.header_value() == "public, max-age=31536000, immutable"

        assert config.paths.resolve("/private/a").return_format.redirect.presigned_ttl == timedelta(minutes=10)
        template = config.paths.resolve("/public/a").return_format.redirect
        assert (template.strategy, template.template_string) == (
            "template",
            "https://{bucket}.cdn.example.com/{key}",
        )
        assert config.paths.resolve("/other").return_format.redirect.strategy is None

    def test_ip_literals_in_allowed_domains(self, tmp_path: Path) -> None:
        # A Konifer configuration writes IPv6 hosts in brackets; bare IPv6 and IPv4 are accepted too.
        hocon = 'source.url.allowed-domains = ["[::1]", "::1", "[FD00::2]", "127.0.0.1", images.example.com]'
        config = load_text(tmp_path, "konifer.conf", hocon)
        assert config.source.url.allowed_domains == ("::1", "fd00::2", "127.0.0.1", "images.example.com")

    @pytest.mark.parametrize("host", ["[127.0.0.1]", "[::1", "::1]", "[not-an-address]", "[::1]:8080"])
    def test_malformed_ip_literals_in_allowed_domains_are_refused(self, tmp_path: Path, host: str) -> None:
        with pytest.raises(ConfigError, match="not a host name"):
            load_text(tmp_path, "konifer.conf", f'source.url.allowed-domains = ["{host}"]')

    def test_no_file_means_defaults(self) -> None:
        config = load_config(None, {})

        assert config == Config()
        assert config.data_store.provider == "postgresql"
        assert config.data_store.postgresql.dsn() is None
        assert config.object_store.provider == "filesystem"
        assert config.source.url.max_bytes == 104857600
        root = config.paths.resolve("/anything")
        assert (root.pattern, root.object_store.bucket, root.transform.on_demand_mode) == (
            "/**",
            "assets",
            "enabled",
        )
        assert root.return_format.redirect.presigned_ttl == timedelta(minutes=30)

    def test_konifer_integration_style_file_loads(self, tmp_path: Path) -> None:
        config = load_text(
            tmp_path,
            "konifer.conf",
            """
            data-store {
              provider = postgresql
              postgresql { host = postgres, port = 5432, user = app, database = konifer }
            }
            object-store {
              provider = s3
              s3 {
                endpoint-url = "http://minio:9000"
                region = "auto"
                # Static credentials
                access-key = "minio_admin"
                force-path-style = true
              }
            }
            variant-profiles { thumbnail-200 { w = 256, r = auto } }
            paths { "/**" { object-store { bucket = assets } } }
            """,
        )

        assert config.data_store.postgresql.dsn() == "postgresql://app@postgres:5432/konifer"
        assert config.object_store.s3.access_key == "minio_admin"
        assert config.variant_profiles["thumbnail-200"] == {"w": "256", "r": "auto"}

    def test_current_konifer_path_keys_load(self, tmp_path: Path) -> None:
        config = load_text(
            tmp_path,
            "konifer.conf",
            """
            variant-profiles { small { w = 100 } }
            paths {
              "/uploads/**" {
                lqip = [thumbhash]
                limits {
                  max-width = 4000, max-height = 3000, max-pixels = 12MP
                  max-pages = 5, max-pixels-per-page = 2MP
                }
                transform {
                  on-demand-variant.mode = profile_only
                  limits { max-width = 2000, max-pixels = "4MP" }
                  retention {
                    expire { strategy = idle, ttl = 24h }
                    cache { max-variants = 8, access-score-half-life = 30m }
                  }
                  preprocessing {
                    enabled = true
                    image { max-width = 1024, max-height = 1024, format = webp, fit = fit, q = 80 }
                  }
                }
                return-format.redirect { strategy = none, presigned { enabled = false, ttl = 30m } }
              }
            }
            """,
        )

        settings = config.paths.resolve("/uploads/a")
        assert settings.image.lqip == ("thumbhash",)
        assert (settings.limits.max_pixels, settings.limits.max_pixels_per_page) == (12_000_000, 2_000_000)
        assert settings.transform.on_demand_mode == "profile_only"
        assert (settings.transform.limits.max_width, settings.transform.limits.max_pixels) == (
            2000,
            4_000_000,
        )
        assert (settings.transform.expire_strategy, settings.transform.expire_ttl) == (
            "idle",
            timedelta(hours=24),
        )
        assert settings.transform.variant_cache.max_variants == 8
        assert settings.transform.preprocessing_enabled is True
        assert settings.transform.preprocessing.params == {"format": "webp", "fit": "fit", "q": "80"}
        assert (settings.transform.preprocessing.max_width, settings.transform.preprocessing.max_height) == (
            1024,
            1024,
        )
        assert settings.return_format.redirect.strategy == "none"

    def test_patterns_with_dots_stay_one_key(self, tmp_path: Path) -> None:
        hocon = load_text(tmp_path, "c.conf", 'paths { "/images/v1.2/**" { bucket = versioned } }')
        toml = load_text(tmp_path, "c.toml", '[paths."/images/v1.2/**"]\nbucket = "versioned"\n')

        assert hocon == toml
        assert hocon.paths.resolve("/images/v1.2/a").object_store.bucket == "versioned"
        assert hocon.paths.resolve("/images/v1/2/a").object_store.bucket == "assets"

    def test_path_may_be_given_as_text(self, tmp_path: Path) -> None:
        path = write(tmp_path, "c.toml", '[http]\npublic-url = "https://a.example"\n')

        assert load_config(str(path), {}).http.public_url == "https://a.example"

    def test_unknown_file_suffix_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="unknown configuration format"):
            load_config(write(tmp_path, "konifer.yaml", "a: 1"), {})

    def test_missing_file(self, tmp_path: Path) -> None:
        for name in ("absent.toml", "absent.conf"):
            with pytest.raises(ConfigError, match="cannot read the file") as raised:
                load_config(tmp_path / name, {})
            assert raised.value.key == str(tmp_path / name)

    def test_syntax_errors_name_the_file_and_position(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="not valid TOML"):
            load_text(tmp_path, "bad.toml", "[http\npublic-url = 1")
        with pytest.raises(ConfigError, match=r"not valid HOCON at line 2, column \d+"):
            load_text(tmp_path, "bad.conf", 'http {\n  "/a".b = 1 }')


class TestAliases:
    @pytest.mark.parametrize(
        ("written", "canonical"),
        [
            ({"bucket": "users"}, {"object-store": {"bucket": "users"}}),
            ({"lqip": ["blurhash"]}, {"image": {"lqip": ["blurhash"]}}),
            ({"eager-variants": ["small"]}, {"transform": {"eager-variants": ["small"]}}),
            (
                {"preprocessing": {"enabled": True, "image": {"max-width": 10}}},
                {"transform": {"preprocessing": {"enabled": True, "image": {"max-width": 10}}}},
            ),
            (
                {"object-store": {"bucket": "users", "redirect": {"strategy": "presigned"}}},
                {
                    "object-store": {"bucket": "users"},
                    "return-format": {"redirect": {"strategy": "presigned"}},
                },
            ),
            (
                {"transform": {"retention": {"expire": {"strategy": "ttl", "ttl": "1h"}}}},
                {"transform": {"expire": {"strategy": "ttl", "ttl": "1h"}}},
            ),
        ],
    )
    def test_older_placements_read_as_the_canonical_key(
        self, written: dict[str, object], canonical: dict[str, object]
    ) -> None:
        from konifer_edge.config.load import build_config

        profiles = {"variant-profiles": {"small": {"w": 10}}}
        from_alias = build_config({**profiles, "paths": {"/users": written}})
        from_canonical = build_config({**profiles, "paths": {"/users": canonical}})

        assert from_alias.paths.resolve("/users") == from_canonical.paths.resolve("/users")
        assert from_alias.paths.resolve("/users") != from_alias.paths.resolve("/other")

    def test_alias_and_canonical_key_together_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as raised:
            load_text(tmp_path, "c.toml", '[paths."/a"]\nbucket = "one"\nobject-store.bucket = "two"\n')

        assert raised.value.key == "paths./a.bucket"
        assert "object-store.bucket" in raised.value.message

    def test_alias_merges_with_disjoint_canonical_keys(self, tmp_path: Path) -> None:
        config = load_text(
            tmp_path,
            "c.toml",
            '[paths."/a"]\npreprocessing.enabled = true\ntransform.preprocessing.image.w = 10\n',
        )

        transform = config.paths.resolve("/a").transform
        assert (transform.preprocessing_enabled, transform.preprocessing.params) == (True, {"w": "10"})

    def test_errors_in_aliased_values_name_the_key_as_written(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as raised:
            load_text(tmp_path, "c.conf", 'paths = [ { path = "/a", bucket = "Not_A_Bucket" } ]')

        assert raised.value.key == "paths./a.bucket"


class TestEnvironment:
    def test_secrets_and_endpoints_override_the_file(self, tmp_path: Path) -> None:
        environ = {
            "DATABASE_URL": "postgresql://u:p@db:5432/app",
            "PG_USER": "env-user",
            "PG_PASSWORD": "env-password",
            "S3_ACCESS_KEY": "AK",
            "S3_SECRET_KEY": "SK",
            "S3_ENDPOINT_URL": "https://s3.example.com",
            "URL_SIGNING_SECRET_KEY": "signing",
            "REDIS_URL": "redis://cache:6379/0",
        }
        text = '[data-store.postgresql]\nuser = "file-user"\n[object-store.s3]\nsecret-key = "file"\n'
        config = load_text(tmp_path, "c.toml", text, environ)

        postgresql = config.data_store.postgresql
        assert (postgresql.url, postgresql.user, postgresql.password) == (
            "postgresql://u:p@db:5432/app",
            "env-user",
            "env-password",
        )
        assert postgresql.dsn() == "postgresql://u:p@db:5432/app"
        s3 = config.object_store.s3
        assert (s3.access_key, s3.secret_key, s3.endpoint_url, s3.allow_http) == (
            "AK",
            "SK",
            "https://s3.example.com",
            False,
        )
        assert config.url_signing.secret_key == "signing"
        assert config.cache.redis_url == "redis://cache:6379/0"

    def test_signing_key_from_the_environment_satisfies_enabled_signing(self, tmp_path: Path) -> None:
        text = "[url-signing]\nenabled = true\n"

        with pytest.raises(ConfigError):
            load_text(tmp_path, "c.toml", text, {})
        config = load_text(tmp_path, "c.toml", text, {"URL_SIGNING_SECRET_KEY": "k"})
        assert (config.url_signing.enabled, config.url_signing.secret_key) == (True, "k")

    def test_empty_variables_are_ignored(self) -> None:
        config = load_config(None, {"PG_USER": "", "REDIS_URL": ""})

        assert (config.data_store.postgresql.user, config.cache.redis_url) == ("postgres", None)

    def test_in_memory_switches_both_stores(self, tmp_path: Path) -> None:
        config = load_text(tmp_path, "c.toml", '[object-store]\nprovider = "s3"\n', {"IN_MEMORY": "true"})

        assert (config.data_store.provider, config.object_store.provider) == ("in-memory", "in-memory")
        assert load_config(None, {"IN_MEMORY": "false"}).object_store.provider == "filesystem"
        with pytest.raises(ConfigError) as raised:
            load_config(None, {"IN_MEMORY": "maybe"})
        assert raised.value.key == "IN_MEMORY"

    def test_a_bad_value_from_the_environment_says_where_it_came_from(self) -> None:
        with pytest.raises(ConfigError) as raised:
            load_config(None, {"DATABASE_URL": "mysql://db/app"})

        assert raised.value.key == "data-store.postgresql.url"
        assert "DATABASE_URL" in raised.value.message

    def test_process_environment_is_the_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REDIS_URL", "redis://from-process:6379")

        assert load_config(None).cache.redis_url == "redis://from-process:6379"
