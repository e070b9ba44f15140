"""py-spy profiles of the server under each scenario whose goal was missed, and the top frames of each
flame graph for the results."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from konifer import Konifer
from scenarios import Run
from settings import COLD_LOW, COLD_SPAN, HOST, LUA, REPO, RESULTS, TOOLS, WRK_TIMEOUT, log


def _parse_flamegraph(svg: Path) -> dict[str, Any]:
    """Top frames of a py-spy flame graph, in % of all samples: self time (samples whose innermost frame it
    is) and total time (samples with it anywhere on the stack, counted once per stack)."""
    pattern = re.compile(
        r'<g><title>(.*?) \([\d,]+ samples?, [\d.]+%\)</title><rect [^>]*?y="([\d.]+)"'
        r'[^>]*?fg:x="(\d+)" fg:w="(\d+)"'
    )
    frames = [
        (_unescape(name), float(y), int(x), int(w))
        for name, y, x, w in pattern.findall(svg.read_text(errors="replace"))
    ]
    total = max((w for name, _, _, w in frames if name == "all"), default=0)
    if not frames or not total:
        return {"samples": 0, "top_self": [], "top_total": []}
    rows = sorted({y for _, y, _, _ in frames})
    depth = {y: i for i, y in enumerate(rows)}  # py-spy draws an icicle: deeper frames further down
    by_depth: dict[int, list[tuple[int, int, str]]] = {}
    for name, y, x, w in frames:
        by_depth.setdefault(depth[y], []).append((x, w, name))
    for level in by_depth.values():
        level.sort()
    self_samples: dict[str, int] = {}
    total_samples: dict[str, int] = {}

    def walk(level: int, x: int, w: int, stack: frozenset[str]) -> None:
        children = [c for c in by_depth.get(level + 1, []) if x <= c[0] < x + w]
        covered = 0
        for cx, cw, cname in children:
            covered += cw
            if cname not in stack:  # recursion: count the outermost occurrence only
                total_samples[cname] = total_samples.get(cname, 0) + cw
            walk(level + 1, cx, cw, stack | {cname})
        return_self = w - covered
        if return_self > 0 and level in by_depth:
            name = next((n for fx, fw, n in by_depth[level] if fx == x and fw == w), None)
            if name is not None:
                self_samples[name] = self_samples.get(name, 0) + return_self

    root_level = min(by_depth)
    for x, w, name in by_depth[root_level]:
        total_samples[name] = total_samples.get(name, 0) + w
        walk(root_level, x, w, frozenset({name}))
    # Where the samples without Python frames went, for the reader of the summary.
    for name in list(self_samples):
        if name.startswith("process ") or "granian/server/mp.py" in name:
            self_samples["(native: granian/uvloop/extension code, no Python frame)"] = self_samples.get(
                "(native: granian/uvloop/extension code, no Python frame)", 0
            ) + self_samples.pop(name)

    def top(counts: dict[str, int], n: int) -> list[dict[str, Any]]:
        ranked = sorted(
            ((k, v) for k, v in counts.items() if k != "all" and not _scaffolding(k)), key=lambda kv: -kv[1]
        )[:n]
        return [{"frame": _short_frame(name), "pct": round(100 * value / total, 1)} for name, value in ranked]

    return {"samples": total, "top_self": top(self_samples, 15), "top_total": top(total_samples, 25)}


_SCAFFOLDING = (
    "granian/server/",
    "multiprocessing/",
    "konifer_edge/cli/",
    "<module>",
    "threading.py",
    "concurrent/futures/thread.py",
    "asyncio/events.py",
    "asyncio/base_events.py",
    "asyncio/runners.py",
)


def _scaffolding(name: str) -> bool:
    """Frames on every stack of their thread (process start-up, thread bootstraps): no information."""
    return any(part in name for part in _SCAFFOLDING)


def _short_frame(name: str) -> str:
    """`process 123:"...konifer-edge serve ..."` -> `process 123 (no Python frame: native code)`."""
    if name.startswith("process "):
        return name.split(":", 1)[0] + " (no Python frame: native code)"
    return name


def _unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )


def profile(konifer: Konifer, name: str, mode_args: list[str], prefix: str, connections: int = 32) -> dict[str, Any]:
    py_spy = TOOLS / "bin" / "py-spy"
    svg = RESULTS / f"{prefix}-profile-{name}.svg"
    if not py_spy.exists():
        return {"scenario": name, "error": f"{py_spy} is missing"}
    load = subprocess.Popen(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            "-d14s",
            f"--timeout={WRK_TIMEOUT}",
            "-s",
            str(LUA),
            f"http://{HOST}:{konifer.port}",
            "--",
            *mode_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(2)
        completed = subprocess.run(
            [
                str(py_spy),
                "record",
                "-o",
                str(svg),
                "--pid",
                str(konifer.service.pid),
                "--duration",
                "10",
                "--subprocesses",
                "--format",
                "flamegraph",
                "--nonblocking",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        try:
            load.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait(5)
    if completed.returncode != 0 or not svg.exists():
        return {"scenario": name, "error": (completed.stdout + completed.stderr)[-1500:]}
    summary = _parse_flamegraph(svg)
    log(
        f"profile {name}: {svg.relative_to(REPO)}; top self: "
        + ", ".join(f"{t['frame']} {t['pct']}%" for t in summary["top_self"][:5])
    )
    return {"scenario": name, "connections": connections, "svg": str(svg.relative_to(REPO)), **summary}


def profile_missed(run: Run, result: dict[str, Any], prefix: str) -> None:
    """py-spy of the server under each scenario whose goal was missed, 32 connections, 10 s."""
    konifer = run.konifer
    missed: list[str] = []
    for goal in result["goals"]:
        if goal["pass"] is False and goal["profile_scenario"] and goal["profile_scenario"] not in missed:
            missed.append(goal["profile_scenario"])
    for name in missed:
        try:
            if name == "cold":
                entry = konifer.store("bench/cold-profile", run.photo_bytes)["entryId"]
                mode = [
                    "cold",
                    f"/assets/bench/cold-profile/-/entry/{entry}/content?w={{w}}",
                    str(COLD_LOW),
                    str(COLD_SPAN),
                    "2",
                ]
            elif name == "revalidate":
                mode = ["urls", run.urls("p-304", [run.hot_b]), f"If-None-Match: {run.konifer_etag}"]
            elif name == "newest_metadata":
                mode = ["urls", run.urls("p-meta", ["/assets/bench/photo/-/metadata"])]
            elif name == "newest_link":
                mode = ["urls", run.urls("p-link", ["/assets/bench/photo"])]
            else:
                mode = ["urls", run.urls("p-hot", [run.hot_b])]
            # Cold renders at 32 connections can wedge the server (see the incidents), so they are profiled at 8.
            connections = 8 if name == "cold" else 32
            log(f"profiling konifer-edge under '{name}' (py-spy, 10 s, {connections} connections)")
            result["profiles"].append(profile(konifer, name, mode, prefix, connections))
            konifer.ensure_ready(f"profile {name}")
        except Exception as error:
            result["profiles"].append({"scenario": name, "error": repr(error)[-2000:]})
