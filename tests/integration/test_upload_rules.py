"""Upload rules through HTTP on a real server, scoring with the tiny generated SigLIP2 stand-in.

Colours decide on purpose (tests/support/tiny_siglip.py): a red image scores ~1 for "red" and ~0.78 for
"crimson", a blue one ~1 for "blue", green scores ~0 for every rule here, and "nothing" scores ~0 for
everything (a threshold of 0.0 still matches it).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pyvips

from tests.support.aws import aws_env
from tests.support.deployment import Deployment
from tests.support.images import load, save
from tests.support.services import PostgresService, S3Service
from tests.support.source_server import SourceServer
from tests.support.tiny_siglip import build_tiny_model, embedding_of_colour, expected_score

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)
WHITE = (255, 255, 255)

RULES_CONFIG = """
[source.url]
allowed-domains = ["127.0.0.1", "localhost"]
allow-private-networks = true
max-bytes = 2000000
timeout = "5s"

[source.multipart]
max-bytes = 2000000

[paths."/**"]
object-store.bucket = "assets"

[rule-definitions.red]
prompts = ["Red", "crimson"]
threshold = 0.9

[rule-definitions.crimson]
prompts = ["crimson"]
threshold = 0.7

[rule-definitions.blue]
prompts = ["blue"]
threshold = 0.9

[rule-definitions.white]
prompts = ["white"]
threshold = 0.9

[rule-definitions.anything]
prompts = ["nothing"]
threshold = 0.0

[api.rule-evaluation]
enabled = true

[rule-inference]
model-directory = "{model}"

[paths."/deny/**".upload-ruleset]
default = "accept"
accept-rules = [ {{ rule = "white" }} ]
reject-rules = [
  {{ rule = "red", violation-response = "No red" }},
  {{ rule = "blue" }},
  {{ rule = "crimson", violation-response = "No crimson either" }},
]

[paths."/quiet/**".upload-ruleset]
reject-rules = [ {{ rule = "blue" }}, {{ rule = "white" }} ]

[paths."/allow/**".upload-ruleset]
default = "reject"
accept-rules = [ {{ rule = "blue", violation-response = "ignored" }} ]
reject-rules = [ {{ rule = "red", violation-response = "never evaluated" }} ]
modify-rules = [ {{ rule = "anything", labels = {{ checked = "yes" }} }} ]

[paths."/deny-all/**".upload-ruleset]
default = "reject"

[paths."/label/**".upload-ruleset]
modify-rules = [
  {{ rule = "anything", labels = {{ checked = "yes", kind = "any" }} }},
  {{ rule = "red", labels = {{ kind = "red", colour = "red" }} }},
  {{ rule = "blue", labels = {{ kind = "blue" }} }},
]

[paths."/prep/**"]
transform.preprocessing.enabled = true
transform.preprocessing.image.filter = "grayscale"

[paths."/prep/**".upload-ruleset]
reject-rules = [ {{ rule = "red", violation-response = "No red" }} ]
modify-rules = [ {{ rule = "blue", labels = {{ kind = "blue" }} }} ]

