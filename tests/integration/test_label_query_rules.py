"""Which query parameters are label filters (spec 06 sections 8 to 10).

An empty value filters nothing, `label:` forces the label meaning, `pixel-layout` is reserved
(Konifer's raw-pixels parameter) and `exp` is not: it is an ordinary label filter.
"""

from __future__ import annotations

import json

import httpx

from tests.support.deployment import Deployment
from tests.support.images import make_image


def store(api: Deployment, path: str, labels: dict[str, str]) -> int:
    response = api.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, json.dumps({"labels": labels}).encode(), "application/json"),
            "asset": ("a.png", make_image("png", 8, 8), "image/png"),
        },
    )
    assert response.status_code == 201, response.text
    entry_id: int = response.json()["entryId"]
    return entry_id


def metadata(api: Deployment, path: str, query: str) -> httpx.Response:
    return api.client.get(f"/assets{path}/-/metadata?{query}")


def test_parameters_with_an_empty_value_filter_nothing(fs_api: Deployment, path: str) -> None:
    labelled = store(fs_api, path, {"team": "blue"})
    newest = store(fs_api, path, {})
    assert metadata(fs_api, path, "team=blue").json()["entryId"] == labelled
    for query in ("team=", "label:team=", "team=&label:other="):
        response = metadata(fs_api, path, query)
        assert response.status_code == 200, (query, response.text)
        assert response.json()["entryId"] == newest, query


def test_pixel_layout_is_reserved_and_exp_is_a_label(fs_api: Deployment, path: str) -> None:
    newest = store(fs_api, path, {})
    response = metadata(fs_api, path, "pixel-layout=RGB")
    assert response.status_code == 200, response.text
    assert response.json()["entryId"] == newest
    # `exp` names no asset's label here, so as a filter it matches nothing.
    assert metadata(fs_api, path, "exp=1893456000").status_code == 404
    expiring = store(fs_api, path, {"exp": "1893456000"})
    assert metadata(fs_api, path, "exp=1893456000").json()["entryId"] == expiring
