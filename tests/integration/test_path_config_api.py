"""Path configuration end to end (spec 05 section 5, docs/configuration.md): servers started on our
own TOML and HOCON files, observed only through HTTP and the object store.

Konifer's `konifer.conf` loads unchanged in its current map form and in its older list form;
patterns match case-insensitively with `*` and `**`; settings inherit down the pattern tree;
`http.public-url` is the base of every URL we hand out.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService

PNG = make_image("png", 20, 14)
JPEG = make_image("jpg", 20, 14)
GIF = make_image("gif", 20, 14)
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif"}
IMAGES = {"png": PNG, "jpg": JPEG, "gif": GIF}

PUBLIC_URL = "https://img.example.test/cdn"

# Konifer's current layout, written the way Konifer's own documentation writes it.
KONIFER_CONF_MAP = """
http { public-url = "https://img.example.test/cdn/" }

object-store { provider = filesystem }

variant-profiles {
  thumbnail { w = 128, fit = fill, r = auto }
}

paths {
  "/**" {
    allowed-content-types = ["image/jpeg", "image/png"]
    object-store.bucket = assets
  }
  "/avatars/*/profile-picture" { transform.eager-variants = [thumbnail] }
  "/users/*/profile-picture" { object-store.bucket = profile-pictures }
  "/users/**" {
    object-store.bucket = users
    cache-control { enabled = true, visibility = public, max-age = 31536000, immutable = true }
  }
  "/gifs/**" { allowed-content-types = ["image/gif"] }
  "/private/**" { return-format.redirect { strategy = presigned, presigned.ttl = 30m } }
  "/public/**" {
    return-format.redirect {
      strategy = template
      template.string = "https://{bucket}.cdn.example.com/{key}"
    }
  }
}
"""

# The same settings in TOML: both spellings must give the same behaviour.
KONIFER_TOML = """
[http]
public-url = "https://img.example.test/cdn/"

[variant-profiles.thumbnail]
w = 128
fit = "fill"
r = "auto"

[paths."/**"]
allowed-content-types = ["image/jpeg", "image/png"]
object-store.bucket = "assets"

[paths."/avatars/*/profile-picture".transform]
eager-variants = ["thumbnail"]

[paths."/users/*/profile-picture"]
object-store.bucket = "profile-pictures"

[paths."/users/**"]
object-store.bucket = "users"

[paths."/users/**".cache-control]
enabled = true
visibility = "public"
max-age = 31536000
immutable = true

[paths."/gifs/**"]
allowed-content-types = ["image/gif"]

[paths."/private/**".return-format.redirect]
strategy = "presigned"
presigned.ttl = "30m"

[paths."/public/**".return-format.redirect]
strategy = "template"
template.string = "https://{bucket}.cdn.example.com/{key}"
"""

# Konifer's older layout: a list of entries with a `path`, and the older key placements.
KONIFER_CONF_LIST = """
http.public-url = "http://list.example.test"
variant-profiles = [
  { name = thumbnail, w = 8, h = 8, fit = fill }
]
paths = [
  { path = "/**", allowed-content-types = ["image/jpeg", "image/png"], lqip = [blurhash] }
  { path = "/users/**", bucket = users, cache-control { enabled = true, visibility = private, max-age = 1234 } }
  { path = "/users/*/profile-picture", bucket = profile-pictures, eager-variants = [thumbnail] }
  {
    path = "/tmpl/**"
    object-store.redirect { strategy = template, template.string = "https://cdn.example.test/{bucket}/{key}" }
  }
]
"""

INHERITANCE_TOML = """
[http]
public-url = "https://inherit.example.test"

[paths."/**"]
allowed-content-types = ["image/jpeg", "image/png", "image/gif"]

[paths."/deep"]
object-store.bucket = "deep-parent"
[paths."/deep".cache-control]
enabled = true
visibility = "public"
max-age = 777

[paths."/deep/child"]
object-store.bucket = "deep-child"
allowed-content-types = ["image/png"]