[paths."/older/**".upload-ruleset]
label-rules = [ {{ rule = "anything", labels = {{ spelled = "label-rules" }} }} ]
"""


def solid(rgb: tuple[int, int, int], fmt: str = ".png", size: tuple[int, int] = (40, 30)) -> bytes:
    image = pyvips.Image.black(*size, bands=3).new_from_image(list(rgb)).cast("uchar")
    return save(image, fmt)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def rules_api(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service, model_dir: Path
) -> Iterator[Deployment]:
    config = RULES_CONFIG.format(model=model_dir)
    # The AWS chain finds the test S3 server, for evaluations of ARN sources.
    deployment = Deployment(
        tmp_path_factory.mktemp("rules"),
        config,
        store="filesystem",
        postgres=postgres,
        env=aws_env(s3, credentials=True),
    ).start()
    try:
        yield deployment
    finally:
        deployment.stop()


def unique(prefix: str) -> str:
    return f"/{prefix}/{uuid.uuid4().hex[:12]}/image"


def upload(deployment: Deployment, path: str, content: bytes, metadata: dict[str, Any] | None = None) -> httpx.Response:
    return deployment.client.post(
        f"/assets{path}",
        files={
            "metadata": (None, json.dumps(metadata or {}), "application/json"),
            "asset": ("upload.bin", content, "application/octet-stream"),
        },
    )


def assert_rejected(response: httpx.Response, message: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"message": message, "error": "upload_rejected"}
    assert "location" not in response.headers


# -- decisions at store time -----------------------------------------------------------------------


def test_accept_default_rejects_with_the_matched_responses_joined(rules_api: Deployment) -> None:
    before = rules_api.snapshot()

    response = upload(rules_api, unique("deny"), solid(RED))

    assert_rejected(response, "No red; No crimson either")
    assert rules_api.snapshot() == before


def test_accept_default_without_responses_gives_the_default_message(rules_api: Deployment) -> None:
    assert_rejected(upload(rules_api, unique("deny"), solid(BLUE)), "Asset rejected by upload rules")
    assert_rejected(upload(rules_api, unique("quiet"), solid(WHITE)), "Asset rejected by upload rules")


def test_accept_default_stores_what_no_reject_rule_matches(rules_api: Deployment) -> None:
    path = unique("deny")

    green = upload(rules_api, path, solid(GREEN))
    # White is an accept rule here, and accept rules are not evaluated under `default = accept`.
    white = upload(rules_api, path, solid(WHITE))

    assert green.status_code == 201, green.text
    assert white.status_code == 201, white.text
    assert green.json()["labels"] == {}


def test_a_rejected_upload_consumes_no_entry_id(rules_api: Deployment) -> None:
    path = unique("deny")

    first = upload(rules_api, path, solid(GREEN)).json()
    assert upload(rules_api, path, solid(RED)).status_code == 400
    assert upload(rules_api, path, solid(BLUE)).status_code == 400
    second = upload(rules_api, path, solid(GREEN)).json()

    assert second["entryId"] == first["entryId"] + 1


def test_reject_default_stores_only_what_an_accept_rule_matches(rules_api: Deployment) -> None:
    path = unique("allow")
    before = rules_api.snapshot()

    red = upload(rules_api, path, solid(RED))
    green = upload(rules_api, path, solid(GREEN))

    # The violation-response of an accept rule, and reject rules, mean nothing under `default = reject`.
    assert_rejected(red, "Asset rejected by upload rules")
    assert_rejected(green, "Asset rejected by upload rules")
    assert rules_api.snapshot() == before
    blue = upload(rules_api, path, solid(BLUE))
    assert blue.status_code == 201, blue.text
    assert blue.json()["labels"] == {"checked": "yes"}


def test_reject_default_without_accept_rules_rejects_every_upload(rules_api: Deployment) -> None:
    assert_rejected(upload(rules_api, unique("deny-all"), solid(GREEN)), "Asset rejected by upload rules")


def test_modify_rules_merge_labels_in_config_order_over_the_request(rules_api: Deployment) -> None:
    path = unique("label")

    red = upload(rules_api, path, solid(RED), {"labels": {"kind": "mine", "own": "1"}, "alt": "a red square"})
    blue = upload(rules_api, path, solid(BLUE))
    green = upload(rules_api, path, solid(GREEN))

    assert red.status_code == 201, red.text
    assert red.json()["labels"] == {"own": "1", "checked": "yes", "kind": "red", "colour": "red"}
    assert blue.json()["labels"] == {"checked": "yes", "kind": "blue"}
    assert green.json()["labels"] == {"checked": "yes", "kind": "any"}
    entry = red.json()["entryId"]
    stored = rules_api.client.get(f"/assets{path}/-/entry/{entry}/metadata").json()
    assert stored["labels"] == {"own": "1", "checked": "yes", "kind": "red", "colour": "red"}


def test_more_than_50_labels_after_merging_is_400(rules_api: Deployment) -> None:
    path = unique("label")
    labels = {f"l{number}": "v" for number in range(49)}
    before = rules_api.snapshot()

    response = upload(rules_api, path, solid(GREEN), {"labels": labels})

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_labels"
    assert "51 labels" in response.json()["message"]
    assert rules_api.snapshot() == before


def test_the_older_label_rules_spelling_labels_uploads(rules_api: Deployment) -> None:
    response = upload(rules_api, unique("older"), solid(GREEN))

    assert response.json()["labels"] == {"spelled": "label-rules"}


def test_url_stores_are_decided_too(rules_api: Deployment, source_server: SourceServer) -> None:
    red = source_server.add(f"/rules/{uuid.uuid4().hex}.png", solid(RED), "image/png")
    blue = source_server.add(f"/rules/{uuid.uuid4().hex}.png", solid(BLUE), "image/png")
    before = rules_api.snapshot()

    rejected = rules_api.client.post(f"/assets{unique('deny')}", json={"url": red})
    assert_rejected(rejected, "No red; No crimson either")
    assert rules_api.snapshot() == before
    labelled = rules_api.client.post(f"/assets{unique('label')}", json={"url": blue, "labels": {"kind": "x"}})
    assert labelled.status_code == 201, labelled.text
    assert labelled.json()["labels"] == {"checked": "yes", "kind": "blue"}


def test_paths_without_rules_and_updates_are_not_affected(rules_api: Deployment) -> None:
    stored = upload(rules_api, unique("free"), solid(RED))
    assert stored.status_code == 201

    path = unique("label")
    entry = upload(rules_api, path, solid(GREEN)).json()["entryId"]
    updated = rules_api.client.put(f"/assets{path}/-/entry/{entry}", json={"labels": {"mine": "only"}})

    assert updated.status_code == 200, updated.text
    assert updated.json()["labels"] == {"mine": "only"}


def test_rules_score_the_upload_as_sent_not_as_preprocessed(rules_api: Deployment) -> None:
    # Preprocessing turns uploads grey here; the rules still see the colours that were sent.
    path = unique("prep")

    assert_rejected(upload(rules_api, path, solid(RED)), "No red")
    blue = upload(rules_api, path, solid(BLUE))

    assert blue.status_code == 201, blue.text
    assert blue.json()["labels"] == {"kind": "blue"}
    stored = rules_api.client.get(f"/assets{path}/-/entry/{blue.json()['entryId']}/content")
    pixel = load(stored.content).getpoint(5, 5)
    assert len(set(pixel[:3])) == 1  # grey


def test_every_storage_format_is_scored(rules_api: Deployment) -> None:
    for fmt in (".jpg", ".png", ".webp", ".gif", ".avif", ".heic", ".jxl"):
        response = upload(rules_api, unique("deny"), solid(RED, fmt))
        assert response.status_code == 400, (fmt, response.text)
        assert response.json()["error"] == "upload_rejected"


def test_decisions_and_inference_time_are_in_the_metrics(rules_api: Deployment) -> None:
    upload(rules_api, unique("deny"), solid(RED))

    text = rules_api.client.get("/metrics").text

    assert 'konifer_rule_decisions_total{outcome="rejected",rule="red"}' in text
    assert 'konifer_rule_decisions_total{outcome="accepted",rule="(default)"}' in text
    assert 'konifer_rule_results_total{result="matched",rule="crimson"}' in text
    count = next(
        line
        for line in text.splitlines()
        if line.startswith('konifer_rule_inference_duration_seconds_count{tower="image"}')
    )
    assert float(count.split()[-1]) >= 1
    assert 'konifer_rule_inference_duration_seconds_count{tower="text"}' in text


def test_prompt_embeddings_are_cached_in_postgresql(rules_api: Deployment) -> None:
    rows = rules_api.query("SELECT prompt, octet_length(embedding) FROM rule_prompt_embedding ORDER BY prompt")

    assert rows == [("blue", 16), ("crimson", 16), ("nothing", 16), ("red", 16), ("white", 16)]


# -- the Rule Evaluation API -----------------------------------------------------------------------

DEFINITIONS = [
    {"name": "Colours", "prompts": ["RED ", "crimson", "blue", "a dog"], "threshold": 0.7},
    {"name": "never", "prompts": ["nothing"], "threshold": 0.5},
]


def expected_results(colour: tuple[int, int, int]) -> list[dict[str, Any]]:
    image = embedding_of_colour(colour)
    results = []
    for definition in DEFINITIONS:
        prompts = [str(p).strip().lower() for p in definition["prompts"]]  # type: ignore[attr-defined]
        scores = [expected_score(image, prompt) for prompt in prompts]
        results.append(
            {
                "name": str(definition["name"]).lower(),
                "threshold": definition["threshold"],
                "score": max(scores),
                "matched": max(scores) >= definition["threshold"],  # type: ignore[operator]
                "promptScores": [{"prompt": p, "score": s} for p, s in zip(prompts, scores, strict=True)],
            }
        )
    return results


def assert_results(answer: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    results = answer["results"]
    assert [r["name"] for r in results] == [r["name"] for r in expected]
    for got, want in zip(results, expected, strict=True):
        assert got["threshold"] == want["threshold"] and got["matched"] == want["matched"]
        assert got["score"] == pytest.approx(want["score"], rel=1e-5, abs=1e-9)
        assert [p["prompt"] for p in got["promptScores"]] == [p["prompt"] for p in want["promptScores"]]
        for got_prompt, want_prompt in zip(got["promptScores"], want["promptScores"], strict=True):
            assert got_prompt["score"] == pytest.approx(want_prompt["score"], rel=1e-5, abs=1e-9)


def evaluate_multipart(
    deployment: Deployment, parts: list[tuple[str, tuple[str | None, bytes | str, str]]]
) -> httpx.Response:
    return deployment.client.post("/rule-evaluations", files=parts)


def test_evaluation_of_a_url_scores_every_prompt(rules_api: Deployment, source_server: SourceServer) -> None:
    url = source_server.add(f"/eval/{uuid.uuid4().hex}.png", solid(RED), "image/png")
    before = rules_api.snapshot()

    response = rules_api.client.post("/rule-evaluations", json={"url": url, "definitions": DEFINITIONS})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_results(response.json(), expected_results(RED))
    assert response.json()["results"][0]["matched"] is True
    assert response.json()["results"][1]["matched"] is False
    assert rules_api.snapshot() == before


def test_evaluation_accepts_the_source_object(rules_api: Deployment, source_server: SourceServer) -> None:
    url = source_server.add(f"/eval/{uuid.uuid4().hex}.png", solid(BLUE), "image/png")

    response = rules_api.client.post(
        "/rule-evaluations", json={"source": {"http": {"url": url}}, "definitions": DEFINITIONS}
    )

    assert response.status_code == 200, response.text
    assert_results(response.json(), expected_results(BLUE))


def test_evaluation_reads_an_s3_arn_source(rules_api: Deployment, s3: S3Service) -> None:
    bucket, key = "rule-evaluation-sources", f"eval/{uuid.uuid4().hex}.png"
    s3.create_bucket(bucket)
    s3.client().put_object(Bucket=bucket, Key=key, Body=solid(RED), ContentType="image/png")
    before = rules_api.snapshot()

    body = {"source": {"s3": {"arn": f"arn:aws:s3:::{bucket}/{key}"}}, "definitions": DEFINITIONS}
    response = rules_api.client.post("/rule-evaluations", json=body)

    assert response.status_code == 200, response.text
    assert_results(response.json(), expected_results(RED))
    assert rules_api.snapshot() == before
    missing = rules_api.client.post(
        "/rule-evaluations",
        json={"source": {"s3": {"arn": f"arn:aws:s3:::{bucket}/eval/none.png"}}, "definitions": DEFINITIONS},
    )
    assert missing.status_code == 502, missing.text


def test_evaluation_of_an_uploaded_image_in_either_part_order(rules_api: Deployment) -> None:
    metadata = ("metadata", (None, json.dumps({"definitions": DEFINITIONS}), "application/json"))
    asset = ("asset", ("upload.bin", solid(BLUE, ".jpg"), "application/octet-stream"))
    extra = ("comment", (None, "ignored", "text/plain"))

    for parts in ([metadata, asset], [asset, extra, metadata]):
        response = evaluate_multipart(rules_api, parts)
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["matched"] is True
        assert response.json()["results"][0]["promptScores"][2]["prompt"] == "blue"


def test_evaluation_in_another_content_type_is_415(rules_api: Deployment) -> None:
    response = rules_api.client.post(
        "/rule-evaluations", content=b"definitions", headers={"content-type": "text/plain"}
    )

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_request_type"


def definition(**changes: Any) -> dict[str, Any]:
    return {"name": "r", "prompts": ["red"], "threshold": 0.5, **changes}


BAD_DEFINITIONS = [
    pytest.param([], id="no-definitions"),
    pytest.param([definition(name=f"r{i}") for i in range(11)], id="eleven-definitions"),
    pytest.param([definition(name="  ")], id="blank-name"),
    pytest.param([definition(name="x" * 33)], id="long-name"),
    pytest.param([definition(name="Same"), definition(name="same")], id="names-equal-ignoring-case"),
    pytest.param([definition(prompts=[])], id="no-prompts"),
    pytest.param([definition(prompts=[f"p{i}" for i in range(101)])], id="101-prompts"),
    pytest.param([definition(prompts=["red", " "])], id="blank-prompt"),
    pytest.param([definition(prompts=["x" * 257])], id="long-prompt"),
    pytest.param([definition(prompts=["Red", " red "])], id="prompts-equal-after-normalising"),
    pytest.param([definition(threshold=1.5)], id="threshold-above-1"),
    pytest.param([definition(threshold=-0.01)], id="threshold-below-0"),
    pytest.param([definition(threshold="high")], id="threshold-not-a-number"),
    pytest.param([{"name": "r", "prompts": ["red"]}], id="threshold-missing"),
    pytest.param([definition(prompts="red")], id="prompts-not-a-list"),
    pytest.param(None, id="definitions-missing"),
]


@pytest.mark.parametrize("definitions", BAD_DEFINITIONS)
def test_invalid_definitions_are_400(
    rules_api: Deployment, source_server: SourceServer, definitions: list[dict[str, Any]] | None
) -> None:
    url = source_server.add(f"/eval/{uuid.uuid4().hex}.png", solid(RED), "image/png")
    body: dict[str, Any] = {"url": url} if definitions is None else {"url": url, "definitions": definitions}

    by_json = rules_api.client.post("/rule-evaluations", json=body)
    metadata = {} if definitions is None else {"definitions": definitions}
    by_multipart = evaluate_multipart(
        rules_api,
        [
            ("metadata", (None, json.dumps(metadata), "application/json")),
            ("asset", ("upload.bin", solid(RED), "application/octet-stream")),
        ],
    )

    for response in (by_json, by_multipart):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_rule_evaluation", response.text


def test_evaluation_request_shape_errors_are_400(rules_api: Deployment, source_server: SourceServer) -> None:
    url = source_server.add(f"/eval/{uuid.uuid4().hex}.png", solid(RED), "image/png")
    good = [definition()]
    metadata = ("metadata", (None, json.dumps({"definitions": good}), "application/json"))
    asset = ("asset", ("upload.bin", solid(RED), "application/octet-stream"))

    cases = {
        "no url": rules_api.client.post("/rule-evaluations", json={"definitions": good}),
        "two sources": rules_api.client.post(
            "/rule-evaluations", json={"url": url, "source": {"http": {"url": url}}, "definitions": good}
        ),
        "not json": rules_api.client.post(
            "/rule-evaluations", content=b"{nope", headers={"content-type": "application/json"}
        ),
        "url in multipart": evaluate_multipart(
            rules_api,
            [("metadata", (None, json.dumps({"url": url, "definitions": good}), "application/json")), asset],
        ),
        "two metadata parts": evaluate_multipart(rules_api, [metadata, metadata, asset]),
        "two asset parts": evaluate_multipart(rules_api, [metadata, asset, asset]),
        "no asset part": evaluate_multipart(rules_api, [metadata]),
        "no metadata part": evaluate_multipart(rules_api, [asset]),
        "not an image": evaluate_multipart(
            rules_api, [metadata, ("asset", ("upload.bin", b"%PDF-1.4 not an image", "application/pdf"))]
        ),
        "damaged image": evaluate_multipart(
            rules_api, [metadata, ("asset", ("upload.bin", solid(RED)[:60], "image/png"))]
        ),
    }

    for case, response in cases.items():
        assert response.status_code == 400, (case, response.text)
        assert response.json()["message"], case


def test_evaluation_urls_must_be_allowed(rules_api: Deployment) -> None:
    response = rules_api.client.post(
        "/rule-evaluations", json={"url": "https://images.example.org/a.png", "definitions": [definition()]}
    )

    assert 400 <= response.status_code < 500, response.text


def test_the_evaluation_api_is_404_while_disabled(fs_api: Deployment) -> None:
    response = fs_api.client.post("/rule-evaluations", json={"url": "http://127.0.0.1/a.png", "definitions": []})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


def test_evaluated_scores_match_an_independent_computation_on_a_known_image(rules_api: Deployment) -> None:
    # Half red, half white: the tiny vision tower averages the [-1, 1] samples of the 224 x 224 crop.
    half = pyvips.Image.black(224, 224, bands=3).new_from_image(list(RED))
    image = half.join(pyvips.Image.black(224, 224, bands=3).new_from_image(list(WHITE)), "horizontal")
    content = image.cast("uchar").write_to_buffer(".png")
    rows = np.zeros((224, 224, 3))
    rows[:, :112] = RED
    rows[:, 112:] = WHITE
    tensor = rows / 127.5 - 1.0
    embedding = np.append(tensor.reshape(-1, 3).mean(axis=0), 0.0)

    response = evaluate_multipart(
        rules_api,
        [
            (
                "metadata",
                (
                    None,
                    json.dumps({"definitions": [definition(prompts=["red", "white", "crimson"])]}),
                    "application/json",
                ),
            ),
            ("asset", ("upload.bin", content, "application/octet-stream")),
        ],
    )

    assert response.status_code == 200, response.text
    scores = [p["score"] for p in response.json()["results"][0]["promptScores"]]
    for got, prompt in zip(scores, ["red", "white", "crimson"], strict=True):
        assert got == pytest.approx(expected_score(embedding, prompt), rel=1e-5, abs=1e-9)
