"""Access control as a client meets it: URLs signed by the test's own implementation of Konifer's rule,
API keys made with the `konifer-edge keys` command, and the JSON refusal every denied request answers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

import httpx

from tests.support.deployment import Deployment
from tests.support.server import CONFIG_VARIABLES

REPO_ROOT = Path(__file__).resolve().parents[2]
DIGESTS = {"hmac_sha256": hashlib.sha256, "hmac_sha384": hashlib.sha384, "hmac_sha512": hashlib.sha512}
# The server's API key cache lifetime (KONIFER_EDGE_API_KEY_CACHE_TTL) in tests that create and revoke keys.
CACHE_TTL = "0.2"


def signature_of(path: str, query: str, secret: str, algorithm: str) -> str:
    """Konifer's rule: the path as sent, '?', sorted key=value of decoded values (first of each), no 's'."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "s":
            params.setdefault(key, value)
    canonical = "&".join(f"{key}={params[key]}" for key in sorted(params))
    message = f"{path}?{canonical}" if canonical else path
    mac = hmac.new(secret.encode(), message.encode(), DIGESTS[algorithm]).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def signed(url: str, secret: str = "new-key", algorithm: str = "hmac_sha256") -> str:
    path, _, query = url.partition("?")
    signature = signature_of(path, query, secret, algorithm)
    return f"{url}&s={signature}" if query else f"{url}?s={signature}"


def assert_refused(response: httpx.Response, status: int, error: str, message: str | None = None) -> None:
    assert response.status_code == status, f"{response.request.url}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message", "error"}
    assert body["error"] == error
    if message is not None:
        assert body["message"] == message


def eventually(probe: Callable[[], int], expected: int, timeout: float = 20.0) -> None:
    """Poll until `probe` answers `expected` (a cached key lookup expires on its own schedule)."""
    deadline = time.monotonic() + timeout
    seen = probe()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = probe()
    assert seen == expected


def run_cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    env["DATABASE_URL"] = deployment.dsn
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "konifer_edge", *args],
        env=env,
        cwd=deployment.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cli_ok(deployment: Deployment, *args: str) -> str:
    result = run_cli(deployment, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def create_key(deployment: Deployment, *scopes: str, prefix: str | None = None, name: str | None = None) -> str:
    args = ["keys", "create", "--config", str(deployment.server.config_path)]
    for scope in scopes:
        args += ["--scope", scope]
    if prefix is not None:
        args += ["--prefix", prefix]
    if name is not None:
        args += ["--name", name]
    token = cli_ok(deployment, *args).strip()
    assert token.startswith("ke_") and "\n" not in token
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
