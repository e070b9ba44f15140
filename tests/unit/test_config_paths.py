"""Path patterns: which pattern governs a path, and what it inherits (spec 05 section 5)."""

from __future__ import annotations

import pytest

from konifer_edge.config import ConfigError, PathConfiguration, PathSettings
from konifer_edge.config.load import build_config
from konifer_edge.config.model import SUPPORTED_CONTENT_TYPES


def paths(tree: dict[str, object], **top_level: object) -> PathConfiguration:
    return build_config({"paths": tree, **top_level}).paths


def governing(configuration: PathConfiguration, path: str) -> str:
    return configuration.resolve(path).pattern


def bucket(name: str) -> dict[str, object]:
    """A distinct, harmless setting to tell patterns apart."""
    return {"object-store": {"bucket": name}}


class TestMatching:
    def test_literal_beats_one_segment_beats_any_segments(self) -> None:
        configuration = paths({"/a/b": bucket("lit"), "/a/*": bucket("one"), "/a/**": bucket("any")})

        assert governing(configuration, "/a/b") == "/a/b"
        assert governing(configuration, "/a/c") == "/a/*"

    def test_one_segment_wildcard_needs_a_segment_so_any_segments_takes_the_bare_path(self) -> None:
        configuration = paths({"/a/*": bucket("one"), "/a/**": bucket("any")})

        assert governing(configuration, "/a") == "/a/**"

    def test_equally_deep_patterns_are_decided_by_walk_order(self) -> None:
        # The walk reaches /a/* (then cannot go deeper) before it tries '**'.
        configuration = paths({"/a/*": bucket("one"), "/a/**": bucket("any")})

        assert governing(configuration, "/a/c/d") == "/a/*"

    def test_any_segments_in_the_middle_swallows_zero_or_more(self) -> None:
        configuration = paths({"/a": bucket("top"), "/a/**/c": bucket("mid")})

        assert governing(configuration, "/a/c") == "/a/**/c"
        assert governing(configuration, "/a/x/c") == "/a/**/c"
        assert governing(configuration, "/a/x/y/c") == "/a/**/c"
        assert governing(configuration, "/a/x/y") == "/a"
        assert governing(configuration, "/a/x/c/below") == "/a/**/c"

    def test_any_segments_matches_zero_segments_at_the_end(self) -> None:
        configuration = paths({"/users/**": bucket("users")})

        assert governing(configuration, "/users") == "/users/**"
        assert governing(configuration, "/usersx") == "/**"

    def test_leading_any_segments(self) -> None:
        configuration = paths({"/users": bucket("users"), "/**/thumbs": bucket("thumbs")})

        assert governing(configuration, "/thumbs") == "/**/thumbs"
        assert governing(configuration, "/users/thumbs") == "/**/thumbs"
        assert governing(configuration, "/users/1") == "/users"

    def test_matching_ignores_case_in_patterns_and_paths(self) -> None:
        configuration = paths({"/Users/*/Profile-Picture": bucket("pics")})

        assert governing(configuration, "/USERS/42/profile-PICTURE") == "/users/*/profile-picture"

    def test_deepest_reached_pattern_wins(self) -> None:
        configuration = paths({"/a/**": bucket("shallow"), "/a/*/c/d": bucket("deep")})

        assert governing(configuration, "/a/x/c/d") == "/a/*/c/d"
        assert governing(configuration, "/a/x/c/e") == "/a/**"

    def test_last_reached_pattern_governs_deeper_paths(self) -> None:
        configuration = paths({"/users": bucket("users")})

        assert governing(configuration, "/users/123") == "/users"
        assert governing(configuration, "/users/123/profile-picture") == "/users"
        assert governing(configuration, "/teams/1") == "/**"

    def test_unconfigured_intermediate_does_not_hide_a_sibling_any_segments(self) -> None:
        configuration = paths({"/users/**": bucket("users"), "/users/*/profile-picture": bucket("pics")})

        assert governing(configuration, "/users/1/avatar") == "/users/**"
        assert governing(configuration, "/users/1/profile-picture") == "/users/*/profile-picture"

    def test_slashes_around_the_path_do_not_matter(self) -> None:
        configuration = paths({"/users/*": bucket("users")})

        assert configuration.resolve("users/1/") is configuration.resolve("/users/1")
        assert governing(configuration, "/") == "/**"
        assert governing(configuration, "") == "/**"

    def test_a_wildcard_must_be_a_whole_segment(self) -> None:
        with pytest.raises(ConfigError) as raised:
            paths({"/users/a*": bucket("x")})

        assert raised.value.key == "paths./users/a*"