[paths."/deep/child/grand".cache-control]
visibility = "private"
stale-if-error = 33

[paths."/deep/child/none"]
allowed-content-types = []

[paths."/one/*"]
object-store.bucket = "one-star"

[paths."/any/**"]
object-store.bucket = "any-deep"

[paths."/mid/**/end"]
object-store.bucket = "mid-end"

[paths."/star/*"]
object-store.bucket = "star-one"

[paths."/star/**"]
object-store.bucket = "star-any"

[paths."/Blog/**"]
object-store.bucket = "blog"

# The worked example of docs/configuration.md.
[paths."/users"]
object-store.bucket = "users"

[paths."/users/**".cache-control]
enabled = true
visibility = "public"
max-age = 86400

[paths."/users/*/profile-picture"]
allowed-content-types = ["image/jpeg"]
"""


def _deployment(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, name: str, config: str, config_name: str
) -> Iterator[Deployment]:
    deployment = Deployment(
        tmp_path_factory.mktemp(name), config, store="filesystem", postgres=postgres, s3=None, config_name=config_name
    ).start()
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="module", params=["konifer.conf", "konifer.toml"], ids=["hocon-map", "toml"])
def konifer_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService
) -> Iterator[Deployment]:
    """Konifer's documented configuration, once as HOCON (map form) and once as TOML."""
    config_name: str = request.param
    config = KONIFER_CONF_MAP if config_name.endswith(".conf") else KONIFER_TOML
    yield from _deployment(tmp_path_factory, postgres, "konifer-" + config_name, config, config_name)


@pytest.fixture(scope="module")
def list_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    yield from _deployment(tmp_path_factory, postgres, "konifer-list", KONIFER_CONF_LIST, "konifer.conf")


@pytest.fixture(scope="module")
def inherit_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    yield from _deployment(tmp_path_factory, postgres, "inherit", INHERITANCE_TOML, "konifer.toml")


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


def store_response(deployment: Deployment, path: str, fmt: str = "png") -> Any:
    return deployment.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, json.dumps({}), "application/json"),
            "asset": (f"a.{fmt}", IMAGES[fmt], MEDIA_TYPES[fmt]),
        },
    )


def store(deployment: Deployment, path: str, fmt: str = "png") -> dict[str, Any]:
    response = store_response(deployment, path, fmt)
    assert response.status_code == 201, f"{path}: {response.status_code} {response.text}"
    body: dict[str, Any] = response.json()
    return body


def original(asset: dict[str, Any]) -> dict[str, Any]:
    variant: dict[str, Any] = next(v for v in asset["variants"] if v["isOriginalVariant"])
    return variant


def assert_stored_in(deployment: Deployment, asset: dict[str, Any], bucket: str, content: bytes = PNG) -> None:
    variant = original(asset)
    assert variant["storeBucket"] == bucket
    assert (bucket, variant["storeKey"]) in deployment.stored_objects()
    assert deployment.read_object(bucket, variant["storeKey"]) == content


def cache_control(deployment: Deployment, path: str) -> str | None:
    """The Cache-Control of the newest content at a path."""
    response = deployment.client.get(f"/assets{path}/-/content")
    assert response.status_code == 200, response.text
    value: str | None = response.headers.get("cache-control")
    return value


# Directives only a configured pattern gives; where nothing is configured, konifer-edge may add its
# own defaults (spec 05 section 5), but never these.
CONFIGURED_DIRECTIVES = ("max-age=777", "stale-if-error=33", "max-age=86400", "max-age=1234")


def assert_cache_control(deployment: Deployment, path: str, expected: str | None, entry_id: int) -> None:
    """Exactly the configured directives, or (`None`: nothing configured) none of any pattern's.

    Both for the newest content at the path and for the entry-pinned content URL: an explicit
    configuration wins over any default the service keeps for either.
    """
    pinned = deployment.client.get(f"/assets{path}/-/entry/{entry_id}/content")
    assert pinned.status_code == 200, pinned.text
    for value in (cache_control(deployment, path), pinned.headers.get("cache-control")):
        if expected is not None:
            assert value == expected
            continue
        for directive in CONFIGURED_DIRECTIVES:
            assert directive not in (value or ""), f"{path}: {value}"


