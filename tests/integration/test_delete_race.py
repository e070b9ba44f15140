"""Reads racing a delete of the entry they read: each answers as before the delete or as the 404
after it, never a 5xx (an entry read half before and half after a delete used to answer 500,
and its objects vanishing under a resolved entry 503)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.deployment import Deployment
from tests.support.images import make_image

ROUNDS = 40


def _store(node: Deployment, path: str, image: bytes) -> None:
    answer = node.client.post(
        f"/assets{path}", files={"metadata": (None, "{}", "application/json"), "asset": ("a.png", image, "image/png")}
    )
    assert answer.status_code == 201, answer.text


def test_reads_racing_a_delete_never_answer_5xx(fs_api: Deployment, path: str) -> None:
    image = make_image("png", 300, 200)
    answers: list[tuple[str, str, int, str]] = []
    with httpx.Client(base_url=fs_api.base_url, timeout=30) as client, ThreadPoolExecutor(5) as pool:
        for number in range(ROUNDS):
            at = f"{path}/{number}"
            targets = [
                ("GET", f"/assets{at}/-/content"),
                ("GET", f"/assets{at}/-/entry/0/content"),
                ("GET", f"/assets{at}/-/content?w=40"),
                ("GET", f"/assets{at}/-/metadata"),
                ("DELETE", f"/assets{at}/-/entry/0"),
            ]
            _store(fs_api, at, image)
            start = threading.Barrier(len(targets))

            def send(method: str, target: str, start: threading.Barrier = start) -> tuple[str, str, int, str]:
                start.wait()
                answer = client.request(method, target)
                return method, target, answer.status_code, answer.text[:200]

            answers.extend(pool.map(lambda item: send(*item), targets))
            assert client.get(f"/assets{at}/-/metadata").status_code == 404
    failures = [answer for answer in answers if answer[2] >= 500]
    assert not failures, failures
    assert {status for method, _, status, _ in answers if method == "DELETE"} == {204}
    assert {status for method, _, status, _ in answers if method == "GET"} <= {200, 404}
