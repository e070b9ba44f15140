"""A browser's Accept must not turn an animation into a still image."""

from __future__ import annotations

from tests.support.deployment import Deployment
from tests.support.images import describe, make_image

CHROMIUM_ACCEPT = "image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def test_animated_gif_negotiates_to_an_animated_format(fs_api: Deployment, path: str) -> None:
    stored = fs_api.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, "{}", "application/json"),
            "asset": ("a.gif", make_image("gif", 60, 40, frames=4), "image/gif"),
        },
    )
    assert stored.status_code == 201, stored.text
    answer = fs_api.client.get(f"/assets{path}/-/content?w=30", headers={"Accept": CHROMIUM_ACCEPT})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "image/webp"
    assert answer.headers["Vary"] == "Accept"
    assert describe(answer.content).pages == 4


def test_still_image_takes_the_first_acceptable_format(fs_api: Deployment, path: str) -> None:
    stored = fs_api.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, "{}", "application/json"),
            "asset": ("a.png", make_image("png", 60, 40), "image/png"),
        },
    )
    assert stored.status_code == 201, stored.text
    answer = fs_api.client.get(f"/assets{path}/-/content?w=30", headers={"Accept": CHROMIUM_ACCEPT})
    assert answer.headers["Content-Type"] == "image/jxl"