def assert_refused_type(deployment: Deployment, path: str, fmt: str) -> None:
    before = deployment.snapshot()
    response = store_response(deployment, path, fmt)
    assert response.status_code == 403, f"{path} {fmt}: {response.status_code} {response.text}"
    assert deployment.snapshot() == before


def wait_for_variants(deployment: Deployment, path: str, count: int) -> list[dict[str, Any]]:
    """Eager variants are rendered in the background after the store answers: wait (bounded) for them."""
    deadline = time.monotonic() + 10
    while True:
        variants: list[dict[str, Any]] = deployment.client.get(f"/assets{path}/-/metadata").json()["variants"]
        if len(variants) >= count or time.monotonic() > deadline:
            return variants
        time.sleep(0.1)


def selector_tokens(url: str, base: str, path: str) -> tuple[list[str], str]:
    """The `/-/` tokens and the query of a URL we handed out, after checking its base and path."""
    prefix = f"{base}/assets{path}/-/"
    assert url.startswith(prefix), f"{url!r} does not start with {prefix!r}"
    parts = urlsplit(url)
    tokens = [token for token in url[len(prefix) :].split("?", 1)[0].split("/") if token]
    return tokens, parts.query


def assert_entry_link_url(url: str, base: str, path: str, entry_id: int) -> None:
    """`{base}/assets{path}/-/entry/{id}` in any of the accepted spellings (with or without `link`)."""
    tokens, query = selector_tokens(url, base, path)
    assert query == ""
    assert tokens in (
        ["entry", str(entry_id)],
        ["entry", str(entry_id), "link"],
        ["link", "entry", str(entry_id)],
    ), url


def assert_entry_content_url(url: str, base: str, path: str, entry_id: int) -> None:
    """`{base}/assets{path}/-/entry/{id}/content` or the seed spelling `/-/content/entry/{id}`."""
    tokens, query = selector_tokens(url, base, path)
    assert query == ""
    assert tokens in (["entry", str(entry_id), "content"], ["content", "entry", str(entry_id)]), url


# -- Konifer's configuration, HOCON map form and TOML --------------------------------------------


def test_cache_control_per_path(konifer_api: Deployment, uid: str) -> None:
    store(konifer_api, f"/users/{uid}/avatar")
    store(konifer_api, f"/blog/{uid}")

    assert cache_control(konifer_api, f"/users/{uid}/avatar") == "public, max-age=31536000, immutable"
    assert "max-age=31536000" not in (cache_control(konifer_api, f"/blog/{uid}") or "")


def test_patterns_match_without_regard_to_case(konifer_api: Deployment, uid: str) -> None:
    asset = store(konifer_api, f"/Users/{uid}/Avatar")
    shouting = store(konifer_api, f"/USERS/{uid}/X")

    assert_stored_in(konifer_api, asset, "users")
    assert_stored_in(konifer_api, shouting, "users")
    assert cache_control(konifer_api, f"/Users/{uid}/Avatar") == "public, max-age=31536000, immutable"
    assert cache_control(konifer_api, f"/USERS/{uid}/X") == "public, max-age=31536000, immutable"


def test_bucket_per_path(konifer_api: Deployment, uid: str) -> None:
    blog = store(konifer_api, f"/blog/{uid}")
    avatar = store(konifer_api, f"/users/{uid}/avatar")
    picture = store(konifer_api, f"/users/{uid}/profile-picture")

    assert_stored_in(konifer_api, blog, "assets")
    assert_stored_in(konifer_api, avatar, "users")
    assert_stored_in(konifer_api, picture, "profile-pictures")
    for path in (f"/blog/{uid}", f"/users/{uid}/avatar", f"/users/{uid}/profile-picture"):
        content = konifer_api.client.get(f"/assets{path}/-/content")
        assert content.status_code == 200
        assert content.content == PNG


