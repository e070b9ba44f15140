"""Every invalid setting fails at start-up with a ConfigError naming its dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from konifer_edge.config import ConfigError, load_config
from konifer_edge.config.load import build_config

PROFILES = {"variant-profiles": {"thumbnail": {"w": 128}}}


def error_for(tree: dict[str, object]) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        build_config(tree)
    return raised.value


def at_path(pattern: str, settings: dict[str, object]) -> dict[str, object]:
    return {**PROFILES, "paths": {pattern: settings}}


@pytest.mark.parametrize(
    ("tree", "key", "message"),
    [
        pytest.param({"objectstore": {}}, "objectstore", "did you mean 'object-store'", id="unknown-top-level"),
        pytest.param({"http": {"public-uri": "https://a"}}, "http.public-uri", "unknown key", id="unknown-nested"),
        pytest.param({"compat": {"wire": "v0.10"}}, "compat.wire", "v0.2", id="unknown-wire-spelling"),
        pytest.param(
            at_path("/users/**", {"cache-control": {"max-ag": 5}}),
            "paths./users/**.cache-control.max-ag",
            "did you mean 'max-age'",
            id="unknown-path-key",
        ),
        pytest.param(
            {"variant-profiles": {"thumb": {"width": 100}}},
            "variant-profiles.thumb.width",
            "not a transformation key",
            id="unknown-transformation-key",
        ),
        pytest.param(
            at_path("/a", {"transform": {"preprocessing": {"image": {"max-depth": 1}}}}),
            "paths./a.transform.preprocessing.image.max-depth",
            "not a transformation key",
            id="unknown-preprocessing-key",
        ),
        pytest.param(
            {"data-store": {"provider": "mysql"}},
            "data-store.provider",
            "expected one of 'postgresql', 'in-memory', got 'mysql'",
            id="bad-enum",
        ),
        pytest.param(
            at_path("/**", {"return-format": {"redirect": {"strategy": "redirect"}}}),
            "paths./**.return-format.redirect.strategy",
            "'redirect'",
            id="bad-path-enum",
        ),
        pytest.param(
            at_path("/a", {"image": {"lqip": ["blurhash", "jpeg"]}}),
            "paths./a.image.lqip",
            "'jpeg'",
            id="bad-lqip",
        ),
        pytest.param(
            {"data-store": {"postgresql": {"port": "abc"}}},
            "data-store.postgresql.port",
            "expected a whole number, got 'abc'",
            id="wrong-type",
        ),
        pytest.param(
            {"data-store": {"postgresql": {"port": 70000}}},
            "data-store.postgresql.port",
            "at most 65535",
            id="port-range",
        ),
        pytest.param(
            {"object-store": "s3"},
            "object-store",
            "expected an object",
            id="section-not-an-object",
        ),
        pytest.param(
            at_path("/users/**", {"cache-control": {"enabled": True, "max-age": -1}}),
            "paths./users/**.cache-control.max-age",
            "at least 0, got -1",
            id="negative-max-age",
        ),
        pytest.param(
            at_path("/a", {"cache-control": {"enabled": "sometimes"}}),
            "paths./a.cache-control.enabled",
            "expected true or false",
            id="bad-boolean",
        ),
        pytest.param(
            at_path(
                "/private/**",
                {"return-format": {"redirect": {"strategy": "presigned", "presigned": {"ttl": "8d"}}}},
            ),
            "paths./private/**.return-format.redirect.presigned.ttl",
            "at most 7d, got '8d'",
            id="presigned-ttl-over-7-days",
        ),
        pytest.param(
            at_path("/a", {"return-format": {"redirect": {"presigned": {"ttl": "0s"}}}}),
            "paths./a.return-format.redirect.presigned.ttl",
            "longer than zero",
            id="presigned-ttl-zero",
        ),
        pytest.param(
            at_path(
                "/a",
                {
                    "return-format": {
                        "redirect": {"strategy": "template", "template": {"string": "javascript:alert(1)"}}
                    }
                },
            ),
            "paths./a.return-format.redirect.template.string",
            "javascript:",
            id="javascript-template",
        ),
        pytest.param(
            at_path("/a", {"return-format": {"redirect": {"template": {"string": "  VBScript:msgbox"}}}}),
            "paths./a.return-format.redirect.template.string",
            "javascript:, vbscript: or data:",
            id="vbscript-template-any-case",
        ),
        pytest.param(
            at_path("/a", {"return-format": {"redirect": {"template": {"string": "Data:text/html,x"}}}}),
            "paths./a.return-format.redirect.template.string",
            "data:",
            id="data-template",
        ),
        pytest.param(
            at_path("/a", {"return-format": {"redirect": {"template": {"string": "java\tscript:alert(1)"}}}}),
            "paths./a.return-format.redirect.template.string",
            "javascript:",
            id="javascript-template-with-tab",
        ),
        pytest.param(
            at_path("/a", {"return-format": {"redirect": {"template": {"string": "https://x/{path}"}}}}),
            "paths./a.return-format.redirect.template.string",
            "unknown placeholder {path}",
            id="unknown-placeholder",
        ),
        pytest.param(
            at_path("/a", {"return-format": {"redirect": {"template": {"string": "https://x/{key"}}}}),
            "paths./a.return-format.redirect.template.string",
            "unbalanced",
            id="unbalanced-placeholder",
        ),
        pytest.param(
            at_path("/a", {"return-format": {"redirect": {"strategy": "template"}}}),
            "paths./a.return-format.redirect.template.string",
            "required when the redirect strategy is 'template'",
            id="template-without-string",
        ),
        pytest.param(
            at_path("/users/*", {"transform": {"eager-variants": ["thumbnail", "hero"]}}),
            "paths./users/*.transform.eager-variants",
            "'hero' is not a profile in variant-profiles (defined: thumbnail)",
            id="unknown-eager-profile",
        ),
        pytest.param(
            at_path("/a", {"transform": {"expire": {"strategy": "idle"}}}),
            "paths./a.transform.expire.ttl",
            "required when the expire strategy is 'idle'",
            id="expire-without-ttl",
        ),
        pytest.param(
            at_path("/a", {"transform": {"expire": {"strategy": "ttl", "ttl": "1mo"}}}),
            "paths./a.transform.expire.ttl",
            "months and years have no fixed length",
            id="calendar-ttl",
        ),
        pytest.param(
            at_path("/a", {"allowed-content-types": ["image/jpeg", "image/tiff"]}),
            "paths./a.allowed-content-types",
            "'image/tiff' is not a supported content type",
            id="unsupported-content-type",
        ),
        pytest.param(
            at_path("/a", {"object-store": {"bucket": "My_Bucket"}}),
            "paths./a.object-store.bucket",
            "not a valid bucket name",
            id="bad-bucket",
        ),
        pytest.param(
            at_path("/uploads/**", {"upload-ruleset": {"default": "maybe"}}),
            "paths./uploads/**.upload-ruleset.default",
            "expected one of 'accept', 'reject'",
            id="upload-ruleset-bad-default",
        ),
        pytest.param(
            {"rule-definitions": {"landscape": {"prompts": ["a canyon"]}}},
            "rule-definitions.landscape.threshold",
            "needs a threshold",
            id="rule-definition-without-threshold",
        ),
        pytest.param({"upload-ruleset": {}}, "upload-ruleset", "unknown key", id="upload-ruleset-top-level"),
        pytest.param(
            {"url-signing": {"enabled": True}},
            "url-signing.secret-key",
            "required when url-signing is enabled",
            id="signing-without-key",
        ),
        pytest.param(
            {
                "url-signing": {"enabled": True, "secret-key": "k"},
                "paths": {"/a": {"url-signing": {"algorithm": "md5"}}},
            },
            "paths./a.url-signing.algorithm",
            "'md5'",
            id="bad-per-path-signing",
        ),
        pytest.param(
            {"url-signing": {"algorithm": "hmac_sha1"}},
            "url-signing.algorithm",
            "'hmac_sha1'",
            id="bad-algorithm",
        ),
        pytest.param(
            {"http": {"public-url": "img.example.com"}},
            "http.public-url",
            "expected a URL starting with http:// or https://",
            id="public-url-without-scheme",
        ),
        pytest.param(
            {"source": {"url": {"allowed-domains": ["https://images.example.com/"]}}},
            "source.url.allowed-domains",
            "not a host name",
            id="domain-with-scheme",
        ),
        pytest.param(
            {"source": {"multipart": {"max-bytes": 0}}},
            "source.multipart.max-bytes",
            "at least 1",
            id="zero-max-bytes",
        ),
        pytest.param(
            {"variant-generation": {"synchronous-priority": 100}},
            "variant-generation.synchronous-priority",
            "at most 99",
            id="priority-range",
        ),
        pytest.param(
            {"variant-generation": {"workers": 0}},
            "variant-generation.workers",
            "at least 1",
            id="no-workers",
        ),
        pytest.param(
            {"variant-generation": {"decode-workers": 0}},
            "variant-generation.decode-workers",
            "at least 1",
            id="no-decode-workers",
        ),
        pytest.param(
            {"object-store": {"s3": {"read-timeout": "0s"}}},
            "object-store.s3.read-timeout",
            "must be longer than zero",
            id="s3-read-timeout-zero",
        ),
        pytest.param(
            {"object-store": {"s3": {"connect-timeout": "soon"}}},
            "object-store.s3.connect-timeout",
            "'soon'",
            id="s3-connect-timeout-not-a-duration",
        ),
        pytest.param(
            {"object-store": {"s3": {"max-retries": -1}}},
            "object-store.s3.max-retries",
            "at least 0",
            id="s3-negative-retries",
        ),
        pytest.param(
            {"cache": {"redis-url": "http://cache:6379"}},
            "cache.redis-url",
            "redis://",
            id="redis-url-scheme",
        ),
        pytest.param({"paths": "everything"}, "paths", "expected an object keyed by path pattern", id="paths-type"),
        pytest.param({"paths": [{"bucket": "abc"}]}, "paths[0].path", "needs a path pattern", id="list-entry-no-path"),
        pytest.param(
            {"variant-profiles": [{"w": 1}]},
            "variant-profiles[0].name",
            "needs a name",
            id="profile-list-without-name",
        ),
        pytest.param(
            {"variant-profiles": {"thumb nail": {"w": 1}}},
            "variant-profiles.thumb nail",
            "may only use letters",
            id="profile-name-not-url-safe",
        ),
        pytest.param(
            {"variant-profiles": {"thumb": {"w": {"min": 1}}}},
            "variant-profiles.thumb.w",
            "expected a number or text",
            id="profile-value-object",
        ),
    ],
)
def test_invalid_setting_is_named_by_its_key(tree: dict[str, object], key: str, message: str) -> None:
    error = error_for(tree)

    assert error.key == key
    assert message in error.message
    assert str(error) == f"{key}: {error.message}"


def test_an_invalid_inherited_value_is_reported_at_the_pattern_that_wrote_it() -> None:
    error = error_for({"paths": {"/users/*/x": {"image": {"lqip": []}}, "/users": {"cache-control": {"max-age": "x"}}}})

    assert error.key == "paths./users.cache-control.max-age"


def test_allowed_but_explicit_max_age_zero() -> None:
    config = build_config(at_path("/a", {"cache-control": {"enabled": True, "max-age": 0, "revalidate": "no-cache"}}))

    assert config.paths.resolve("/a").cache_control.header_value() == "max-age=0, no-cache"


def test_errors_from_a_file_name_keys_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "konifer.conf"
    path.write_text('paths { "/Users/**" { cache-control { max-age = -5 } } }')

    with pytest.raises(ConfigError) as raised:
        load_config(path, {})

    assert raised.value.key == "paths./Users/**.cache-control.max-age"
