"""Access control over HTTP: signed URLs (spec 05 section 6, plus key rotation) and scoped API keys.

Signatures are made here by the test's own implementation of Konifer's rule (or by the
`konifer-edge sign` command), never by the server's code. Keys are created, listed and
revoked with the `konifer-edge keys` command against the server's database. Every refusal
is a JSON `{"message", "error"}` answer, leaves the database and the object store exactly
as they were, and the server answers the next request normally.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest

from tests.support.access import (
    CACHE_TTL,
    assert_refused,
    bearer,
    cli_ok,
    create_key,
    eventually,
    run_cli,
    signature_of,
    signed,
)
from tests.support.assets import stored, upload
from tests.support.deployment import Deployment, Snapshot, running
from tests.support.images import make_image
from tests.support.services import PostgresService

PNG = make_image("png", 24, 16)

SIGNED_CONFIG = """
[url-signing]
enabled = true
algorithm = "hmac_sha256"
secret-keys = ["new-key", "old-key"]

[paths."/**"]
object-store.bucket = "assets"

[paths."/strong/**".url-signing]
algorithm = "hmac_sha512"
secret-key = "strong-key"

[paths."/open/**".url-signing]
enabled = false

[paths."/inplace/**".return-format.redirect]
strategy = "none"
"""

PATH_SIGNED_CONFIG = """
[paths."/**"]
object-store.bucket = "assets"

[paths."/signed/**".url-signing]
enabled = true
algorithm = "hmac_sha384"
secret-key = "path-key"
"""

KEYED_CONFIG = """
[paths."/**"]
object-store.bucket = "assets"

