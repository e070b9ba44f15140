"""`konifer-edge sweep`: orphans (objects no variant row names) go, referenced objects stay.

Orphans are planted straight into the object store, the way a crash between an object's put and
its row's insert leaves them. The sweep runs as the operator runs it, a process next to a serving
server, reading the server's configuration file and database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.server import CONFIG_VARIABLES
from tests.support.services import PostgresService, S3Service

REPO_ROOT = Path(__file__).resolve().parents[2]
TWO_HOURS = 2 * 3600


def run_sweep(deployment: Deployment, *args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env["DATABASE_URL"] = dsn or deployment.dsn
    return subprocess.run(
        [sys.executable, "-m", "konifer_edge", "sweep", "--config", str(deployment.root / "konifer.toml"),
         "--data-dir", str(deployment.root / "data"), *args],
        cwd=deployment.root, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    print(result.stdout, result.stderr, sep="\n")  # shown with any later failure of the test
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def store_with_variant(deployment: Deployment, path: str) -> set[tuple[str, str]]:
    """Store an image and render one variant of it; the (bucket, key) of both objects."""
    stored = deployment.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, "{}", "application/json"),
            "asset": ("a.png", make_image("png", 40, 30), "image/png"),
        },
    )
    assert stored.status_code == 201, stored.text
    rendered = deployment.client.get(f"/assets{path}/-/content?w=12&format=webp")
    assert rendered.status_code == 200, rendered.text
    rows = deployment.query(
        "SELECT v.bucket, v.store_key FROM variant v JOIN asset a ON a.id = v.asset_id WHERE a.path = $1", path
    )
    assert len(rows) == 2
    return {(bucket, key) for bucket, key in rows}


def referenced_objects(deployment: Deployment) -> set[tuple[str, str]]:
    return {(bucket, key) for bucket, key in deployment.query("SELECT bucket, store_key FROM variant")}


def queue_removal(deployment: Deployment, bucket: str, key: str) -> None:
    """A queued removal that is not due for a day: only a sweep retries it now."""
    deployment.query(
        "INSERT INTO pending_object_deletion (bucket, store_key, attempts, next_attempt_at, last_error)"
        " VALUES ($1, $2, 7, now() + interval '1 day', 'store unreachable')",
        bucket,
        key,
    )


def queued(deployment: Deployment) -> set[tuple[str, str]]:
    return {(b, k) for b, k in deployment.query("SELECT bucket, store_key FROM pending_object_deletion")}


def orphan_key() -> str:
    return str(uuid.uuid4())


# -- filesystem store ------------------------------------------------------------------------------

FS_CONFIG = """
[paths."/**"]
object-store.bucket = "assets"

[paths."/other/**"]
object-store.bucket = "other-bucket"
"""


@pytest.fixture(scope="module")
def fs_node(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    deployment = Deployment(
        tmp_path_factory.mktemp("sweep-fs"),
        FS_CONFIG,
        store="filesystem",
        postgres=postgres,
        # Nothing in the background may race the sweep for the queue during these tests.
        env={"KONIFER_EDGE_PURGE_INTERVAL": "3600"},
    ).start()
    try:
        yield deployment
    finally:
        deployment.stop()


def plant_file(deployment: Deployment, bucket: str, key: str, *, age_seconds: float) -> Path:
    """An object written behind the server's back, last modified `age_seconds` ago."""
    path = deployment.root / "data" / "objects" / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"orphaned bytes " + key.encode())
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_dry_run_reports_orphans_and_removes_nothing(fs_node: Deployment) -> None:
    store_with_variant(fs_node, f"/sweep/{uuid.uuid4().hex[:8]}/a")
    old, young = orphan_key(), orphan_key()
    plant_file(fs_node, "assets", old, age_seconds=TWO_HOURS)
    plant_file(fs_node, "assets", young, age_seconds=0)
    before = fs_node.snapshot()

    out = succeeded(run_sweep(fs_node, "--dry-run"))

    assert fs_node.snapshot() == before
    assert f"orphan   assets/{old}" in out
    assert f"young    assets/{young}" in out
    assert "dry run: nothing removed" in out
    for bucket, key in referenced_objects(fs_node):
        assert key not in out, f"a referenced object was reported: {bucket}/{key}"


def test_sweep_removes_old_orphans_and_keeps_every_referenced_object(fs_node: Deployment) -> None:
    mine = store_with_variant(fs_node, f"/sweep/{uuid.uuid4().hex[:8]}/b")
    theirs = store_with_variant(fs_node, f"/other/{uuid.uuid4().hex[:8]}/b")
    old, old_other, young = orphan_key(), orphan_key(), orphan_key()
    plant_file(fs_node, "assets", old, age_seconds=TWO_HOURS)
    plant_file(fs_node, "other-bucket", old_other, age_seconds=TWO_HOURS)
    young_path = plant_file(fs_node, "assets", young, age_seconds=0)

    out = succeeded(run_sweep(fs_node))

    objects = set(fs_node.stored_objects())
    assert ("assets", old) not in objects
    assert ("other-bucket", old_other) not in objects
    assert young_path.exists(), "an object younger than --min-age may belong to a store in flight"
    assert mine | theirs <= objects
    assert referenced_objects(fs_node) <= objects
    assert f"removed  assets/{old}" in out
    assert f"removed  other-bucket/{old_other}" in out
    # What the sweep left is still served.
    for bucket, key in mine:
        assert fs_node.read_object(bucket, key)

    # Once old enough (here: no minimum age at all), the young orphan goes too.
    succeeded(run_sweep(fs_node, "--min-age", "0s"))
    assert not young_path.exists()
    assert referenced_objects(fs_node) <= set(fs_node.stored_objects())


