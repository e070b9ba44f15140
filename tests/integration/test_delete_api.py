"""DELETE /assets/{path}/-/...: every selector of spec 02 and spec 05 section 1, narrowed by labels.

Delete is idempotent (204 whether or not anything matched); rows go at once, the objects of
deleted entries go shortly after through the durable `pending_object_deletion` queue. Selectors
that make no sense on delete are 400 and leave every row and object as it was.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import pytest

from tests.support.deployment import Deployment, Snapshot
from tests.support.images import make_image
from tests.support.services import PostgresService

PNG = make_image("png", 20, 12)
# Object removal is asynchronous by design; this bounds how long a test waits for it.
REMOVAL_WAIT_SECONDS = 10.0


@pytest.fixture
def base() -> str:
    """A fresh subtree, for tests that need several related paths."""
    return f"/d/{uuid.uuid4().hex[:12]}"


def store(deployment: Deployment, path: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    response = deployment.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, json.dumps({"labels": labels or {}}), "application/json"),
            "asset": ("a.png", PNG, "image/png"),
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def store_many(deployment: Deployment, path: str, count: int) -> list[int]:
    return [store(deployment, path)["entryId"] for _ in range(count)]


def entry_ids(deployment: Deployment, path: str) -> list[int]:
    """Every entry at exactly `path`, ascending."""
    response = deployment.client.get(f"/assets{path}/-/metadata?limit=-1")
    assert response.status_code == 200, response.text
    return sorted(asset["entryId"] for asset in response.json())


def delete(deployment: Deployment, path: str, selector: str = "") -> None:
    response = deployment.client.delete(f"/assets{path}{selector}")
    assert response.status_code == 204, f"DELETE {path}{selector}: {response.status_code} {response.text}"
    assert response.content == b""


def object_of(asset: dict[str, Any]) -> tuple[str, str]:
    original = next(variant for variant in asset["variants"] if variant["isOriginalVariant"])
    return original["storeBucket"], original["storeKey"]


def pending_deletions(deployment: Deployment) -> int:
    count: int = deployment.query("SELECT count(*) FROM pending_object_deletion")[0][0]
    return count


def settle(deployment: Deployment) -> None:
    """Wait (bounded) until the reaper has nothing queued, so a snapshot is not taken mid-removal."""
    deadline = time.monotonic() + REMOVAL_WAIT_SECONDS
    while pending_deletions(deployment) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pending_deletions(deployment) == 0, "the object reaper did not drain its queue"


def state(deployment: Deployment) -> Snapshot:
    """Every row and object once the reaper is idle; `variant.last_accessed_at` left out, because
    the server writes access times of earlier requests in batches whenever its timer fires."""
    settle(deployment)
    snapshot = deployment.snapshot()
    columns = [
        row[0]
        for row in deployment.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'variant' ORDER BY ordinal_position"
        )
    ]
    volatile = columns.index("last_accessed_at")
    variants = [tuple(value for i, value in enumerate(row) if i != volatile) for row in snapshot.variants]
    return msgspec.structs.replace(snapshot, variants=variants)


def wait_until_removed(deployment: Deployment, objects: Iterable[tuple[str, str]]) -> None:
    doomed = set(objects)
    deadline = time.monotonic() + REMOVAL_WAIT_SECONDS
    while doomed & set(deployment.stored_objects()) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = doomed & set(deployment.stored_objects())
    assert not left, f"objects of deleted assets still stored after {REMOVAL_WAIT_SECONDS}s: {sorted(left)}"


def assert_objects_kept(deployment: Deployment, assets: Iterable[dict[str, Any]]) -> None:
    if deployment.store == "in-memory":
        return
    for asset in assets:
        bucket, key = object_of(asset)
        assert deployment.read_object(bucket, key) == PNG


# -- one entry, and the objects behind it --------------------------------------------------------


def test_delete_entry_removes_its_row_at_once_and_its_object_shortly_after(api: Deployment, path: str) -> None:
    assets = [store(api, path) for _ in range(3)]
    doomed, *kept = [assets[1], assets[0], assets[2]]

    delete(api, path, f"/-/entry/{doomed['entryId']}")

    # The row is gone before the answer arrives.
    assert api.client.get(f"/assets{path}/-/metadata/entry/{doomed['entryId']}").status_code == 404
    assert api.client.get(f"/assets{path}/-/entry/{doomed['entryId']}/content").status_code == 404
    assert api.client.get(f"/assets{path}/-/entry/{doomed['entryId']}").status_code == 404
    assert entry_ids(api, path) == sorted(asset["entryId"] for asset in kept)
    assert api.query("SELECT count(*) FROM variant WHERE store_key = $1", doomed["variants"][0]["storeKey"]) == [(0,)]
    if api.store != "in-memory":
        wait_until_removed(api, [object_of(doomed)])
    settle(api)
    assert_objects_kept(api, kept)
    for asset in kept:
        content = api.client.get(f"/assets{path}/-/entry/{asset['entryId']}/content")
        assert content.status_code == 200
        assert content.content == PNG


def test_delete_removes_the_objects_of_generated_variants_too(api: Deployment, path: str) -> None:
    stored = store(api, path)
    entry_id = stored["entryId"]
    for width in (8, 10):
        rendered = api.client.get(f"/assets{path}/-/entry/{entry_id}/content?w={width}")
        assert rendered.status_code == 200, rendered.text
    variants = api.client.get(f"/assets{path}/-/metadata/entry/{entry_id}").json()["variants"]
    assert len(variants) == 3
    objects = [(variant["storeBucket"], variant["storeKey"]) for variant in variants]
    if api.store != "in-memory":
        assert set(objects) <= set(api.stored_objects())

    delete(api, path, f"/-/entry/{entry_id}")

    assert api.client.get(f"/assets{path}/-/entry/{entry_id}/content?w=8").status_code == 404
    assert api.query("SELECT count(*) FROM variant WHERE store_key = ANY($1::text[])", [k for _, k in objects]) == [
        (0,)
    ]
    if api.store != "in-memory":
        wait_until_removed(api, objects)
    settle(api)


def test_pending_object_deletions_drain_once_the_reaper_has_run(api: Deployment, base: str) -> None:
    paths = [f"{base}/q0", f"{base}/q1", f"{base}/q1", f"{base}/q0/below"]
    assets = [store(api, p) for p in paths]

    delete(api, base, "/-/recursive")

    for asset_path, asset in zip(paths, assets, strict=True):
        assert api.client.get(f"/assets{asset_path}/-/metadata/entry/{asset['entryId']}").status_code == 404
    if api.store != "in-memory":
        wait_until_removed(api, [object_of(asset) for asset in assets])
    settle(api)
    assert api.query("SELECT bucket, store_key, attempts, last_error FROM pending_object_deletion") == []


@pytest.fixture(scope="module")
def own_fs(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[Deployment]:
    """A filesystem server of this module's own, for tests that crash it or break its store."""
    deployment = Deployment(
        tmp_path_factory.mktemp("delete-own"),
        '[paths."/**"]\nobject-store.bucket = "assets"\n',
        store="filesystem",
        postgres=postgres,
    ).start()
    try:
        yield deployment
    finally:
        deployment.stop()


