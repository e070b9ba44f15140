"""Schemathesis against the server's own OpenAPI schema (`/schema/openapi.json`), on a fixed budget.

Every operation gets a few derandomized examples. Nothing may answer 5xx, every status must be one
the schema documents, and where the schema is specific (every error is `ErrorWire` JSON, an update
answers `AssetMetadataWire`) the body and its content type must conform.

The asset routes take one catch-all path parameter, `asset_path`, whose grammar (segments, `/-/`,
modifiers) no OpenAPI type can state: from `{"type": "string"}` alone schemathesis would almost never
name an asset that exists. So half the examples keep what schemathesis generated (hostile text) and
half get an asset path built from the grammar, over assets this module stores first. A fetch's 200
is not specific in the schema (content answers image bytes, link `{url, lqip, alt}`, a limit an
array), so only its status is checked. The server is this module's own: generated deletes (`all`,
`recursive`) must not reach other modules' assets. The share routes are treated alike: half their
examples name shares, tokens and assets this module made first (on a path of their own).
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import STANDARD_CONFIG, start_deployment
from tests.support.deployment import Deployment
from tests.support.images import make_image
from tests.support.services import PostgresService, S3Service

SEEDED = ("st/a", "st/a/b", "st/gif")
# Words of the `/-/` grammar and its neighbours, so generated selectors are often valid and often not.
SELECTOR_WORDS = [
    "link", "content", "download", "redirect", "metadata", "info", "entries", "created", "new", "modified", "entry",
    "all", "recursive", "0", "1", "2", "-1", "1000", "1001", "x", "",
]  # fmt: skip


@pytest.fixture(scope="module")
def own_api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service) -> Iterator[Deployment]:
    deployment = start_deployment(
        tmp_path_factory.mktemp("schemathesis"), STANDARD_CONFIG, store="filesystem", postgres=postgres, s3=s3
    )
    try:
        images = (make_image("png", 40, 30), make_image("jpg", 30, 20), make_image("gif", 20, 20, frames=2))
        for path, image in zip(SEEDED, images, strict=True):
            for entry in range(2):
                answer = deployment.client.post(
                    f"/assets/{path}",
                    files={
                        "metadata": (None, f'{{"alt":"seed {entry}","labels":{{"n":"{entry}"}}}}', "application/json"),
                        "asset": ("image", image),
                    },
                )
                assert answer.status_code == 201, answer.text
        yield deployment
    finally:
        deployment.stop()


# Shares live on a path of their own: generated asset deletes (`st/-/recursive`) never reach it.
SHARED_PATH = "/sh/img"


class SeededShares(msgspec.Struct, frozen=True):
    tokens: list[str]
    ids: list[str]
    revocable: list[str]


@pytest.fixture(scope="module")
def seeded_shares(own_api: Deployment) -> SeededShares:
    for image in (make_image("png", 40, 30), make_image("jpg", 30, 20)):
        answer = own_api.client.post(
            f"/assets{SHARED_PATH}", files={"metadata": (None, "{}", "application/json"), "asset": ("i", image)}
        )
        assert answer.status_code == 201, answer.text
    bodies = [{"path": SHARED_PATH}, {"path": SHARED_PATH, "entryId": 1, "transformation": {"w": "10"}}]
    made = [own_api.client.post("/shares", json=body).json() for body in [*bodies, *([{"path": SHARED_PATH}] * 4)]]
    return SeededShares(
        tokens=[share["token"] for share in made[:2]],
        ids=[share["id"] for share in made[:2]],
        revocable=[share["id"] for share in made[2:]],
    )


share_bodies = st.fixed_dictionaries(
    {"path": st.sampled_from([SHARED_PATH, SHARED_PATH.lstrip("/"), "/sh/missing", "/sh//img"])},
    optional={
        "entryId": st.sampled_from([0, 1, 9]),
        "expiresIn": st.sampled_from([0, 1, 3600]),
        "maxDownloads": st.sampled_from([0, 1, 5]),
        "transformation": st.sampled_from([{}, {"w": "10"}, {"w": 12, "format": "webp"}, {"w": "x"}, {"n": "1"}]),
    },
)
share_queries = st.sampled_from(
    [{"path": SHARED_PATH}, {"asset": f"{SHARED_PATH}/-/entry/0"}, {"asset": f"{SHARED_PATH}/-/entry/9"}, {}]
)


def use_seeded_shares(case: schemathesis.Case[Any], data: st.DataObject, method: str, seeded: SeededShares) -> None:
    """Point a share operation at shares and assets that exist, so its answers are not only refusals."""
    parameters = dict(case.path_parameters or {})
    if "token" in parameters:
        parameters["token"] = data.draw(st.sampled_from([*seeded.tokens, "A" * 43]), label="token")
    if "entry_id" in parameters:
        parameters["entry_id"] = data.draw(st.sampled_from(["0", "1", "9", "x"]), label="entry")
    if "share_id" in parameters:
        ids = seeded.revocable if method == "DELETE" else seeded.ids
        parameters["share_id"] = data.draw(st.sampled_from([*ids, str(uuid.UUID(int=7))]), label="share id")
    case.path_parameters = parameters
    if method == "POST":
        case.body = data.draw(share_bodies, label="share")
        case.media_type = "application/json"
    elif method == "GET" and not parameters:
        case.query = data.draw(share_queries, label="share query")
    else:
        case.query = {}


@pytest.fixture(scope="module")
def konifer_schema(own_api: Deployment) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{own_api.base_url}/schema/openapi.json")


asset_paths = st.one_of(
    st.sampled_from([*SEEDED, "st/missing", "st"]),
    st.builds(
        lambda path, tokens: f"{path}/-/{'/'.join(tokens)}",
        st.sampled_from([*SEEDED, "st/missing"]),
        st.lists(st.sampled_from(SELECTOR_WORDS), min_size=1, max_size=4),
    ),
)

# PUT names exactly one entry; its body is JSON metadata, which the schema does not describe.
entry_paths = st.builds(
    lambda path, entry: f"{path}/-/entry/{entry}", st.sampled_from([*SEEDED, "st/missing"]), st.sampled_from("019")
)
metadata_bodies = st.fixed_dictionaries(
    {},
    optional={
        "alt": st.one_of(st.none(), st.text(max_size=40)),
        "labels": st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
        "tags": st.lists(st.text(max_size=8), max_size=3),
    },
)

SPECIFIC = [content_type_conformance, response_schema_conformance]
ALWAYS = [not_a_server_error, status_code_conformance, response_headers_conformance]
OPERATIONS = [
    ("/assets/{asset_path}", "GET"),
    ("/assets/{asset_path}", "HEAD"),
    ("/assets/{asset_path}", "PUT"),
    ("/assets/{asset_path}", "POST"),
    ("/assets/{asset_path}", "DELETE"),
    ("/assets/{asset_path}/-/list", "GET"),
    ("/assets/{asset_path}/-/list/recursive", "GET"),
    ("/assets/{asset_path}/-/zip", "GET"),
    ("/assets/{asset_path}/-/zip/recursive", "GET"),
    ("/paths", "GET"),
    ("/paths/{prefix}", "GET"),
    ("/filters", "GET"),
    ("/bundles", "POST"),
    ("/shares", "POST"),
    ("/shares", "GET"),
    ("/shares/{share_id}", "GET"),
    ("/shares/{share_id}", "DELETE"),
    ("/s/{token}", "GET"),
    ("/s/{token}", "HEAD"),
    ("/s/{token}/-/entry/{entry_id}", "GET"),
    ("/s/{token}/-/entry/{entry_id}", "HEAD"),
    ("/health", "GET"),
    ("/health/live", "GET"),
    ("/health/ready", "GET"),
    ("/ready", "GET"),
]
BUDGET = settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_every_operation_in_the_schema_is_exercised(konifer_schema: schemathesis.BaseSchema) -> None:
    served = {(path, method.upper()) for path, methods in konifer_schema.items() for method in methods}
    assert served == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_every_operation_answers_as_its_schema_says(
    konifer_schema: schemathesis.BaseSchema,
    own_api: Deployment,
    seeded_shares: SeededShares,
    path: str,
    method: str,
) -> None:
    # Not schemathesis.pytest.from_fixture: its lazy loader reads pytest's private `_nodeid`, which
    # pytest 9 no longer has. The operation's own strategy, driven by Hypothesis here, is the same.
    operation = konifer_schema[path][method]
    statuses: list[int] = []

    @BUDGET
    @given(case=operation.as_strategy(), data=st.data())
    def answers_as_documented(case: schemathesis.Case[Any], data: st.DataObject) -> None:
        if "asset_path" in (case.path_parameters or {}) and data.draw(st.booleans(), label="grammar path"):
            grammar = entry_paths if method == "PUT" else asset_paths
            case.path_parameters = {**(case.path_parameters or {}), "asset_path": data.draw(grammar)}
            if data.draw(st.booleans(), label="without the generated query"):
                case.query = {}
            if method == "PUT":
                body: dict[str, Any] = data.draw(metadata_bodies, label="metadata")
                case.body = body
                case.media_type = "application/json"
        if path.startswith(("/shares", "/s/")) and data.draw(st.booleans(), label="seeded shares"):
            use_seeded_shares(case, data, method, seeded_shares)
        response = case.call(base_url=own_api.base_url, timeout=30)
        statuses.append(response.status_code)
        fetched_fine = method in ("GET", "HEAD") and response.status_code < 400
        case.validate_response(response, checks=ALWAYS if fetched_fine else ALWAYS + SPECIFIC)
        assert httpx.get(f"{own_api.base_url}/health", timeout=10).status_code == 200

    answers_as_documented()
    if (path.startswith("/assets/") and method != "POST") or path.startswith(("/shares", "/s/")):
        # The grammar paths and seeded shares reach real assets: the budget is not spent on refusals alone.
        assert any(200 <= status < 300 for status in statuses), sorted(statuses)


# --- request targets no schema describes ----------------------------------------------------------

# Pieces of a hostile URL: percent-escapes that are not UTF-8, dot segments, NULs, doubled signs, long
# numbers, and the grammar's own words, so that some targets are almost valid.
TARGET_PIECES = [
    "%ff", "%c3", "%e2%82", "%2e%2e", "..", "%00", "%2F", "a", "st", "-", "entry", "content", "new", "--5",
    "9" * 40, "9" * 5000, "%", "%zz", "é", "~", "",
]  # fmt: skip
QUERY_PIECES = ["limit=--1", "%ff=1", "w=1e400", "dpr=nan", "blur=inf", "q=-0", "label:%ff=x", "w=" + "9" * 4000, ""]


def raw_request(port: int, method: str, target: str) -> tuple[int, bytes, bytes]:
    """Send the target byte for byte (no client normalises it) and return status, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


