"""Scenario "upload with rules": what upload rules add to a store, in CPU time and latency.

Runs on its own (it does not need the rest of the suite):

    .venv/bin/python bench/rules_upload.py                    # the tiny generated model
    .venv/bin/python bench/rules_upload.py --model-dir DIR    # the real SigLIP2 export, if you have it

1. In process: the two steps each rule-checked upload adds, timed separately on the bench photo
   (3000x2000 JPEG, bench/photo.py) and a 640x480 PNG: the model's pixels (libvips: shrink-on-load,
   cover crop to 224x224, sRGB; this runs in the decode process) and one image inference (tensor and
   vision tower, on ONNX Runtime with one thread).
2. Over HTTP: `konifer-edge serve --workers 1` on an embedded PostgreSQL; the same photo stored
   sequentially at a path without rules and at one with a reject rule and a modify rule. Reported per
   upload: median and p90 latency, and the CPU time of the whole server process tree (server worker,
   decode processes, PostgreSQL) divided by the uploads, from /proc.

Writes bench/results/<date>-<host>-rules-upload.{json,md}; every figure comes from the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from photo import make_photo  # noqa: E402

from konifer_edge.config.rules import RuleInferenceSettings  # noqa: E402
from konifer_edge.imaging.model_pixels import model_pixels  # noqa: E402
from konifer_edge.rules.model import SiglipModel, find_model_files  # noqa: E402

CONFIG = """
[rule-definitions.red]
prompts = ["red", "a red square", "crimson", "a red object on a plain background"]
threshold = 0.9

[rule-definitions.anything]
prompts = ["nothing"]
threshold = 0.0

[rule-inference]
model-directory = "{model}"

[paths."/rules/**".upload-ruleset]
reject-rules = [ {{ rule = "red", violation-response = "No red" }} ]
modify-rules = [ {{ rule = "anything", labels = {{ checked = "yes" }} }} ]
"""


def log(message: str) -> None:
    print(f"[rules-upload {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tiny_model(directory: Path) -> Path:
    from tests.support.tiny_siglip import build_tiny_model  # needs the test extra (onnx)

    return build_tiny_model(directory)


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def stage_costs(model_dir: Path, images: dict[str, bytes], repeats: int) -> dict[str, Any]:
    import pyvips

    pyvips.concurrency_set(1)
    model = SiglipModel(find_model_files(RuleInferenceSettings(model_directory=str(model_dir))), threads=1)
    costs: dict[str, Any] = {}
    for name, content in images.items():
        pixels_cpu, inference_cpu, pixels_wall, inference_wall = [], [], [], []
        for _ in range(repeats):
            cpu, wall = time.process_time(), time.perf_counter()
            pixels = model_pixels(content)
            pixels_cpu.append(time.process_time() - cpu)
            pixels_wall.append(time.perf_counter() - wall)
            cpu, wall = time.process_time(), time.perf_counter()
            model.embed_image(pixels)
            inference_cpu.append(time.process_time() - cpu)
            inference_wall.append(time.perf_counter() - wall)
        costs[name] = {
            "bytes": len(content),
            "pixels_cpu_ms": _median_ms(pixels_cpu),
            "pixels_wall_ms": _median_ms(pixels_wall),
            "inference_cpu_ms": _median_ms(inference_cpu),
            "inference_wall_ms": _median_ms(inference_wall),
        }
    cpu, wall = time.process_time(), time.perf_counter()
    model.embed_prompts([f"prompt number {n}" for n in range(32)])
    costs["text_batch_of_32"] = {
        "cpu_ms": round((time.process_time() - cpu) * 1000, 3),
        "wall_ms": round((time.perf_counter() - wall) * 1000, 3),
    }
    return costs


def _tree(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                pending.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def http_costs(model_dir: Path, photo: bytes, uploads: int, work: Path) -> dict[str, Any]:
    config = work / "konifer.toml"
    config.write_text(CONFIG.format(model=model_dir))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for variable in ("DATABASE_URL", "REDIS_URL", "IN_MEMORY"):
        env.pop(variable, None)
    log_file = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "konifer_edge", "serve", "--host", HOST, "--port", str(port), "--workers", "1",
         "--data-dir", str(work / "data"), "--config", str(config)],
        stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start; see " + str(work / "server.log"))
                time.sleep(0.2)
            results: dict[str, Any] = {}
            for name in ("plain", "rules", "plain", "rules"):  # the first round warms caches and the prompt cache
                latencies = []
                before = tree_cpu_seconds(server.pid)
                for number in range(uploads):
                    started = time.perf_counter()
                    response = client.post(
                        f"/assets/{name}/{number}",
                        files={"metadata": (None, "{}", "application/json"), "asset": ("photo.jpg", photo)},
                    )
                    latencies.append(time.perf_counter() - started)
                    if response.status_code != 201:
                        raise RuntimeError(f"store at /{name} answered {response.status_code}: {response.text}")
                cpu = tree_cpu_seconds(server.pid) - before
                latencies.sort()
                results[name] = {
                    "uploads": uploads,
                    "latency_p50_ms": _median_ms(latencies),
                    "latency_p90_ms": round(latencies[int(len(latencies) * 0.9) - 1] * 1000, 3),
                    "server_cpu_ms_per_upload": round(cpu / uploads * 1000, 3),
                }
            return results
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log_file.close()


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"## Upload with rules ({result['model']})",
        "",
        "| step, per upload | image | CPU ms | wall ms |",
        "|---|---|---|---|",
    ]
    for name, stage in result["stages"].items():
        if name == "text_batch_of_32":
            continue
        lines.append(f"| model's pixels (libvips) | {name} | {stage['pixels_cpu_ms']} | {stage['pixels_wall_ms']} |")
        lines.append(f"| image inference | {name} | {stage['inference_cpu_ms']} | {stage['inference_wall_ms']} |")
    text = result["stages"]["text_batch_of_32"]
    lines += [
        f"| text inference, 32 prompts (start-up only) | | {text['cpu_ms']} | {text['wall_ms']} |",
        "",
        "| path | p50 ms | p90 ms | server CPU ms per upload |",
        "|---|---|---|---|",
    ]
    for name, run in result["http"].items():
        lines.append(
            f"| /{name} | {run['latency_p50_ms']} | {run['latency_p90_ms']} | {run['server_cpu_ms_per_upload']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model-dir", type=Path, help="the real SigLIP2 export (default: a tiny generated model)")
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rules-upload-", dir=BENCH / "tmp" if (BENCH / "tmp").is_dir() else None))
    try:
        model_dir = args.model_dir or tiny_model(work / "tiny-model")
        photo = make_photo(work / "photo.jpg").read_bytes()
        import pyvips

        small = pyvips.Image.new_from_buffer(photo, "").thumbnail_image(640, height=480).write_to_buffer(".png")
        log("timing the model's pixels and one inference in process")
        stages = stage_costs(model_dir, {"photo 3000x2000 jpeg": photo, "640x480 png": small}, args.repeats)
        log("timing stores over HTTP with and without rules")
        result = {
            "scenario": "upload with rules",
            "model": "the real SigLIP2 export"
            if args.model_dir
            else "tiny generated model (tests/support/tiny_siglip.py)",
            "date": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": {"host": platform.node(), "cores": os.cpu_count(), "python": platform.python_version()},
            "stages": stages,
            "http": http_costs(model_dir, photo, args.uploads, work),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{dt.date.today().isoformat()}-{platform.node()}-rules-upload"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    stem.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