def test_a_sibling_pattern_is_not_a_parent(konifer_api: Deployment, uid: str) -> None:
    store(konifer_api, f"/users/{uid}/profile-picture")

    # `/users/*/profile-picture` and `/users/**` are both children of `/users`: no cache-control is inherited.
    assert "max-age=31536000" not in (cache_control(konifer_api, f"/users/{uid}/profile-picture") or "")


def test_allowed_content_types_per_path(konifer_api: Deployment, uid: str) -> None:
    assert_refused_type(konifer_api, f"/blog/{uid}", "gif")
    assert_refused_type(konifer_api, f"/users/{uid}/avatar", "gif")
    assert_refused_type(konifer_api, f"/gifs/{uid}", "png")
    assert_refused_type(konifer_api, f"/gifs/{uid}", "jpg")

    jpeg = store(konifer_api, f"/blog/{uid}", "jpg")
    gif = store(konifer_api, f"/gifs/{uid}", "gif")
    assert_stored_in(konifer_api, jpeg, "assets", JPEG)
    assert_stored_in(konifer_api, gif, "assets", GIF)


def test_template_redirect_strategy(konifer_api: Deployment, uid: str) -> None:
    path = f"/public/{uid}"
    key = original(store(konifer_api, path))["storeKey"]
    expected = f"https://assets.cdn.example.com/{key}"

    redirect = konifer_api.client.get(f"/assets{path}/-/redirect")
    link = konifer_api.client.get(f"/assets{path}/-/link")

    assert redirect.status_code == 307
    assert redirect.headers["location"] == expected
    assert link.status_code == 200
    assert link.json()["url"] == expected


def test_presigned_strategy_on_the_filesystem_serves_the_content(konifer_api: Deployment, uid: str) -> None:
    path = f"/private/{uid}"
    store(konifer_api, path)

    redirect = konifer_api.client.get(f"/assets{path}/-/redirect")

    assert redirect.status_code == 200
    assert redirect.content == PNG
    assert redirect.headers["content-type"] == "image/png"


def test_public_url_is_the_base_of_location_and_link_urls(konifer_api: Deployment, uid: str) -> None:
    path = f"/blog/{uid}/post"
    response = store_response(konifer_api, path)
    assert response.status_code == 201
    entry_id = response.json()["entryId"]

    # The configured trailing '/' is dropped: no '//' before 'assets'.
    location = response.headers["location"]
    assert_entry_link_url(location, PUBLIC_URL, path, entry_id)
    # Location is usable: its path, asked of this server, answers the link of the same entry.
    own = konifer_api.client.get(location[len(PUBLIC_URL) :])
    assert own.status_code == 200, own.text
    link_url = own.json()["url"]
    assert_entry_content_url(link_url, PUBLIC_URL, path, entry_id)
    assert konifer_api.client.get(f"/assets{path}/-/link").json()["url"] == link_url
    listed = konifer_api.client.get(f"/assets{path}/-/link?limit=-1").json()
    assert [item["url"] for item in listed] == [link_url]
    # The default redirect goes to the same entry-pinned content URL, on the public base.
    redirect = konifer_api.client.get(f"/assets{path}/-/redirect")
    assert redirect.status_code == 307
    assert_entry_content_url(redirect.headers["location"], PUBLIC_URL, path, entry_id)
    content = konifer_api.client.get(link_url[len(PUBLIC_URL) :])
    assert content.status_code == 200
    assert content.content == PNG


def test_without_public_url_urls_are_built_from_the_request(fs_api: Deployment, path: str) -> None:
    response = store_response(fs_api, path)
    assert response.status_code == 201
    entry_id = response.json()["entryId"]

    assert_entry_link_url(response.headers["location"], fs_api.base_url, path, entry_id)
    assert_entry_content_url(fs_api.client.get(f"/assets{path}/-/link").json()["url"], fs_api.base_url, path, entry_id)


# -- Konifer's older list form ---------------------------------------------------------------------


