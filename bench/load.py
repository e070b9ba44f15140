"""Load generation: wrk runs with bench/lua/bench.lua, one at a time or as a series over the connection counts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import machine
from settings import CONNECTIONS, DURATION, HOST, LUA, WARMUP, WRK_TIMEOUT, fmt, log


def wrk(port: int, connections: int, duration: float, mode_args: list[str], *, label: str) -> dict[str, Any]:
    threads = min(connections, 2)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={WRK_TIMEOUT}",
        "-s",
        str(LUA),
        f"http://{HOST}:{port}",
        "--",
        *mode_args,
    ]
    before = machine.cpu_snapshot()
    started = before[0]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 90)
    after = machine.cpu_snapshot()
    ended = after[0]
    line = next((x for x in completed.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed for {label}: rc={completed.returncode}\n{completed.stdout}\n{completed.stderr}")
    raw = json.loads(line[len("WRKJSON ") :])
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    errors = raw["errors"]
    result = {
        "connections": connections,
        "threads": threads,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "req_s": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "mb_s": round(raw["bytes"] / seconds / 1e6, 2) if seconds else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 3),
        "p75_ms": round(lat["p75"] / 1000, 3),
        "p90_ms": round(lat["p90"] / 1000, 3),
        "p99_ms": round(lat["p99"] / 1000, 3),
        "p999_ms": round(lat["p999"] / 1000, 3),
        "mean_ms": round(lat["mean"] / 1000, 3),
        "max_ms": round(lat["max"] / 1000, 3),
        "errors": errors,
        "error_count": sum(errors.values()),
        **machine.other_load(before, after),
    }
    if not raw["requests"]:  # nothing completed: there is no latency to report, only the zero
        for key in ("p50_ms", "p75_ms", "p90_ms", "p99_ms", "p999_ms", "mean_ms", "max_ms"):
            result[key] = None
        result["note"] = "no request completed within the run"
    peak = machine.peak_rss_mb(started, ended)
    if peak is not None:
        result["konifer_tree_peak_rss_mb"] = peak
    flag = f" ERRORS {errors}" if result["error_count"] else ""
    if result["other_cpu_pct"] >= 10:
        flag += f" (other load {result['other_cpu_pct']:.0f}% of the machine)"
    log(
        f"  {label:<34} c={connections:<3} {result['req_s']:>9.1f} req/s  p50 {fmt(result['p50_ms'], 2):>8}  "
        f"p90 {fmt(result['p90_ms'], 2):>8}  p99 {fmt(result['p99_ms'], 2):>8} ms{flag}"
    )
    return result


def url_file(tmp: Path, name: str, paths: list[str]) -> Path:
    path = tmp / f"urls-{name}.txt"
    path.write_text("\n".join(paths) + "\n")
    return path


def series(
    port: int,
    mode_args: list[str],
    *,
    label: str,
    warmup: bool = True,
    duration: float = DURATION,
    connections: tuple[int, ...] = CONNECTIONS,
    warmup_duration: float = WARMUP,
) -> dict[str, Any]:
    if warmup and WARMUP > 0:
        wrk(port, 8, warmup_duration, mode_args, label=label + " (warm-up)")
    return {str(c): wrk(port, c, duration, mode_args, label=label) for c in connections}
