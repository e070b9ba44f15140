"""Upload rules at start-up and under load: refusals that name what is missing, inert configuration
without the model or its packages, the prompt cache across restarts, and a storm that fills the
inference queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.support.deployment import Deployment
from tests.support.konifer_rule_examples import KONIFER_EXAMPLES
from tests.support.server import CONFIG_VARIABLES
from tests.support.services import PostgresService, free_port
from tests.support.tiny_siglip import build_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[2]

RULES = """
[rule-definitions.red]
prompts = ["red"]
threshold = 0.9

[paths."/guarded/**".upload-ruleset]
reject-rules = [ {{ rule = "red", violation-response = "No red" }} ]

[rule-inference]
model-directory = "{model}"
"""

INERT = """
rule-definitions {}
api { rule-evaluation { enabled = false } }
paths {
  "/**" {
    upload-ruleset {
      default = accept
      accept-rules = []
      reject-rules = []
      modify-rules = []
    }
  }
}
"""


def solid(rgb: tuple[int, int, int]) -> bytes:
    data: bytes = pyvips.Image.black(32, 24, bands=3).new_from_image(list(rgb)).cast("uchar").write_to_buffer(".png")
    return data


def blocked_packages(directory: Path, *names: str) -> Path:
    """A directory that, first on PYTHONPATH, makes these packages fail to import as if not installed."""
    for name in names:
        package = directory / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    return directory


def serve(
    tmp_path: Path, config: str, *, name: str = "konifer.toml", pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(config)
    env = {key: value for key, value in os.environ.items() if key not in CONFIG_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (pythonpath, REPO_ROOT) if p is not None)
    return subprocess.run(
        [sys.executable, "-m", "konifer_edge", "serve", "--port", str(free_port()), "--data-dir",
         str(tmp_path / "data"), "--config", str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def assert_refused(result: subprocess.CompletedProcess[str], *named: str) -> None:
    assert result.returncode != 0, result.stderr
    for text in named:
        assert text in result.stderr, f"{text!r} not named in:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr


def test_a_missing_model_file_stops_start_up_naming_it(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "model")
    (model / "tokenizer.json").unlink()

    result = serve(tmp_path, RULES.format(model=model))

    assert_refused(result, str(model / "tokenizer.json"), "missing")


def test_the_evaluation_api_alone_needs_the_model(tmp_path: Path) -> None:
    result = serve(tmp_path, INERT.replace("enabled = false", "enabled = true"), name="konifer.conf")

    # No model anywhere: Konifer's places are searched, the working directory's first.
    assert_refused(result, "models/siglip2-base-patch16-224/vision_model.onnx", "missing")


def test_a_missing_package_stops_start_up_naming_it(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "model")

    result = serve(
        tmp_path, RULES.format(model=model), pythonpath=blocked_packages(tmp_path / "blocked", "onnxruntime")
    )

    assert_refused(result, "'onnxruntime'", "konifer-edge[rules]")


def test_a_ruleset_naming_an_undefined_rule_stops_start_up(tmp_path: Path) -> None:
    config = RULES.format(model=tmp_path).replace('rule = "red"', 'rule = "nudity"')

    result = serve(tmp_path, config)

    assert_refused(result, "paths./guarded/**.upload-ruleset.reject-rules[0].rule", "'nudity' is not defined")


def test_inert_rules_configuration_starts_without_the_model_or_its_packages(
    tmp_path: Path, postgres: PostgresService
) -> None:
    blocked = blocked_packages(tmp_path / "blocked", "onnxruntime", "tokenizers")
    deployment = Deployment(
        tmp_path / "inert",
        INERT,
        store="filesystem",
        postgres=postgres,
        env={"PYTHONPATH": str(blocked)},
        config_name="konifer.conf",
    ).start()
    try:
        stored = deployment.client.post(
            f"/assets/inert/{uuid.uuid4().hex[:8]}",
            files={"metadata": (None, "{}", "application/json"), "asset": ("upload.bin", solid((255, 0, 0)))},
        )
        evaluation = deployment.client.post("/rule-evaluations", json={"url": "http://x/a.png", "definitions": []})
    finally:
        deployment.stop()

    assert stored.status_code == 201, stored.text
    assert evaluation.status_code == 404


def test_a_restart_reads_prompt_embeddings_from_the_cache(tmp_path: Path, postgres: PostgresService) -> None:
    model = build_tiny_model(tmp_path / "model")
    deployment = Deployment(tmp_path / "cached", RULES.format(model=model), store="filesystem", postgres=postgres)
    deployment.start()
    try:
        upload = deployment.client.post(
            "/assets/guarded/a",
            files={"metadata": (None, "{}", "application/json"), "asset": ("upload.bin", solid((255, 0, 0)))},
        )
        assert upload.json() == {"message": "No red", "error": "upload_rejected"}
        deployment.server.stop()
        deployment.server.start()
        again = deployment.client.post(
            "/assets/guarded/a",
            files={"metadata": (None, "{}", "application/json"), "asset": ("upload.bin", solid((255, 0, 0)))},
        )
    finally:
        deployment.stop()

    assert again.json() == {"message": "No red", "error": "upload_rejected"}
    assert deployment.query("SELECT prompt FROM rule_prompt_embedding") == [("red",)]
    log = deployment.server.stdout_path.read_text() + deployment.server.stderr_path.read_text()
    ready = [line for line in log.splitlines() if "upload rules ready" in line]
    assert len(ready) == 2, ready
    assert "0 from the cache, 1 embedded" in ready[0] and "1 from the cache, 0 embedded" in ready[1]


STORM = """
[source.multipart]
max-bytes = 2000000