def test_list_form_buckets_and_cache_control(list_api: Deployment, uid: str) -> None:
    blog = store(list_api, f"/blog/{uid}")
    avatar = store(list_api, f"/users/{uid}/avatar")
    picture = store(list_api, f"/Users/{uid}/Profile-Picture")
    wait_for_variants(list_api, f"/Users/{uid}/Profile-Picture", 2)

    assert_stored_in(list_api, blog, "assets")
    assert_stored_in(list_api, avatar, "users")
    assert_stored_in(list_api, picture, "profile-pictures")
    assert cache_control(list_api, f"/users/{uid}/avatar") == "private, max-age=1234"
    assert "max-age=1234" not in (cache_control(list_api, f"/Users/{uid}/Profile-Picture") or "")
    assert "max-age=1234" not in (cache_control(list_api, f"/blog/{uid}") or "")


def test_list_form_allowed_content_types_are_inherited(list_api: Deployment, uid: str) -> None:
    assert_refused_type(list_api, f"/blog/{uid}", "gif")
    assert_refused_type(list_api, f"/users/{uid}/avatar", "gif")
    assert_stored_in(list_api, store(list_api, f"/users/{uid}/avatar", "jpg"), "users", JPEG)


def test_list_form_older_redirect_placement(list_api: Deployment, uid: str) -> None:
    path = f"/tmpl/{uid}"
    key = original(store(list_api, path))["storeKey"]

    redirect = list_api.client.get(f"/assets{path}/-/redirect")

    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"https://cdn.example.test/assets/{key}"


def test_list_form_public_url(list_api: Deployment, uid: str) -> None:
    path = f"/blog/{uid}"
    response = store_response(list_api, path)
    assert response.status_code == 201

    assert_entry_link_url(response.headers["location"], "http://list.example.test", path, response.json()["entryId"])


def test_list_form_older_eager_variants_placement(list_api: Deployment, uid: str) -> None:
    path = f"/users/{uid}/profile-picture"
    stored = store(list_api, path)
    assert [variant["isOriginalVariant"] for variant in stored["variants"]] == [True]

    variants = wait_for_variants(list_api, path, 2)

    generated = [variant for variant in variants if not variant["isOriginalVariant"]]
    assert len(generated) == 1, variants
    # The profile fills 8x8 from a 20x14 original: a crop, which no plain `fit` (8x6) could give.
    assert (generated[0]["transformation"]["width"], generated[0]["transformation"]["height"]) == (8, 8)
    assert generated[0]["transformation"]["fit"] in ("fill", "crop")
    assert (generated[0]["attributes"]["width"], generated[0]["attributes"]["height"]) == (8, 8)
    assert generated[0]["storeBucket"] == "profile-pictures"
    assert (generated[0]["storeBucket"], generated[0]["storeKey"]) in list_api.stored_objects()
    # Nothing is eager where the profile is not configured.
    other = f"/users/{uid}/avatar"
    store(list_api, other)
    time.sleep(0.5)
    assert len(list_api.client.get(f"/assets{other}/-/metadata").json()["variants"]) == 1


def test_list_form_older_lqip_placement(list_api: Deployment, uid: str) -> None:
    path = f"/blog/{uid}"
    stored = store(list_api, path)

    lqip = original(stored)["lqip"]
    assert isinstance(lqip.get("blurhash"), str)
    assert lqip["blurhash"]
    assert not lqip.get("thumbhash")
    content = list_api.client.get(f"/assets{path}/-/content")
    assert content.headers.get("K-LQIP-Blurhash") == lqip["blurhash"]
    assert "K-LQIP-Thumbhash" not in content.headers


# -- inheritance and wildcards ---------------------------------------------------------------------