def test_queued_object_removals_survive_a_crash(own_fs: Deployment, base: str) -> None:
    kept = store(own_fs, f"{base}/kept")
    doomed = store(own_fs, f"{base}/doomed")
    bucket, key = object_of(doomed)
    own_fs.server.kill()
    # What a delete commits, with the server gone before its reaper could act on it.
    own_fs.query(
        "INSERT INTO pending_object_deletion (bucket, store_key) SELECT bucket, store_key FROM variant"
        " WHERE store_key = $1",
        key,
    )
    own_fs.query("DELETE FROM asset WHERE path = $1", f"{base}/doomed")
    assert (bucket, key) in own_fs.stored_objects()

    own_fs.start()

    wait_until_removed(own_fs, [(bucket, key)])
    settle(own_fs)
    assert_objects_kept(own_fs, [kept])


def test_a_failed_object_removal_is_retried_until_gone(own_fs: Deployment, path: str) -> None:
    asset = store(own_fs, path)
    bucket, key = object_of(asset)
    on_disk = own_fs.root / "data" / "objects" / bucket / key
    # An obstacle the store cannot delete: the object's name is now a non-empty directory.
    on_disk.unlink()
    on_disk.mkdir()
    (on_disk / "obstacle").write_bytes(b"x")

    delete(own_fs, path, f"/-/entry/{asset['entryId']}")

    def queued() -> list[tuple[Any, ...]]:
        return own_fs.query(
            "SELECT attempts, last_error, next_attempt_at <= now() FROM pending_object_deletion WHERE store_key = $1",
            key,
        )

    deadline = time.monotonic() + REMOVAL_WAIT_SECONDS
    while not (queued() and queued()[0][0] >= 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    ((attempts, last_error, _),) = queued()
    assert attempts >= 1
    assert last_error
    assert on_disk.exists()

    # The obstacle goes away; the object is a plain file again, and must still be removed.
    shutil.rmtree(on_disk)
    on_disk.write_bytes(PNG)
    deadline = time.monotonic() + REMOVAL_WAIT_SECONDS
    # The reaper retries by itself once the removal is due; it may have done so already.
    while (rows := queued()) and not rows[0][2] and time.monotonic() < deadline:
        time.sleep(0.05)
    # Another delete wakes the reaper now rather than at its next idle round.
    other = store(own_fs, f"{path}/other")
    delete(own_fs, f"{path}/other")

    wait_until_removed(own_fs, [(bucket, key), object_of(other)])
    settle(own_fs)
    assert not on_disk.exists()


# -- newest N, by creation and by modification ----------------------------------------------------


def test_delete_without_a_selector_removes_only_the_newest(fs_api: Deployment, path: str) -> None:
    ids = store_many(fs_api, path, 3)

    delete(fs_api, path)

    assert entry_ids(fs_api, path) == ids[:2]
    assert fs_api.client.get(f"/assets{path}/-/metadata").json()["entryId"] == ids[1]


@pytest.mark.parametrize(
    "selector",
    [
        "/-/new/2",
        "/-/created/2",
        "/-/2/new",
        "/-/new?limit=2",
        "/-/created?limit=2",
        "?limit=2",
        "/-/2",
    ],
)
def test_delete_newest_n(fs_api: Deployment, path: str, selector: str) -> None:
    ids = store_many(fs_api, path, 4)

    delete(fs_api, path, selector)

    assert entry_ids(fs_api, path) == ids[:2]


def test_delete_newest_n_larger_than_the_path_removes_what_is_there(fs_api: Deployment, path: str) -> None:
    store_many(fs_api, path, 2)

    delete(fs_api, path, "/-/new/5")

    assert entry_ids(fs_api, path) == []


def test_delete_modified_orders_by_modified_at(fs_api: Deployment, path: str) -> None:
    first, second, third, fourth = store_many(fs_api, path, 4)

    def touch(entry: int) -> None:
        # An older entry becomes the most recently modified one.
        assert fs_api.client.put(f"/assets{path}/-/entry/{entry}", json={"alt": "touched"}).status_code == 200

    touch(first)
    delete(fs_api, path, "/-/modified?limit=1")
    assert entry_ids(fs_api, path) == [second, third, fourth]

    touch(second)
    delete(fs_api, path, "/-/modified/1")
    assert entry_ids(fs_api, path) == [third, fourth]

    touch(third)
    delete(fs_api, path, "/-/modified")
    assert entry_ids(fs_api, path) == [fourth]


def test_delete_modified_two(fs_api: Deployment, path: str) -> None:
    oldest, middle, newest = store_many(fs_api, path, 3)
    assert fs_api.client.put(f"/assets{path}/-/entry/{oldest}", json={"alt": "touched"}).status_code == 200

    delete(fs_api, path, "/-/modified?limit=2")

    # By modification the order is oldest (just touched), newest, middle: the first two go.
    assert entry_ids(fs_api, path) == [middle]
    assert newest != middle


# -- everything at a path, and recursively ---------------------------------------------------------


@pytest.mark.parametrize(
    "selector",
    ["/-/all", "?limit=-1", "/-/new?limit=-1", "/-/created?limit=-1", "/-/modified?limit=-1"],
)
def test_delete_all_at_the_path_keeps_paths_below_and_beside(fs_api: Deployment, base: str, selector: str) -> None:
    target = f"{base}/b"
    store_many(fs_api, target, 3)
    below = store(fs_api, f"{target}/c")
    beside = store(fs_api, f"{base}/bc")
    above = store(fs_api, base)

    delete(fs_api, target, selector)

    assert entry_ids(fs_api, target) == []
    assert entry_ids(fs_api, f"{target}/c") == [below["entryId"]]
    assert entry_ids(fs_api, f"{base}/bc") == [beside["entryId"]]
    assert entry_ids(fs_api, base) == [above["entryId"]]


def test_delete_recursive_removes_the_path_and_everything_below_it_only(api: Deployment, base: str) -> None:
    doomed_paths = [f"{base}/a/b", f"{base}/a/b", f"{base}/a/b/c", f"{base}/a/b/c/d/e"]
    kept_paths = [f"{base}/a", f"{base}/a/bc", f"{base}/a/bc/d", f"{base}/a/b-x", f"{base}/a/c/b", f"{base}/ab"]
    doomed = [store(api, p) for p in doomed_paths]
    kept = [store(api, p) for p in kept_paths]

    delete(api, f"{base}/a/b", "/-/recursive")

    for doomed_path in set(doomed_paths):
        assert entry_ids(api, doomed_path) == [], doomed_path
    for kept_path, asset in zip(kept_paths, kept, strict=True):
        assert entry_ids(api, kept_path) == [asset["entryId"]], kept_path
    if api.store != "in-memory":
        wait_until_removed(api, [object_of(asset) for asset in doomed])
    settle(api)
    assert_objects_kept(api, kept)


def test_delete_recursive_treats_like_wildcards_in_the_path_literally(fs_api: Deployment, base: str) -> None:
    kept = store(fs_api, f"{base}/xzy/child")
    doomed = store(fs_api, f"{base}/x_y/child")

    delete(fs_api, f"{base}/x_y", "/-/recursive")

    assert entry_ids(fs_api, f"{base}/x_y/child") == []
    assert doomed["entryId"] not in entry_ids(fs_api, f"{base}/x_y/child")
    assert entry_ids(fs_api, f"{base}/xzy/child") == [kept["entryId"]]


def test_delete_recursive_on_a_leaf_removes_everything_at_it(fs_api: Deployment, path: str) -> None:
    store_many(fs_api, path, 3)

    delete(fs_api, path, "/-/recursive")

    assert entry_ids(fs_api, path) == []


# -- label filters narrow every selector -----------------------------------------------------------


def labelled(deployment: Deployment, path: str, *phones: str) -> list[int]:
    return [store(deployment, path, {"phone": phone})["entryId"] for phone in phones]


def test_labels_narrow_newest_n_before_the_limit(fs_api: Deployment, path: str) -> None:
    i0, i1, i2, a3 = labelled(fs_api, path, "iphone", "iphone", "iphone", "android")

    delete(fs_api, path, "/-/new/2?phone=iphone")

    # The two newest iPhones go; the newer Android stays.
    assert entry_ids(fs_api, path) == [i0, a3]
    assert {i1, i2}.isdisjoint(entry_ids(fs_api, path))


def test_labels_narrow_the_default_selector(fs_api: Deployment, path: str) -> None:
    i0, i1, a2 = labelled(fs_api, path, "iphone", "iphone", "android")

    delete(fs_api, path, "?phone=iphone")

    assert entry_ids(fs_api, path) == [i0, a2]
    assert i1 not in entry_ids(fs_api, path)


@pytest.mark.parametrize("selector", ["/-/all?phone=iphone", "?limit=-1&phone=iphone", "/-/new?phone=iphone&limit=-1"])
def test_labels_narrow_delete_all(fs_api: Deployment, path: str, selector: str) -> None:
    _, a1, _, a3 = labelled(fs_api, path, "iphone", "android", "iphone", "android")

    delete(fs_api, path, selector)

    assert entry_ids(fs_api, path) == [a1, a3]


def test_labels_narrow_delete_modified(fs_api: Deployment, path: str) -> None:
    i0, i1, a2 = labelled(fs_api, path, "iphone", "iphone", "android")
    put = fs_api.client.put(f"/assets{path}/-/entry/{i0}", json={"labels": {"phone": "iphone"}})
    assert put.status_code == 200

    delete(fs_api, path, "/-/modified?limit=1&phone=iphone")

    assert entry_ids(fs_api, path) == [i1, a2]


def test_labels_narrow_delete_recursive(fs_api: Deployment, base: str) -> None:
    top = f"{base}/u"
    labelled(fs_api, top, "iphone")
    (top_android,) = labelled(fs_api, top, "android")
    labelled(fs_api, f"{top}/x/y", "iphone")
    (below_android,) = labelled(fs_api, f"{top}/x/y", "android")
    (beside_iphone,) = labelled(fs_api, f"{base}/uu", "iphone")

    delete(fs_api, top, "/-/recursive?phone=iphone")

    assert entry_ids(fs_api, top) == [top_android]
    assert entry_ids(fs_api, f"{top}/x/y") == [below_android]
    assert entry_ids(fs_api, f"{base}/uu") == [beside_iphone]


def test_labels_narrow_delete_entry(fs_api: Deployment, path: str) -> None:
    (android,) = labelled(fs_api, path, "android")

    delete(fs_api, path, f"/-/entry/{android}?phone=iphone")
    assert entry_ids(fs_api, path) == [android]

    delete(fs_api, path, f"/-/entry/{android}?phone=android")
    assert entry_ids(fs_api, path) == []


def test_every_label_given_must_match(fs_api: Deployment, path: str) -> None:
    red_iphone = store(fs_api, path, {"phone": "iphone", "colour": "red"})["entryId"]
    blue_iphone = store(fs_api, path, {"phone": "iphone", "colour": "blue"})["entryId"]

    delete(fs_api, path, "/-/all?phone=iphone&colour=red")

    assert entry_ids(fs_api, path) == [blue_iphone]
    assert red_iphone != blue_iphone


def test_reserved_label_keys_are_spelled_with_the_label_prefix(fs_api: Deployment, path: str) -> None:
    wide = store(fs_api, path, {"w": "x"})["entryId"]
    narrow = store(fs_api, path, {"w": "y"})["entryId"]
    unlabelled = store(fs_api, path)["entryId"]

    delete(fs_api, path, "/-/all?label:w=x")

    assert entry_ids(fs_api, path) == [narrow, unlabelled]
    assert wide not in entry_ids(fs_api, path)


# -- idempotence and refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "selector",
    ["", "/-/entry/3", "/-/new/3", "/-/modified?limit=2", "?limit=-1", "/-/all", "/-/recursive", "?phone=nokia"],
)
def test_delete_at_a_path_never_stored_is_204(fs_api: Deployment, base: str, selector: str) -> None:
    neighbour = store(fs_api, f"{base}/stored")
    before = state(fs_api)

    delete(fs_api, f"{base}/never-stored", selector)

    assert state(fs_api) == before
    assert entry_ids(fs_api, f"{base}/stored") == [neighbour["entryId"]]