[paths."/private/**".access]
read = "key"
"""


# --- helpers --------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"/{prefix}/{uuid.uuid4().hex[:12]}"


def assert_still_serving(deployment: Deployment) -> None:
    assert deployment.client.get("/health").status_code == 200


def settled_snapshot(deployment: Deployment) -> Snapshot:
    """Every row and object, once object removals queued by earlier deletes are done."""
    deadline = time.monotonic() + 15
    while deployment.query("SELECT count(*) FROM pending_object_deletion")[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    return deployment.snapshot()


@pytest.fixture(scope="module")
def signed_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    with running(tmp_path_factory, postgres, "signed", SIGNED_CONFIG) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def path_signed_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    with running(tmp_path_factory, postgres, "path-signed", PATH_SIGNED_CONFIG) as deployment:
        yield deployment


class Keys(msgspec.Struct):
    deployment: Deployment
    writer: str
    reader: str
    admin: str
    limited: str
    limited_prefix: str


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Keys]:
    env = {"KONIFER_EDGE_API_KEY_CACHE_TTL": CACHE_TTL}
    with running(tmp_path_factory, postgres, "keyed", KEYED_CONFIG, env) as deployment:
        limited_prefix = unique("users")
        keys = Keys(
            deployment=deployment,
            writer=create_key(deployment, "assets:write", name="writer"),
            reader=create_key(deployment, "assets:read", name="reader"),
            admin=create_key(deployment, "assets:admin", name="admin"),
            limited=create_key(deployment, "assets:write", prefix=limited_prefix, name="limited"),
            limited_prefix=limited_prefix,
        )
        # Until the server's cached "no key exists" expires, anonymous writes still pass.
        eventually(lambda: upload(deployment.client, unique("t")).status_code, 401)
        yield keys


# --- signed URLs: top-level signing ----------------------------------------------------------


FETCH_TAILS = (
    "",
    "/-/link",
    "/-/content?w=8",
    "/-/download",
    "/-/metadata",
    "/-/info",
    "/-/new/link?limit=2",
    "/-/content?format=webp&pad=2&pad-c=%23ff0000",
)


def test_unsigned_fetches_are_403(signed_api: Deployment) -> None:
    path = unique("t")
    stored(signed_api.client, path)
    for tail in FETCH_TAILS:
        response = signed_api.client.get(f"/assets{path}{tail}")
        assert_refused(response, 403, "missing_signature", "Missing signature")
        assert_still_serving(signed_api)
    head = signed_api.client.head(f"/assets{path}/-/content")
    assert head.status_code == 403
    assert_refused(signed_api.client.get(f"/assets{path}/-/link?s="), 403, "missing_signature")


def test_signed_fetches_answer_on_every_return_format(signed_api: Deployment) -> None:
    path = unique("t")
    entry = stored(signed_api.client, path)["entryId"]
    for tail in (*FETCH_TAILS, f"/-/entry/{entry}/content", f"/-/content/entry/{entry}?w=8"):
        response = signed_api.client.get(signed(f"/assets{path}{tail}"))
        assert response.status_code == 200, f"{tail}: {response.status_code} {response.text}"
    assert signed_api.client.head(signed(f"/assets{path}/-/content")).status_code == 200
    redirect = signed_api.client.get(signed(f"/assets{path}/-/redirect"))
    assert redirect.status_code == 307
    inplace = unique("inplace")
    stored(signed_api.client, inplace)
    assert signed_api.client.get(signed(f"/assets{inplace}/-/redirect")).status_code == 200


def test_parameters_may_come_in_any_order_and_encoded(signed_api: Deployment) -> None:
    path = unique("t")
    stored(signed_api.client, path)
    url = f"/assets{path}/-/content?w=8&format=png&pad=2&pad-c=%23ff0000"
    signature = signature_of(
        f"/assets{path}/-/content", "pad-c=%23ff0000&format=png&w=8&pad=2", "new-key", "hmac_sha256"
    )
    assert (
        signed_api.client.get(f"/assets{path}/-/content?pad=2&s={signature}&pad-c=%23ff0000&w=8&format=png").status_code
        == 200
    )
    assert signed_api.client.get(f"{url}&s={signature}").status_code == 200


def test_tampered_urls_are_403(signed_api: Deployment) -> None:
    path = unique("t")
    first = stored(signed_api.client, path)["entryId"]
    second = stored(signed_api.client, path)["entryId"]
    other = unique("t")
    stored(signed_api.client, other)
    good = signed(f"/assets{path}/-/content?w=8")
    assert signed_api.client.get(good).status_code == 200
    tampered = [
        good.replace("w=8", "w=9"),
        good.replace("w=8", "w=8&h=4"),
        good.replace(path, other),
        signed(f"/assets{path}/-/entry/{first}/content").replace(f"/entry/{first}/", f"/entry/{second}/"),
        good.replace("/-/content", "/-/download"),
        signed(f"/assets{path}/-/link", secret="someone-else"),
    ]
    for url in tampered:
        assert_refused(signed_api.client.get(url), 403, "invalid_signature", "Invalid signature")
        assert signed_api.client.get(good).status_code == 200


def test_both_rotation_keys_sign_and_no_other(signed_api: Deployment) -> None:
    path = unique("t")
    stored(signed_api.client, path)
    for secret in ("new-key", "old-key"):
        assert signed_api.client.get(signed(f"/assets{path}/-/link", secret=secret)).status_code == 200
    assert signed_api.client.get(signed(f"/assets{path}/-/link", secret="retired")).status_code == 403


def test_a_path_override_has_its_own_key_and_algorithm(signed_api: Deployment) -> None:
    strong = unique("strong")
    stored(signed_api.client, strong)
    assert signed_api.client.get(signed(f"/assets{strong}/-/link", "strong-key", "hmac_sha512")).status_code == 200
    assert signed_api.client.get(signed(f"/assets{strong}/-/link")).status_code == 403
    assert signed_api.client.get(signed(f"/assets{strong}/-/link", "strong-key")).status_code == 403
    open_path = unique("open")
    stored(signed_api.client, open_path)
    assert signed_api.client.get(f"/assets{open_path}/-/link").status_code == 200


def test_writes_are_not_signed(signed_api: Deployment) -> None:
    path = unique("t")
    entry = stored(signed_api.client, path)["entryId"]
    assert signed_api.client.put(f"/assets{path}/-/entry/{entry}", json={"alt": "b"}).status_code == 200
    assert signed_api.client.delete(f"/assets{path}/-/entry/{entry}").status_code == 204


def test_the_path_is_signed_as_sent(signed_api: Deployment) -> None:
    path = f"/t/{uuid.uuid4().hex[:8]}@home"
    stored(signed_api.client, path)
    escaped = f"/assets{path.replace('@', '%40')}/-/link"
    assert signed_api.client.get(signed(escaped)).status_code == 200
    signature = urlsplit(signed(escaped)).query
    assert_refused(signed_api.client.get(f"/assets{path}/-/link?{signature}"), 403, "invalid_signature")


def test_the_sign_command_output_is_accepted(signed_api: Deployment) -> None:
    path = unique("t")
    strong = unique("strong")
    stored(signed_api.client, path)
    stored(signed_api.client, strong)
    config = str(signed_api.server.config_path)
    for url in (
        f"{signed_api.base_url}/assets{path}/-/content?w=8&pad-c=%23ff0000&pad=1",
        f"/assets{path}/-/link",
        f"/assets{strong}/-/metadata",
    ):
        output = cli_ok(signed_api, "sign", url, "--config", config).strip()
        assert output.startswith(url)
        assert signed_api.client.get(output).status_code == 200, output
    by_secret = cli_ok(signed_api, "sign", f"/assets{path}/-/link", "--secret", "old-key").strip()
    assert signed_api.client.get(by_secret).status_code == 200
    unsigned = run_cli(signed_api, "sign", f"/assets{path}/-/link")
    assert unsigned.returncode == 2
    assert "no signing secret" in unsigned.stderr


# --- signed URLs: one path only ----------------------------------------------------------------


def test_per_path_signing_only(path_signed_api: Deployment) -> None:
    signed_path = unique("signed")
    stored(path_signed_api.client, signed_path)
    assert_refused(path_signed_api.client.get(f"/assets{signed_path}/-/link"), 403, "missing_signature")
    url = signed(f"/assets{signed_path}/-/content?w=8", "path-key", "hmac_sha384")
    assert path_signed_api.client.get(url).status_code == 200
    assert path_signed_api.client.get(signed(f"/assets{signed_path}/-/link", "path-key")).status_code == 403
    public = unique("t")
    stored(path_signed_api.client, public)
    assert path_signed_api.client.get(f"/assets{public}/-/content?w=8").status_code == 200


# --- API keys ------------------------------------------------------------------------------------


def test_writes_are_open_until_the_first_key_exists(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService
) -> None:
    env = {"KONIFER_EDGE_API_KEY_CACHE_TTL": CACHE_TTL}
    with running(tmp_path_factory, postgres, "open", KEYED_CONFIG, env) as deployment:
        stored(deployment.client, unique("t"))
        token = create_key(deployment, "assets:write")
        eventually(lambda: upload(deployment.client, unique("t")).status_code, 401)
        stored(deployment.client, unique("t"), headers=bearer(token))


def test_anonymous_writes_are_401_once_a_key_exists(keyed: Keys) -> None:
    api = keyed.deployment
    path = unique("t")
    entry = stored(api.client, path, headers=bearer(keyed.writer))["entryId"]
    before = settled_snapshot(api)
    refusals = [
        upload(api.client, path),
        api.client.put(f"/assets{path}/-/entry/{entry}", json={"alt": "changed"}),
        api.client.delete(f"/assets{path}/-/entry/{entry}"),
        api.client.delete(f"/assets{path}/-/recursive"),
    ]
    for response in refusals:
        assert_refused(response, 401, "missing_api_key")
    assert settled_snapshot(api) == before
    assert_still_serving(api)


def test_wrong_keys_are_401(keyed: Keys) -> None:
    api = keyed.deployment
    path = unique("t")
    before = settled_snapshot(api)
    stranger = "ke_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    for headers in (
        bearer(stranger),
        {"X-API-Key": stranger},
        bearer("not-a-key"),
        {"Authorization": "Bearer"},
        bearer(keyed.writer + "x"),
    ):
        assert_refused(upload(api.client, path, headers=headers), 401, "invalid_api_key")
        assert_still_serving(api)
    assert settled_snapshot(api) == before


def test_a_read_only_key_cannot_write(keyed: Keys) -> None:
    api = keyed.deployment
    path = unique("t")
    entry = stored(api.client, path, headers=bearer(keyed.writer))["entryId"]
    before = settled_snapshot(api)
    for response in (
        upload(api.client, path, headers=bearer(keyed.reader)),
        api.client.put(f"/assets{path}/-/entry/{entry}", json={"alt": "x"}, headers={"X-API-Key": keyed.reader}),
        api.client.delete(f"/assets{path}/-/entry/{entry}", headers=bearer(keyed.reader)),
    ):
        assert_refused(response, 403, "insufficient_scope")
    assert settled_snapshot(api) == before


def test_writer_and_admin_keys_store_update_and_delete(keyed: Keys) -> None:
    api = keyed.deployment
    for headers in (bearer(keyed.writer), {"X-API-Key": keyed.admin}):
        path = unique("t")
        entry = stored(api.client, path, headers=headers)["entryId"]
        assert api.client.put(f"/assets{path}/-/entry/{entry}", json={"alt": "b"}, headers=headers).status_code == 200
        assert api.client.delete(f"/assets{path}/-/entry/{entry}", headers=headers).status_code == 204


def test_a_prefix_limited_key_stays_inside_its_prefix(keyed: Keys) -> None:
    api = keyed.deployment
    prefix = keyed.limited_prefix
    headers = bearer(keyed.limited)
    stored(api.client, prefix, headers=headers)
    stored(api.client, f"{prefix}/avatar", headers=headers)
    before = settled_snapshot(api)
    for outside in (f"{prefix}4", prefix.rsplit("/", 1)[0], unique("t"), f"{prefix}x/avatar"):
        assert_refused(upload(api.client, outside, headers=headers), 403, "outside_key_prefix")
    # A recursive delete from above the prefix would reach other keys' assets.
    parent = prefix.rsplit("/", 1)[0]
    assert_refused(api.client.delete(f"/assets{parent}/-/recursive", headers=headers), 403, "outside_key_prefix")
    assert settled_snapshot(api) == before
    assert api.client.delete(f"/assets{prefix}/-/recursive", headers=headers).status_code == 204


def test_a_revoked_key_is_401(keyed: Keys) -> None:
    api = keyed.deployment
    token = create_key(api, "assets:write", name="short-lived")
    path = unique("t")
    stored(api.client, path, headers=bearer(token))
    listing = json.loads(cli_ok(api, "keys", "list", "--json", "--config", str(api.server.config_path)))
    key_id = next(key["id"] for key in listing if key["name"] == "short-lived")
    revoked = cli_ok(api, "keys", "revoke", str(key_id), "--config", str(api.server.config_path))
    assert f"revoked API key {key_id}" in revoked
    eventually(lambda: upload(api.client, path, headers=bearer(token)).status_code, 401)
    before = settled_snapshot(api)
    assert_refused(upload(api.client, path, headers=bearer(token)), 401, "revoked_api_key")
    assert settled_snapshot(api) == before
    stored(api.client, path, headers=bearer(keyed.writer))
    missing = run_cli(api, "keys", "revoke", "999999", "--config", str(api.server.config_path))
    assert missing.returncode == 1


def test_keys_list_shows_keys_but_never_the_keys_themselves(keyed: Keys) -> None:
    api = keyed.deployment
    table = cli_ok(api, "keys", "list", "--config", str(api.server.config_path))
    assert table.splitlines()[0].split()[:3] == ["ID", "PREFIX", "STATUS"]
    for token in (keyed.writer, keyed.reader, keyed.admin, keyed.limited):
        assert token not in table
        assert token[:11] in table
    assert keyed.limited_prefix in table
    stored_hashes = api.query("SELECT token_hash FROM api_key")
    assert all(len(row[0]) == 32 for row in stored_hashes)
    assert hashlib.sha256(keyed.writer.encode()).digest() in {bytes(row[0]) for row in stored_hashes}


def test_key_only_paths_refuse_anonymous_reads(keyed: Keys) -> None:
    api = keyed.deployment
    private = unique("private")
    stored(api.client, private, headers=bearer(keyed.writer))
    for tail in ("/-/link", "/-/content", "/-/metadata"):
        assert_refused(api.client.get(f"/assets{private}{tail}"), 401, "missing_api_key")
        assert api.client.get(f"/assets{private}{tail}", headers=bearer(keyed.reader)).status_code == 200
        assert api.client.get(f"/assets{private}{tail}", headers={"X-API-Key": keyed.admin}).status_code == 200
    assert_refused(api.client.get(f"/assets{private}/-/link", headers=bearer(keyed.writer)), 403, "insufficient_scope")
    assert_refused(api.client.get(f"/assets{private}/-/link", headers=bearer("ke_nope")), 401, "invalid_api_key")
    public = unique("t")
    stored(api.client, public, headers=bearer(keyed.writer))
    assert api.client.get(f"/assets{public}/-/content").status_code == 200
    assert_still_serving(api)


def test_bad_arguments_to_keys_create_are_refused(keyed: Keys) -> None:
    api = keyed.deployment
    config = str(api.server.config_path)
    bad_prefix = run_cli(api, "keys", "create", "--scope", "assets:write", "--prefix", "/a//b", "--config", config)
    assert bad_prefix.returncode == 2
    assert "empty segment" in bad_prefix.stderr
    bad_scope = run_cli(api, "keys", "create", "--scope", "assets:everything", "--config", config)
    assert bad_scope.returncode == 2


# --- the service's own URLs under signing, and caching of key-only answers -------------------


def test_links_and_redirects_to_our_own_content_are_signed(signed_api: Deployment) -> None:
    path = unique("selfsigned")
    stored(signed_api.client, path)
    link = signed_api.client.get(signed(f"/assets{path}/-/link?w=10"))
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    assert "&s=" in url or "?s=" in url
    followed = httpx.get(url, timeout=30)
    assert followed.status_code == 200
    assert followed.headers["content-type"] == "image/png"
    redirect = signed_api.client.get(signed(f"/assets{path}/-/redirect"))
    assert redirect.status_code == 307
    assert httpx.get(redirect.headers["location"], timeout=30).status_code == 200


def test_key_only_answers_never_enter_a_shared_cache(keyed: Keys) -> None:
    api = keyed.deployment
    private = unique("private")
    stored(api.client, private, headers=bearer(keyed.writer))
    pinned = api.client.get(f"/assets{private}/-/entry/0/content", headers=bearer(keyed.reader))
    assert pinned.headers["cache-control"] == "private, max-age=31536000, immutable"
    newest = api.client.get(f"/assets{private}/-/metadata", headers=bearer(keyed.reader))
    assert newest.headers["cache-control"].startswith("private, ")
    public = unique("t")
    stored(api.client, public, headers=bearer(keyed.writer))
    assert api.client.get(f"/assets{public}/-/metadata").headers["cache-control"].startswith("public, ")


def test_401_names_the_scheme(keyed: Keys) -> None:
    refused = keyed.deployment.client.get(f"/assets{unique('private')}/-/metadata")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