class TestInheritance:
    def test_objects_merge_key_by_key(self) -> None:
        configuration = paths(
            {
                "/users": {"cache-control": {"enabled": True, "max-age": 60}},
                "/users/*": {"cache-control": {"visibility": "private"}},
            }
        )

        cache_control = configuration.resolve("/users/1").cache_control
        assert (cache_control.enabled, cache_control.max_age, cache_control.visibility) == (
            True,
            60,
            "private",
        )

    def test_a_list_replaces_the_inherited_list(self) -> None:
        configuration = paths(
            {
                "/**": {"allowed-content-types": ["image/jpeg", "image/png"]},
                "/users": {"allowed-content-types": ["image/webp"]},
            }
        )

        assert configuration.resolve("/users").allowed_content_types == ("image/webp",)
        assert configuration.resolve("/blog").allowed_content_types == ("image/jpeg", "image/png")

    def test_an_empty_list_empties(self) -> None:
        configuration = paths(
            {"/users": {"allowed-content-types": ["image/png"]}, "/users/123": {"allowed-content-types": []}}
        )

        settings = configuration.resolve("/users/123")
        assert settings.allowed_content_types == ()
        assert "image/png" not in settings.allowed_content_types
        assert configuration.resolve("/users/1").allowed_content_types == ("image/png",)

    def test_unset_content_types_allow_every_supported_format(self) -> None:
        settings = paths({}).resolve("/anything")

        # None: no list narrows the supported formats at this path.
        assert settings.allowed_content_types is None
        assert "image/jxl" in SUPPORTED_CONTENT_TYPES
        assert "image/tiff" not in SUPPORTED_CONTENT_TYPES

    def test_inherits_through_unconfigured_intermediate_patterns(self) -> None:
        configuration = paths(
            {
                "/**": {"image": {"lqip": ["thumbhash"]}},
                "/users": bucket("users"),
                "/users/*/profile": {"image": {"lqip": ["blurhash"]}},
            }
        )

        settings = configuration.resolve("/users/9/profile")
        assert settings.pattern == "/users/*/profile"
        assert settings.object_store.bucket == "users"
        assert settings.image.lqip == ("blurhash",)

    def test_a_sibling_any_segments_pattern_is_not_a_parent(self) -> None:
        configuration = paths(
            {
                "/users/**": {"cache-control": {"enabled": True, "max-age": 60}},
                "/users/*/profile-picture": bucket("pics"),
            }
        )

        assert configuration.resolve("/users/1/avatar").cache_control.header_value() == "max-age=60"
        assert configuration.resolve("/users/1/profile-picture").cache_control.header_value() is None

    def test_inheritance_does_not_depend_on_the_order_patterns_are_written(self) -> None:
        child_first = paths({"/users/*": {"image": {"lqip": ["blurhash"]}}, "/users": bucket("users")})
        parent_first = paths({"/users": bucket("users"), "/users/*": {"image": {"lqip": ["blurhash"]}}})

        assert child_first.resolve("/users/1") == parent_first.resolve("/users/1")
        assert child_first.resolve("/users/1").object_store.bucket == "users"

    def test_root_pattern_overrides_built_in_defaults_and_slash_is_the_root(self) -> None:
        assert paths({"/**": bucket("everything")}).resolve("/a/b").object_store.bucket == "everything"
        assert paths({"/": bucket("everything")}).resolve("/a/b").object_store.bucket == "everything"
        assert paths({}).resolve("/a/b").object_store.bucket == "assets"

    def test_the_same_pattern_written_twice_merges_in_order(self) -> None:
        configuration = paths(
            {
                "/Users": {"object-store": {"bucket": "first"}, "image": {"lqip": ["blurhash"]}},
                "/users": bucket("second"),
            }
        )

        settings = configuration.resolve("/users")
        assert (settings.object_store.bucket, settings.image.lqip) == ("second", ("blurhash",))

    def test_per_path_signing_override_inherits_the_top_level_secret(self) -> None:
        config = build_config(
            {
                "url-signing": {"secret-key": "top-secret"},
                "paths": {"/private/**": {"url-signing": {"enabled": True, "algorithm": "hmac_sha512"}}},
            }
        )

        private = config.paths.resolve("/private/a")
        assert private.url_signing is not None
        assert (private.url_signing.enabled, private.url_signing.secret_key) == (True, "top-secret")
        assert private.url_signing.algorithm == "hmac_sha512"
        assert config.signing_for(private) is private.url_signing
        assert config.signing_for(config.paths.resolve("/public")) is config.url_signing
        assert config.url_signing.enabled is False