@pytest.mark.parametrize(
    "selector",
    [
        "/-/entry/987654",
        "/-/entry/9223372036854775807",
        "?phone=nokia",
        "/-/new/3?phone=nokia",
        "/-/modified?limit=2&phone=nokia",
        "?limit=-1&phone=nokia",
        "/-/all?phone=nokia",
        "/-/recursive?phone=nokia",
        "/-/entry/{id}?phone=nokia",
        "/-/all?label:phone=nokia",
    ],
)
def test_delete_is_204_when_no_stored_asset_matches(fs_api: Deployment, path: str, selector: str) -> None:
    entry = store(fs_api, path, {"phone": "iphone"})["entryId"]
    store(fs_api, f"{path}/below", {"phone": "iphone"})
    before = state(fs_api)

    delete(fs_api, path, selector.format(id=entry))

    assert state(fs_api) == before


def test_deleting_twice_is_204_both_times(fs_api: Deployment, path: str) -> None:
    (entry,) = store_many(fs_api, path, 1)

    delete(fs_api, path, f"/-/entry/{entry}")
    delete(fs_api, path, f"/-/entry/{entry}")

    assert entry_ids(fs_api, path) == []


@pytest.mark.parametrize(
    "selector",
    [
        "/-/link",
        "/-/metadata",
        "/-/content",
        "/-/redirect",
        "/-/download",
        "/-/info",
        "/-/entry/1/link",
        "/-/all/3",
        "/-/all?limit=3",
        "/-/recursive/new",
        "/-/recursive/3",
        "/-/all/recursive",
        "/-/all/entry/1",
        "/-/entry/x",
        "/-/entry",
        "/-/entry/1/new",
        "/-/entry/1?limit=2",
        "/-/new/0",
        "?limit=0",
        "/-/new?limit=0",
        "?limit=abc",
        "/-/new/new",
        "/-/new/2/3",
        "/-/new/2?limit=3",
        "/-/nonsense",
        "?w=10",
        "/-/all?w=10",
        "/-/recursive?h=5",
        "/-/entry/1?format=png",
    ],
)
def test_bad_delete_selectors_are_400_and_change_nothing(fs_api: Deployment, path: str, selector: str) -> None:
    store_many(fs_api, path, 3)
    store(fs_api, f"{path}/below")
    before = state(fs_api)

    response = fs_api.client.delete(f"/assets{path}{selector}")

    assert response.status_code == 400, f"{selector}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json().get("message")
    assert state(fs_api) == before


# -- entry ids -------------------------------------------------------------------------------------


def test_entry_ids_are_never_reused_after_deleting_the_newest(api: Deployment, path: str) -> None:
    ids = store_many(api, path, 3)
    assert ids == sorted(ids)
    assert len(set(ids)) == 3

    delete(api, path)

    again = store(api, path)["entryId"]
    assert again == ids[-1] + 1
    assert again not in ids
    assert entry_ids(api, path) == [*ids[:2], again]


def test_entry_ids_are_never_reused_after_deleting_everything(fs_api: Deployment, path: str) -> None:
    ids = store_many(fs_api, path, 2)

    delete(fs_api, path, "/-/all")
    after_all = store(fs_api, path)["entryId"]
    delete(fs_api, path, "/-/recursive")
    after_recursive = store(fs_api, path)["entryId"]

    assert after_all == ids[-1] + 1
    assert after_recursive == after_all + 1
    assert entry_ids(fs_api, path) == [after_recursive]
