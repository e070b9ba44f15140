"""The operator's entry points, run as real processes: `--version`, `check-config`, `migrate` and `serve`.

Configuration errors name the offending key as a dotted path and stop the process with a
non-zero exit; `migrate` is idempotent; the embedded PostgreSQL keeps its data across restarts.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.cli import assert_refused, check_config, cli_env, run_cli, stop_leftover_postgres, write
from tests.support.images import make_image
from tests.support.server import RunningServer
from tests.support.services import PostgresService, free_port

# Spec 05 section 5, verbatim.
SPEC_TOML = """
[http]
public-url = "https://img.example.com"        # base of Location and link URLs

[data-store]
provider = "postgresql"                       # or "in-memory"; DATABASE_URL overrides the connection
[data-store.postgresql]
host = "localhost"
port = 5432
database = "konifer"
user = "postgres"                             # PG_USER
password = ""                                 # PG_PASSWORD

[object-store]
provider = "filesystem"                       # "s3", "filesystem", "in-memory"
[object-store.s3]
endpoint-url = "http://127.0.0.1:9000"
region = "us-east-1"
access-key = "..."
secret-key = "..."                            # S3_SECRET_KEY
force-path-style = true
[object-store.filesystem]
mount-path = "/var/lib/konifer"

[source.url]
allowed-domains = ["images.example.com"]
max-bytes = 104857600
[source.multipart]
max-bytes = 104857600

[url-signing]
enabled = false
algorithm = "hmac_sha256"                     # hmac_sha384, hmac_sha512
secret-key = "..."                            # URL_SIGNING_SECRET_KEY

[variant-generation]
workers = 2                                   # default: CPU cores
queue-size = 1000                             # renders waiting beyond this: 503 with Retry-After

[variant-profiles.thumbnail]
w = 128
fit = "fill"
r = "auto"

[paths."/**"]                                 # the root of inheritance
allowed-content-types = ["image/jpeg", "image/png"]
image.lqip = ["blurhash", "thumbhash"]
object-store.bucket = "assets"

[paths."/users/*/profile-picture".transform]
eager-variants = ["thumbnail"]

[paths."/users/**".cache-control]
enabled = true
visibility = "public"
max-age = 31536000
immutable = true

[paths."/private/**".return-format.redirect]
strategy = "presigned"                        # none | presigned | template
presigned.ttl = "30m"

[paths."/public/**".return-format.redirect]
strategy = "template"
template.string = "https://{bucket}.cdn.example.com/{key}"
"""

# Konifer's current HOCON layout (docs/configuration.md); the signing secret comes from the environment.
HOCON_MAP = """
http { public-url = "https://img.example.com" }

data-store {
  provider = postgresql
  postgresql { host = db.internal, user = konifer }
}

object-store {
  provider = s3
  s3 {
    endpoint-url = "http://127.0.0.1:9000"
    region = us-east-1
    access-key = minio
    force-path-style = true
  }
}

source.url.allowed-domains = [images.example.com]
url-signing { enabled = true, algorithm = hmac_sha256 }
variant-generation { workers = 4, queue-size = 1000 }

variant-profiles {
  thumbnail { w = 128, fit = fill, r = auto }
}

