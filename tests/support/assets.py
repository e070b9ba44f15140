"""Storing an asset the way a client does: one multipart request with a `metadata` part and the image."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from tests.support.images import make_image

PNG = make_image("png", 24, 16)


def upload(
    client: httpx.Client,
    path: str,
    content: bytes = PNG,
    *,
    metadata: dict[str, Any] | str | None = None,
    part: str = "asset",
    content_type: str = "image/png",
    filename: str = "upload.bin",
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A multipart store: a `metadata` JSON part (default `{}`, or raw text as given) and the image under `part`."""
    raw = metadata if isinstance(metadata, str) else json.dumps(metadata or {})
    return client.post(
        f"/assets{path}",
        files={"metadata": (None, raw, "application/json"), part: (filename, content, content_type)},
        headers=dict(headers or {}),
    )


def stored(
    client: httpx.Client,
    path: str,
    content: bytes = PNG,
    *,
    metadata: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Store and insist that it was stored (201); the metadata the store answered."""
    response = upload(client, path, content, metadata=metadata, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