@BUDGET
@given(
    method=st.sampled_from(["GET", "HEAD", "DELETE", "PUT", "POST"]),
    pieces=st.lists(st.sampled_from(TARGET_PIECES), min_size=1, max_size=6),
    selector=st.booleans(),
    query=st.lists(st.sampled_from(QUERY_PIECES), max_size=3),
)
# Once 500s: a percent-escape that is not UTF-8 in the asset path.
@example(method="GET", pieces=["%ff"], selector=False, query=[])
@example(method="DELETE", pieces=["a", "%ff", "b"], selector=False, query=[])
def test_hostile_request_targets_are_refused_with_a_json_4xx(
    own_api: Deployment, method: str, pieces: list[str], selector: bool, query: list[str]
) -> None:
    path = "/".join(pieces[:2]) + ("/-/" + "/".join(pieces[2:]) if selector else "/" + "/".join(pieces[2:]))
    target = f"/assets/{path}" + ("?" + "&".join(query) if query else "")
    status, head, body = raw_request(own_api.server.port, method, target)
    assert status < 500, f"{method} {target[:200]}: {status} {body[:200]!r}"
    if status >= 400 and method != "HEAD" and b"content-length: 0" not in head.lower():
        assert set(json.loads(body)) == {"message", "error"}, body[:200]