paths {
  "/**" {
    allowed-content-types = ["image/jpeg", "image/png", "image/webp"]
    image.lqip = [blurhash, thumbhash]
  }
  "/users/*/profile-picture" { transform.eager-variants = [thumbnail] }
  "/users/**" {
    cache-control { enabled = true, visibility = public, max-age = 31536000, immutable = true }
  }
  "/private/**" { return-format.redirect { strategy = presigned, presigned.ttl = 30m } }
  "/public/**" {
    return-format.redirect {
      strategy = template
      template.string = "https://{bucket}.cdn.example.com/{key}"
    }
  }
}
"""

# Konifer's older list form with the older key placements.
HOCON_LIST = """
paths = [
  { path = "/**", allowed-content-types = ["image/jpeg", "image/png"], lqip = [blurhash] }
  { path = "/users/*/profile-picture", bucket = profile-pictures, eager-variants = [thumbnail] }
]
variant-profiles = [
  { name = thumbnail, w = 128, fit = fill }
]
"""


# -- --version -------------------------------------------------------------------------------------


def test_version_prints_the_installed_package_version(tmp_path: Path) -> None:
    expected = f"konifer-edge {importlib.metadata.version('konifer-edge')}"
    by_module = run_cli("--version", cwd=tmp_path)
    assert by_module.returncode == 0, by_module.stderr
    assert by_module.stdout.strip() == expected
    # The console script the package installs answers the same.
    script = Path(sys.executable).with_name("konifer-edge")
    by_script = subprocess.run(
        [str(script), "--version"], cwd=tmp_path, env=cli_env(None), capture_output=True, text=True, timeout=60
    )
    assert by_script.returncode == 0, by_script.stderr
    assert by_script.stdout.strip() == expected


# -- check-config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "env"),
    [
        ("konifer.toml", SPEC_TOML, {}),
        ("konifer.conf", HOCON_MAP, {"URL_SIGNING_SECRET_KEY": "a-secret"}),
        ("konifer.conf", HOCON_LIST, {}),
        ("konifer.toml", "", {}),
        ("konifer.conf", "", {}),
    ],
    ids=["spec-toml", "hocon-map", "hocon-list", "empty-toml", "empty-hocon"],
)
def test_check_config_accepts_valid_files(tmp_path: Path, name: str, text: str, env: dict[str, str]) -> None:
    result = check_config(tmp_path, name, text, env)

    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower()


BAD_CONFIGS = [
    ("unknown-top-level", "konifer.toml", '[objectstore]\nprovider = "s3"\n', "objectstore"),
    (
        "unknown-nested",
        "konifer.toml",
        '[paths."/users/**".cache-control]\nenabled = true\nmaxage = 5\n',
        "paths./users/**.cache-control.maxage",
    ),
    ("unknown-hocon", "konifer.conf", "source { url { allowed-domain = [a.example] } }\n", "source.url.allowed-domain"),
    ("bad-enum-provider", "konifer.toml", '[object-store]\nprovider = "gcs"\n', "object-store.provider"),
    (
        "bad-enum-strategy",
        "konifer.toml",
        '[paths."/a/**".return-format.redirect]\nstrategy = "sometimes"\n',
        "paths./a/**.return-format.redirect.strategy",
    ),
    (
        "bad-enum-hocon-list",
        "konifer.conf",
        'paths = [ { path = "/a/**", cache-control { visibility = everyone } } ]\n',
        "paths./a/**.cache-control.visibility",
    ),
    ("upload-ruleset", "konifer.toml", '[upload-ruleset]\nname = "faces"\n', "upload-ruleset"),
    ("rule-definitions", "konifer.conf", "rule-definitions = [ { name = faces } ]\n", "rule-definitions"),
    (
        "upload-ruleset-in-path",
        "konifer.conf",
        'paths { "/a/**" { upload-ruleset = faces } }\n',
        "paths./a/**.upload-ruleset",
    ),
    (
        "presigned-ttl-over-7d",
        "konifer.toml",
        '[paths."/private/**".return-format.redirect]\nstrategy = "presigned"\npresigned.ttl = "8d"\n',
        "paths./private/**.return-format.redirect.presigned.ttl",
    ),
    (
        "presigned-ttl-over-7d-hocon",
        "konifer.conf",
        'paths { "/p/**" { return-format.redirect { strategy = presigned, presigned.ttl = "7d 1s" } } }\n',
        "paths./p/**.return-format.redirect.presigned.ttl",
    ),
    (
        "javascript-template",
        "konifer.toml",
        '[paths."/public/**".return-format.redirect]\nstrategy = "template"\n'
        'template.string = "javascript:alert(1)//{bucket}/{key}"\n',
        "paths./public/**.return-format.redirect.template.string",
    ),
    (
        "javascript-template-mixed-case",
        "konifer.toml",
        '[paths."/public/**".return-format.redirect]\nstrategy = "template"\n'
        'template.string = " JavaScript:alert(1)//{key}"\n',
        "paths./public/**.return-format.redirect.template.string",
    ),
    (
        "vbscript-template",
        "konifer.toml",
        '[paths."/**".return-format.redirect]\nstrategy = "template"\ntemplate.string = "vbscript:x/{key}"\n',
        "paths./**.return-format.redirect.template.string",
    ),
    (
        "data-template",
        "konifer.toml",
        '[paths."/**".return-format.redirect]\nstrategy = "template"\ntemplate.string = "data:text/html,{key}"\n',
        "paths./**.return-format.redirect.template.string",
    ),
    ("negative-max-age", "konifer.toml", '[paths."/u/**".cache-control]\nmax-age = -5\n', "paths./u/**.cache-control"),
    (
        "unknown-profile",
        "konifer.toml",
        '[paths."/u/**".transform]\neager-variants = ["missing"]\n',
        "paths./u/**.transform.eager-variants",
    ),
    ("partial-wildcard", "konifer.toml", '[paths."/users/a*"]\nobject-store.bucket = "users"\n', "paths./users/a*"),
    (
        "bad-bucket",
        "konifer.toml",
        '[paths."/u/**"]\nobject-store.bucket = "Not_A_Bucket"\n',
        "paths./u/**.object-store.bucket",
    ),
    (
        "alias-and-canonical-together",
        "konifer.conf",
        'paths { "/u/**" { bucket = one-bucket, object-store.bucket = two-bucket } }\n',
        "paths./u/**",
    ),
    (
        "calendar-duration",
        "konifer.toml",
        '[paths."/p/**".return-format.redirect]\nstrategy = "presigned"\npresigned.ttl = "1 month"\n',
        "paths./p/**.return-format.redirect.presigned.ttl",
    ),
    ("signing-without-secret", "konifer.toml", "[url-signing]\nenabled = true\n", "url-signing.secret-key"),
    ("not-toml", "konifer.toml", "[paths\n", "konifer.toml"),
]


@pytest.mark.parametrize(("name", "text", "key"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_names_the_offending_key(tmp_path: Path, name: str, text: str, key: str) -> None:
    assert_refused(check_config(tmp_path, name, text), key)


def test_check_config_accepts_a_presigned_ttl_of_exactly_seven_days(tmp_path: Path) -> None:
    text = '[paths."/private/**".return-format.redirect]\nstrategy = "presigned"\npresigned.ttl = "7d"\n'

    result = check_config(tmp_path, "konifer.toml", text)

    assert result.returncode == 0, result.stderr


def test_check_config_refuses_an_upload_ruleset_outside_a_path(tmp_path: Path) -> None:
    result = check_config(tmp_path, "konifer.toml", '[upload-ruleset]\nname = "faces"\n')

    assert_refused(result, "upload-ruleset")
    assert "unknown key" in result.stderr


def test_check_config_names_the_environment_variable_behind_a_bad_value(tmp_path: Path) -> None:
    result = check_config(tmp_path, "konifer.toml", "", env={"DATABASE_URL": "mysql://somewhere/db"})

    assert_refused(result, "data-store.postgresql.url")
    assert "DATABASE_URL" in result.stderr


def test_check_config_follows_hocon_includes_and_substitutions(tmp_path: Path) -> None:
    bad = 'paths { "/users/**" { cache-control { enabled = true, visibility = sometimes } } }\n'
    write(tmp_path, "paths.conf", bad)
    main = 'include "paths.conf"\nhttp.public-url = ${?KONIFER_TEST_PUBLIC_URL}\n'

    # The included file is read: its bad value is reported under its key.
    assert_refused(check_config(tmp_path, "konifer.conf", main), "paths./users/**.cache-control.visibility")

    write(tmp_path, "paths.conf", bad.replace("sometimes", "public"))
    plain = check_config(tmp_path, "konifer.conf", main)
    assert plain.returncode == 0, plain.stderr
    good = check_config(tmp_path, "konifer.conf", main, env={"KONIFER_TEST_PUBLIC_URL": "https://img.example.com"})
    assert good.returncode == 0, good.stderr
    # The substitution is read too: a bad value from the environment is reported under the key it sets.
    result = check_config(tmp_path, "konifer.conf", main, env={"KONIFER_TEST_PUBLIC_URL": "ftp://img.example.com"})
    assert_refused(result, "http.public-url")


def test_check_config_on_a_missing_file_fails(tmp_path: Path) -> None:
    result = run_cli("check-config", str(tmp_path / "absent.toml"), cwd=tmp_path)

    assert result.returncode != 0
    assert "absent.toml" in result.stderr


# -- migrate ---------------------------------------------------------------------------------------


@pytest.fixture
def fresh_database(postgres: PostgresService) -> Iterator[str]:
    name = f"konifer_cli_{uuid.uuid4().hex[:12]}"
    dsn = postgres.create_database(name)
    try:
        yield dsn
    finally:
        postgres.drop_database(name)


def query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    return asyncio.run(run())


def tables(dsn: str) -> set[str]:
    return {row[0] for row in query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_migrate_applies_once_then_has_nothing_to_apply(tmp_path: Path, fresh_database: str) -> None:
    assert tables(fresh_database) == set()

    env = {"DATABASE_URL": fresh_database}
    first = run_cli("migrate", "--data-dir", str(tmp_path / "data"), cwd=tmp_path, env=env)

    assert first.returncode == 0, first.stderr
    assert "0001" in first.stdout
    assert {"asset", "asset_path", "variant", "pending_object_deletion"} <= tables(fresh_database)
    applied = query(fresh_database, "SELECT version, name, applied_at FROM schema_migration ORDER BY version")
    assert applied

    second = run_cli("migrate", "--data-dir", str(tmp_path / "data"), cwd=tmp_path, env=env)

    assert second.returncode == 0, second.stderr
    assert "nothing" in second.stdout.lower()
    assert ".sql" not in second.stdout
    assert query(fresh_database, "SELECT version, name, applied_at FROM schema_migration ORDER BY version") == applied
    # DATABASE_URL was used: no embedded PostgreSQL was started under the data directory.
    assert not (tmp_path / "data" / "postgres").exists()


def test_migrate_reads_the_database_from_the_config_file(tmp_path: Path, fresh_database: str) -> None:
    config = write(tmp_path, "konifer.toml", f'[data-store.postgresql]\nurl = "{fresh_database}"\n')

    result = run_cli("migrate", "--config", str(config), "--data-dir", str(tmp_path / "data"), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "asset" in tables(fresh_database)


# -- serve -----------------------------------------------------------------------------------------


def test_serve_exits_non_zero_on_a_configuration_error(tmp_path: Path) -> None:
    config = write(tmp_path, "konifer.toml", '[paths."/users/**".cache-control]\nmaxage = 60\n')

    result = run_cli(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        "--config",
        str(config),
        cwd=tmp_path,
    )

    assert_refused(result, "paths./users/**.cache-control.maxage")


def test_serve_exits_non_zero_on_a_refused_key_in_hocon(tmp_path: Path) -> None:
    config = write(
        tmp_path, "konifer.conf", "upload-ruleset { name = faces }\nobject-store { provider = filesystem }\n"
    )

    result = run_cli(
        "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), "--config", str(config), cwd=tmp_path
    )

    assert_refused(result, "upload-ruleset")


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    # Outside pytest's basetemp: as root, pgserver makes every parent of its directory traversable
    # by its own user, and pytest keeps basetemp at 0700.
    root = Path(tempfile.mkdtemp(prefix="konifer-embedded-"))
    try:
        yield root / "data"
    finally:
        stop_leftover_postgres(root / "data" / "postgres")
        shutil.rmtree(root, ignore_errors=True)


def test_embedded_postgres_keeps_assets_across_a_restart(embedded_data_dir: Path) -> None:
    config = embedded_data_dir.parent / "konifer.toml"
    config.write_text('[object-store]\nprovider = "filesystem"\n')
    server = RunningServer(embedded_data_dir, config, env={"DATABASE_URL": "", "IN_MEMORY": ""}, startup_timeout=120)
    image = make_image("png", 30, 20)
    metadata = {"alt": "kept", "labels": {"phone": "iphone"}, "tags": ["t"]}
    path = "/restart/user/1"

    with server:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            stored = client.post(
                f"/assets{path}",
                files={
                    "metadata": (None, json.dumps(metadata), "application/json"),
                    "asset": ("a.png", image, "image/png"),
                },
            )
        assert stored.status_code == 201, stored.text
    # The metadata lives in the embedded PostgreSQL under the data directory.
    assert (embedded_data_dir / "postgres").is_dir()

    with server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        content = client.get(f"/assets{path}/-/content")
        fetched = client.get(f"/assets{path}/-/metadata").json()
        again = client.post(
            f"/assets{path}",
            files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", image, "image/png")},
        )

    assert content.status_code == 200
    assert content.content == image
    assert fetched["entryId"] == stored.json()["entryId"]
    assert fetched["createdAt"] == stored.json()["createdAt"]
    assert (fetched["alt"], fetched["labels"], fetched["tags"]) == ("kept", {"phone": "iphone"}, ["t"])
    # The per-path entry counter survived as well: ids go on, never restart.
    assert again.status_code == 201, again.text
    assert again.json()["entryId"] == stored.json()["entryId"] + 1


def _store_png(client: httpx.Client, path: str, width: int, height: int) -> int:
    """Store a PNG at ``path``; its entry id."""
    stored = client.post(
        f"/assets{path}",
        files={
            "metadata": (None, "{}", "application/json"),
            "asset": ("a.png", make_image("png", width, height), "image/png"),
        },
    )
    assert stored.status_code == 201, stored.text
    entry: int = stored.json()["entryId"]
    return entry


def test_a_second_node_on_an_embedded_database_hears_of_its_writes(embedded_data_dir: Path) -> None:
    """Another node may be pointed at a node's embedded PostgreSQL (the bench's second server is): the
    embedded node's writes must reach it as they would through any shared database."""
    objects = embedded_data_dir.parent / "objects"
    config = embedded_data_dir.parent / "konifer.toml"
    config.write_text(f'[object-store.filesystem]\nmount-path = "{objects}"\n')
    owner = RunningServer(embedded_data_dir, config, env={"DATABASE_URL": "", "IN_MEMORY": ""}, startup_timeout=120)
    path = "/shared-embedded/user/1"
    newest = f"/assets{path}/-/metadata"
    with owner, httpx.Client(base_url=owner.base_url, timeout=30) as writer:
        _store_png(writer, path, 30, 20)
        dsn = f"postgresql://postgres:@/postgres?host={embedded_data_dir / 'postgres'}"
        other = RunningServer(
            embedded_data_dir.parent / "other", config, env={"DATABASE_URL": dsn, "IN_MEMORY": ""}, startup_timeout=120
        )
        with other, httpx.Client(base_url=other.base_url, timeout=30) as reader:
            for _ in range(2):  # the second answer is the recorded one
                assert reader.get(newest).json()["entryId"] == 0
            entry = _store_png(writer, path, 30, 20)
            deadline = time.monotonic() + 10
            while reader.get(newest).json()["entryId"] != entry:
                assert time.monotonic() < deadline, "the second node kept serving the old newest"
                time.sleep(0.01)


def test_an_embedded_node_renders_a_variant_once_across_its_workers(embedded_data_dir: Path) -> None:
    config = embedded_data_dir.parent / "konifer.toml"
    config.write_text('[object-store]\nprovider = "filesystem"\n')
    server = RunningServer(
        embedded_data_dir,
        config,
        env={"DATABASE_URL": "", "IN_MEMORY": ""},
        startup_timeout=120,
        extra_args=("--workers", "2"),
    )
    path = "/alone/user/1"
    with server:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            _store_png(client, path, 300, 200)
        url = f"{server.base_url}/assets{path}/-/content?w=77&format=webp"

        def fetch(_: int) -> str:
            # A new connection each, so that either worker may take it.
            answer = httpx.get(url, timeout=60)
            assert answer.status_code == 200, answer.text
            return answer.headers["K-Cache-Status"]

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(fetch, range(8)))
        listed = httpx.get(f"{server.base_url}/assets{path}/-/metadata", timeout=30).json()["variants"]
    # The workers of a node alone on its database share file locks, not the database's.
    assert statuses.count("miss") == 1, statuses
    assert len(listed) == 2
    assert (embedded_data_dir / "render-locks").is_dir()