[rule-definitions.anything]
prompts = ["nothing"]
threshold = 0.0

[paths."/storm/**".upload-ruleset]
modify-rules = [ {{ rule = "anything", labels = {{ checked = "yes" }} }} ]

[rule-inference]
model-directory = "{model}"
workers = 1
queue-size = 0
"""


@pytest.mark.parametrize("uploads", [12])
def test_an_upload_storm_fills_the_inference_queue_and_loses_nothing(
    tmp_path: Path, postgres: PostgresService, uploads: int
) -> None:
    # Each image inference does some deliberately useless work, so uploads overlap in the one slot.
    model = build_tiny_model(tmp_path / "model", slow_matmuls=12)
    deployment = Deployment(tmp_path / "storm", STORM.format(model=model), store="filesystem", postgres=postgres)
    deployment.start()
    base_url = deployment.base_url

    def send(number: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post(
                f"/assets/storm/{number}",
                files={
                    "metadata": (None, json.dumps({"labels": {"n": str(number)}}), "application/json"),
                    "asset": ("upload.bin", solid((number * 20 % 256, 0, 0))),
                },
            )

    try:
        answers: dict[int, httpx.Response] = {}
        refused: list[httpx.Response] = []
        pending = list(range(uploads))
        for _ in range(20):
            with ThreadPoolExecutor(max_workers=len(pending) or 1) as pool:
                results = dict(zip(pending, pool.map(send, pending), strict=True))
            refused += [response for response in results.values() if response.status_code == 503]
            answers.update({number: r for number, r in results.items() if r.status_code != 503})
            pending = [number for number, response in results.items() if response.status_code == 503]
            if not pending:
                break
        rows = deployment.query("SELECT path, labels FROM asset WHERE path LIKE '/storm/%' ORDER BY path")
    finally:
        deployment.stop()

    assert refused, "the storm never filled the inference queue"
    for response in refused:
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"] == "rule_queue_full", response.text
    assert sorted(answers) == list(range(uploads))
    assert all(response.status_code == 201 for response in answers.values())
    # Every upload stored exactly once, once it got through, with the rule's label and its own.
    assert len(rows) == uploads
    for path, labels in rows:
        number = path.rsplit("/", 1)[1]
        assert json.loads(labels) == {"n": number, "checked": "yes"}


def test_konifers_own_rule_examples_load_unchanged_and_behave_as_specified(
    tmp_path: Path, postgres: PostgresService
) -> None:
    model = build_tiny_model(tmp_path / "model")
    # The file as Konifer documents it; the model directory comes from the environment.
    deployment = Deployment(
        tmp_path / "konifer-examples",
        KONIFER_EXAMPLES,
        store="filesystem",
        postgres=postgres,
        env={"RULE_MODEL_DIRECTORY": str(model)},
        config_name="konifer.conf",
    ).start()

    def upload(path: str) -> httpx.Response:
        return deployment.client.post(
            f"/assets{path}",
            files={"metadata": (None, "{}", "application/json"), "asset": ("upload.bin", solid((255, 0, 0)))},
        )

    try:
        # The tiny model knows none of these words, so no prompt scores: deny lists pass, allow lists refuse.
        public = upload("/public/uploads/a")
        avatar = upload("/users/42/avatar")
        catalog = upload("/catalog/products/shoe")
        evaluation = deployment.client.post(
            "/rule-evaluations",
            files={
                "metadata": (None, json.dumps({"definitions": [{"name": "r", "prompts": ["red"], "threshold": 0.9}]})),
                "asset": ("upload.bin", solid((255, 0, 0))),
            },
        )
    finally:
        deployment.stop()

    assert public.status_code == 201, public.text
    assert avatar.json() == {"message": "Asset rejected by upload rules", "error": "upload_rejected"}
    assert catalog.json() == {"message": "Asset rejected by upload rules", "error": "upload_rejected"}
    assert evaluation.status_code == 200, evaluation.text
    assert evaluation.json()["results"][0]["matched"] is True
