from tests.support.deployment import Deployment
from tests.support.images import make_image


def test_store_then_fetch_content_round_trip(api: Deployment, path: str) -> None:
    original = make_image("png", 32, 24)
    before = api.snapshot()
    stored = api.client.post(
        f"/assets{path}",
        files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", original, "image/png")},
    )
    assert stored.status_code == 201, stored.text
    content = api.client.get(f"/assets{path}/-/content")
    assert content.status_code == 200
    assert content.content == original
    after = api.snapshot()
    assert len(after.assets) == len(before.assets) + 1
    if api.store != "in-memory":
        key = stored.json()["variants"][0]["storeKey"]
        assert api.read_object("assets", key) == original