class TestMemoisation:
    def test_same_path_in_different_case_resolves_to_the_identical_object(self) -> None:
        configuration = paths({"/users/**": bucket("users")})

        assert configuration.resolve("/Users/ABC") is configuration.resolve("/users/abc")

    def test_resolution_is_memoised_per_lower_cased_path(self) -> None:
        configuration = paths({"/users/**": bucket("users")})
        cache = configuration._resolve_lower  # the memo, checked directly: results are shared anyway

        configuration.resolve("/Users/1")
        configuration.resolve("/users/1")
        configuration.resolve("/USERS/1")

        info = cache.cache_info()
        assert (info.misses, info.hits) == (1, 2)
        assert info.maxsize is not None and info.maxsize >= 65536


class TestPathConfigurationObject:
    def test_built_directly_from_settings(self) -> None:
        users = PathSettings(image=PathSettings().image)
        configuration = PathConfiguration({"/Users/**": users}, default=PathSettings())

        assert configuration.patterns == ("/users/**", "/**")
        assert governing(configuration, "/users/x") == "/users/**"
        assert configuration.for_pattern("/USERS/**") == configuration.resolve("/users/x")
        assert configuration.root.pattern == "/**"

    def test_needs_root_settings(self) -> None:
        with pytest.raises(ValueError, match="root pattern"):
            PathConfiguration({"/users": PathSettings()})

    def test_equality_compares_settings_per_pattern(self) -> None:
        assert paths({"/a": bucket("aaa")}) == paths({"/A/": bucket("aaa")})
        assert paths({"/a": bucket("aaa")}) != paths({"/a": bucket("bbb")})


def test_the_worked_example_in_the_documentation() -> None:
    config = build_config(
        {
            "variant-profiles": {"thumbnail": {"w": 128}},
            "paths": {
                "/**": {"allowed-content-types": ["image/jpeg", "image/png"]},
                "/users": {"object-store": {"bucket": "users"}},
                "/users/**": {"cache-control": {"enabled": True, "visibility": "public", "max-age": 86400}},
                "/users/*/profile-picture": {
                    "allowed-content-types": ["image/jpeg"],
                    "transform": {"eager-variants": ["thumbnail"]},
                },
            },
        }
    )

    def row(path: str) -> tuple[str, str, tuple[str, ...] | None, str | None]:
        settings = config.paths.resolve(path)
        return (
            settings.pattern,
            settings.object_store.bucket,
            settings.allowed_content_types,
            settings.cache_control.header_value(),
        )

    both = ("image/jpeg", "image/png")
    cached = "public, max-age=86400"
    assert row("/blog/1") == ("/**", "assets", both, None)
    assert row("/users") == ("/users/**", "users", both, cached)
    assert row("/users/7/avatar") == ("/users/**", "users", both, cached)
    assert row("/Users/7/Profile-Picture") == ("/users/*/profile-picture", "users", ("image/jpeg",), None)
    assert row("/users/7/profile-picture/old") == ("/users/*/profile-picture", "users", ("image/jpeg",), None)
