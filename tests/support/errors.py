"""What every refusal answers: a 4xx with the JSON body `{"message", "error"}`, and nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support.deployment import Deployment


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The status, and the JSON error body `{"message", "error"}` with both fields non-empty strings."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("error"), str) and body["error"], body
    return body


def assert_client_error(response: httpx.Response) -> dict[str, Any]:
    """Any 4xx, with the JSON error body."""
    assert 400 <= response.status_code < 500, f"expected a 4xx, got {response.status_code}: {response.text}"
    return assert_error(response, response.status_code)


def assert_refused_untouched(api: Deployment, send: Callable[[], httpx.Response], status: int | None) -> dict[str, Any]:
    """`send` is refused with `status` (any 4xx when None) and changes no row and no object."""
    before = api.snapshot()
    response = send()
    body = assert_client_error(response) if status is None else assert_error(response, status)
    assert api.snapshot() == before, "a refused request changed the database or the object store"
    return body