INHERITED = [
    # (path below a unique prefix-free root, bucket, Cache-Control)
    ("/deep", "deep-parent", "public, max-age=777"),
    ("/deep/{uid}", "deep-parent", "public, max-age=777"),
    ("/deep/child", "deep-child", "public, max-age=777"),
    ("/deep/child/{uid}", "deep-child", "public, max-age=777"),
    ("/Deep/Child/{uid}", "deep-child", "public, max-age=777"),
    ("/deep/child/grand", "deep-child", "private, max-age=777, stale-if-error=33"),
    ("/deep/child/grand/{uid}", "deep-child", "private, max-age=777, stale-if-error=33"),
    ("/one/{uid}", "one-star", None),
    ("/one", "assets", None),
    ("/any", "any-deep", None),
    ("/any/{uid}/b/c", "any-deep", None),
    ("/mid/end", "mid-end", None),
    ("/mid/{uid}/y/end", "mid-end", None),
    ("/mid/{uid}/y", "assets", None),
    ("/star/{uid}", "star-one", None),
    ("/star", "star-any", None),
    ("/blog/{uid}", "blog", None),
    ("/BLOG/{uid}", "blog", None),
    ("/elsewhere/{uid}", "assets", None),
]


@pytest.mark.parametrize(("template", "bucket", "expected_cache_control"), INHERITED, ids=[t for t, _, _ in INHERITED])
def test_pattern_resolution_and_inheritance(
    inherit_api: Deployment, uid: str, template: str, bucket: str, expected_cache_control: str | None
) -> None:
    path = template.format(uid=uid)
    asset = store(inherit_api, path)

    assert_stored_in(inherit_api, asset, bucket)
    assert_cache_control(inherit_api, path, expected_cache_control, asset["entryId"])


WORKED_EXAMPLE = [
    ("/users", "png", "users", "public, max-age=86400"),
    ("/users/{uid}", "png", "users", "public, max-age=86400"),
    ("/users/{uid}/avatar", "png", "users", "public, max-age=86400"),
    ("/Users/{uid}/Profile-Picture", "jpg", "users", None),
    ("/users/{uid}/profile-picture/old", "jpg", "users", None),
]


@pytest.mark.parametrize(
    ("template", "fmt", "bucket", "expected_cache_control"), WORKED_EXAMPLE, ids=[w[0] for w in WORKED_EXAMPLE]
)
def test_the_documented_worked_example(
    inherit_api: Deployment, uid: str, template: str, fmt: str, bucket: str, expected_cache_control: str | None
) -> None:
    path = template.format(uid=uid)
    asset = store(inherit_api, path, fmt)

    assert_stored_in(inherit_api, asset, bucket, IMAGES[fmt])
    assert_cache_control(inherit_api, path, expected_cache_control, asset["entryId"])
    if "profile-picture" in path.lower():
        assert_refused_type(inherit_api, path, "png")


def test_a_child_list_replaces_the_inherited_list(inherit_api: Deployment, uid: str) -> None:
    # `/deep` inherits JPEG, PNG and GIF from `/**`; `/deep/child` narrows to PNG; grand inherits that.
    assert_stored_in(inherit_api, store(inherit_api, f"/deep/{uid}", "gif"), "deep-parent", GIF)
    assert_refused_type(inherit_api, f"/deep/child/{uid}", "gif")
    assert_refused_type(inherit_api, f"/deep/child/{uid}", "jpg")
    assert_refused_type(inherit_api, f"/deep/child/grand/{uid}", "jpg")
    assert_stored_in(inherit_api, store(inherit_api, f"/deep/child/grand/{uid}", "png"), "deep-child")


def test_an_empty_list_means_empty(inherit_api: Deployment, uid: str) -> None:
    for fmt in ("png", "jpg", "gif"):
        assert_refused_type(inherit_api, "/deep/child/none", fmt)
        assert_refused_type(inherit_api, f"/deep/child/none/{uid}", fmt)


def test_inheriting_server_public_url(inherit_api: Deployment, uid: str) -> None:
    path = f"/deep/child/{uid}"
    response = store_response(inherit_api, path)
    assert response.status_code == 201
    entry_id = response.json()["entryId"]

    assert_entry_link_url(response.headers["location"], "https://inherit.example.test", path, entry_id)
    link = inherit_api.client.get(f"/assets{path}/-/entry/{entry_id}")
    assert_entry_content_url(link.json()["url"], "https://inherit.example.test", path, entry_id)