def test_bucket_option_limits_the_sweep_to_the_named_buckets(fs_node: Deployment) -> None:
    in_assets, in_other = orphan_key(), orphan_key()
    assets_path = plant_file(fs_node, "assets", in_assets, age_seconds=TWO_HOURS)
    other_path = plant_file(fs_node, "other-bucket", in_other, age_seconds=TWO_HOURS)

    out = succeeded(run_sweep(fs_node, "--bucket", "other-bucket"))

    assert not other_path.exists()
    assert assets_path.exists()
    assert "bucket assets" not in out
    succeeded(run_sweep(fs_node, "--bucket", "assets", "--bucket", "other-bucket"))
    assert not assets_path.exists()


def test_queued_removals_are_retried_now_and_their_objects_are_not_orphans(fs_node: Deployment) -> None:
    # What a delete commits when the object store was down: the rows are gone, the objects queued.
    doomed = orphan_key()
    doomed_path = plant_file(fs_node, "assets", doomed, age_seconds=TWO_HOURS)
    gone_already = orphan_key()
    queue_removal(fs_node, "assets", doomed)
    queue_removal(fs_node, "assets", gone_already)

    dry = succeeded(run_sweep(fs_node, "--dry-run"))

    assert "queued removals: 2 would be retried now" in dry
    assert doomed not in dry, "an object whose removal is queued is not an orphan"
    assert doomed_path.exists()
    assert queued(fs_node) == {("assets", doomed), ("assets", gone_already)}

    out = succeeded(run_sweep(fs_node))

    assert "queued removals: 2 retried, 2 removed, 0 failed" in out
    assert not doomed_path.exists()
    assert queued(fs_node) == set()


def test_a_bucket_no_variant_names_is_never_emptied(fs_node: Deployment) -> None:
    lonely = plant_file(fs_node, "lonely-bucket", orphan_key(), age_seconds=TWO_HOURS)

    result = run_sweep(fs_node, "--bucket", "lonely-bucket", "--min-age", "0s")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "refused: no object in bucket 'lonely-bucket' is referenced" in result.stdout
    assert lonely.exists()


def test_a_database_without_the_schema_is_refused(fs_node: Deployment, postgres: PostgresService) -> None:
    name = f"konifer_sweep_{uuid.uuid4().hex[:10]}"
    empty = postgres.create_database(name)
    orphan = plant_file(fs_node, "assets", orphan_key(), age_seconds=TWO_HOURS)
    try:
        result = run_sweep(fs_node, "--min-age", "0s", dsn=empty)
    finally:
        postgres.drop_database(name)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "schema" in result.stderr
    assert orphan.exists()


def test_an_unreachable_database_is_refused_without_a_traceback(fs_node: Deployment) -> None:
    result = run_sweep(fs_node, "--dry-run", dsn="postgresql://nobody@127.0.0.1:1/none")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot use the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_in_memory_stores_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "konifer.toml"
    config.write_text('[object-store]\nprovider = "in-memory"\n')
    env = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"

    result = subprocess.run(
        [sys.executable, "-m", "konifer_edge", "sweep", "--config", str(config), "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip

    assert result.returncode == 2
    assert "in-memory object store" in result.stderr


# -- S3 --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_node(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service
) -> Iterator[tuple[Deployment, str]]:
    """A server on S3, and its bucket."""
    # A bucket of its own: the suite's other S3 servers share "assets", and their objects are
    # orphans from this server's point of view.
    bucket = f"sweep-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(bucket)
    deployment = Deployment(
        tmp_path_factory.mktemp("sweep-s3"),
        f'[paths."/**"]\nobject-store.bucket = "{bucket}"\n',
        store="s3",
        postgres=postgres,
        s3=s3,
        env={"KONIFER_EDGE_PURGE_INTERVAL": "3600"},
    ).start()
    try:
        yield deployment, bucket
    finally:
        deployment.stop()


def test_sweep_on_s3_uses_the_stores_last_modified_and_removes_only_orphans(
    s3_node: tuple[Deployment, str], s3: S3Service
) -> None:
    node, bucket = s3_node
    path = f"/sweep/{uuid.uuid4().hex[:8]}/s3"
    kept = store_with_variant(node, path)
    orphan, doomed = orphan_key(), orphan_key()
    s3.client().put_object(Bucket=bucket, Key=orphan, Body=b"orphaned")
    s3.client().put_object(Bucket=bucket, Key=doomed, Body=b"deleted while the store was down")
    queue_removal(node, bucket, doomed)

    def keys() -> set[str]:
        return set(s3.list_keys(bucket))

    dry = succeeded(run_sweep(node, "--dry-run", "--min-age", "0s"))
    assert f"orphan   {bucket}/{orphan}" in dry
    assert {orphan, doomed} | {key for _, key in kept} <= keys()
    assert queued(node) == {(bucket, doomed)}

    # S3 reports the orphan as just written: with the default minimum age of an hour it stays.
    young = succeeded(run_sweep(node))
    assert f"young    {bucket}/{orphan}" in young
    assert orphan in keys()
    assert doomed not in keys(), "the queued removal is retried at once, backoff or not"
    assert queued(node) == set()

    out = succeeded(run_sweep(node, "--min-age", "0s"))
    assert f"removed  {bucket}/{orphan}" in out
    assert keys() == {key for _, key in kept} == {key for _, key in referenced_objects(node)}
    assert node.client.get(f"/assets{path}/-/content").status_code == 200
    assert node.client.get(f"/assets{path}/-/content?w=12&format=webp").headers["K-Cache-Status"] == "hit"
